package org.vsbridge.vhost.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * A vhost-user frontend for tests, speaking the wire protocol over a real Unix socket with fds by SCM_RIGHTS
 * (through {@link Sys}). Low level ({@link #send}, {@link #readReply}) and typed helpers that mirror what QEMU
 * 10.2 sends, each asserting the reply it expects. Request ids are the spec's numbers.
 */
public final class VhostUserClient implements AutoCloseable {

    public static final int GET_FEATURES = 1;
    public static final int SET_FEATURES = 2;
    public static final int SET_OWNER = 3;
    public static final int RESET_OWNER = 4;
    public static final int SET_MEM_TABLE = 5;
    public static final int SET_VRING_NUM = 8;
    public static final int SET_VRING_ADDR = 9;
    public static final int SET_VRING_BASE = 10;
    public static final int GET_VRING_BASE = 11;
    public static final int SET_VRING_KICK = 12;
    public static final int SET_VRING_CALL = 13;
    public static final int SET_VRING_ERR = 14;
    public static final int GET_PROTOCOL_FEATURES = 15;
    public static final int SET_PROTOCOL_FEATURES = 16;
    public static final int GET_QUEUE_NUM = 17;
    public static final int SET_VRING_ENABLE = 18;
    public static final int GET_CONFIG = 24;
    public static final int SET_CONFIG = 25;
    public static final int RESET_DEVICE = 34;
    public static final int GET_MAX_MEM_SLOTS = 36;
    public static final int ADD_MEM_REG = 37;
    public static final int REM_MEM_REG = 38;
    public static final int SET_STATUS = 39;
    public static final int GET_STATUS = 40;

    public static final int FLAGS = 0x1;
    public static final int NEED_REPLY = 0x8;
    public static final int REPLY_FLAGS = 0x5;

    public static final long F_PROTOCOL_FEATURES = 1L << 30;
    public static final long F_INDIRECT_DESC = 1L << 28;
    public static final long F_EVENT_IDX = 1L << 29;
    public static final long F_VERSION_1 = 1L << 32;
    public static final long F_RING_PACKED = 1L << 34;

    public static final long P_MQ = 1L;
    public static final long P_REPLY_ACK = 1L << 3;
    public static final long P_CONFIG = 1L << 9;
    public static final long P_RESET_DEVICE = 1L << 13;
    public static final long P_CONFIGURE_MEM_SLOTS = 1L << 15;
    public static final long P_STATUS = 1L << 16;

    /** How long a test waits for a reply before calling the backend hung. */
    public static final int REPLY_TIMEOUT_MS = 30_000;

    private final int fd;
    private boolean needReply;

    /** A reply as received. */
    public record Reply(int request, int flags, byte[] payload, int fdCount) {
        public long u64() {
            if (payload.length != 8) {
                throw new IllegalStateException("reply to " + request + " has " + payload.length + " bytes, not a u64");
            }
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }

        public ByteBuffer buffer() {
            return ByteBuffer.wrap(payload).order(ByteOrder.LITTLE_ENDIAN);
        }
    }

    private VhostUserClient(final int fd) {
        this.fd = fd;
    }

    public static VhostUserClient connect(final Path socket) throws IOException {
        return new VhostUserClient(Sockets.unixConnect(socket));
    }

    /** Wrap an already connected socket fd (e.g. one end of a socketpair). */
    public static VhostUserClient of(final int fd) {
        return new VhostUserClient(fd);
    }

    public int fd() {
        return fd;
    }

    /** From now on set NEED_REPLY on requests without a reply of their own, as QEMU does with REPLY_ACK. */
    public void setNeedReply(final boolean on) {
        needReply = on;
    }

    public boolean needReply() {
        return needReply;
    }

    // ------------------------------------------------------------------ wire level

    public static ByteBuffer payload(final int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Send header + payload (+ fds with the first byte). */
    public void send(final int request, final int flags, final byte[] payload, final int... fds) throws IOException {
        final ByteBuffer msg = payload(12 + payload.length);
        msg.putInt(request).putInt(flags).putInt(payload.length).put(payload);
        Sockets.sendMsg(fd, msg.array(), 0, msg.capacity(), fds);
    }

    /** Send raw bytes (malformed messages). */
    public void sendRaw(final byte[] bytes, final int... fds) throws IOException {
        Sockets.sendMsg(fd, bytes, 0, bytes.length, fds);
    }

    /** Read one reply; throws on timeout or end of stream. Received fds are closed. */
    public Reply readReply() throws IOException {
        final byte[] hdr = readFully(12);
        final ByteBuffer h = ByteBuffer.wrap(hdr).order(ByteOrder.LITTLE_ENDIAN);
        final int request = h.getInt();
        final int flags = h.getInt();
        final int size = h.getInt();
        if (size < 0 || size > 65536) {
            throw new IOException("reply claims " + size + " bytes");
        }
        return new Reply(request, flags, readFully(size), lastFds);
    }

    private int lastFds;

    private byte[] readFully(final int len) throws IOException {
        final byte[] out = new byte[len];
        final FdList fds = new FdList();
        int got = 0;
        lastFds = 0;
        while (got < len) {
            if (Sys.pollReadable(new int[] {fd}, REPLY_TIMEOUT_MS) == 0) {
                throw new IOException("no reply within " + REPLY_TIMEOUT_MS + " ms");
            }
            final int n = Sockets.recvMsg(fd, out, got, len - got, fds);
            lastFds += fds.closeAll();
            if (n == 0) {
                throw new IOException("backend closed the connection");
            }
            got += n;
        }
        return out;
    }

    /** True if the backend closed the connection (or does so within {@code timeoutMs}). */
    public boolean isClosedByPeer(final int timeoutMs) throws IOException {
        if (Sys.pollReadable(new int[] {fd}, timeoutMs) == 0) {
            return false;
        }
        final FdList fds = new FdList();
        final int n = Sockets.recvMsg(fd, new byte[1], 0, 1, fds);
        fds.closeAll();
        return n == 0;
    }

    /** Send a request that owes a reply; returns the reply after checking its id and flags 0x5. */
    public Reply call(final int request, final byte[] payload, final int... fds) throws IOException {
        send(request, FLAGS, payload, fds);
        final Reply r = readReply();
        check(r, request);
        return r;
    }

    /**
     * Send a request without a reply of its own. With {@link #setNeedReply} on, sets NEED_REPLY and returns the
     * ack value (0 = ok); otherwise returns 0 without waiting.
     */
    public long request(final int request, final byte[] payload, final int... fds) throws IOException {
        send(request, needReply ? FLAGS | NEED_REPLY : FLAGS, payload, fds);
        if (!needReply) {
            return 0;
        }
        final Reply r = readReply();
        check(r, request);
        return r.u64();
    }

    /** Like {@link #request} but fails unless the ack is 0. */
    public void requestOk(final int request, final byte[] payload, final int... fds) throws IOException {
        final long ack = request(request, payload, fds);
        if (ack != 0) {
            throw new IOException("request " + request + " acked with failure " + ack);
        }
    }

    private static void check(final Reply r, final int request) throws IOException {
        if (r.request() != request) {
            throw new IOException("reply is for request " + r.request() + ", expected " + request);
        }
        if (r.flags() != REPLY_FLAGS) {
            throw new IOException("reply flags 0x" + Integer.toHexString(r.flags()) + " instead of 0x5");
        }
    }

    // ------------------------------------------------------------------ typed helpers

    public static byte[] u64(final long v) {
        return payload(8).putLong(v).array();
    }

    public static byte[] state(final int index, final int num) {
        return payload(8).putInt(index).putInt(num).array();
    }

    public long getFeatures() throws IOException {
        return call(GET_FEATURES, new byte[0]).u64();
    }

    public long setFeatures(final long features) throws IOException {
        return request(SET_FEATURES, u64(features));
    }

    public long getProtocolFeatures() throws IOException {
        return call(GET_PROTOCOL_FEATURES, new byte[0]).u64();
    }

    public long setProtocolFeatures(final long features) throws IOException {
        return request(SET_PROTOCOL_FEATURES, u64(features));
    }

    public long getQueueNum() throws IOException {
        return call(GET_QUEUE_NUM, new byte[0]).u64();
    }

    public long getMaxMemSlots() throws IOException {
        return call(GET_MAX_MEM_SLOTS, new byte[0]).u64();
    }

    public long setOwner() throws IOException {
        return request(SET_OWNER, new byte[0]);
    }

    /** SET_MEM_TABLE with one region per memory: gpa base, size, uva base, offset 0. */
    public long setMemTable(final TestGuestMemory... mems) throws IOException {
        final ByteBuffer p = payload(8 + 32 * mems.length);
        p.putInt(mems.length).putInt(0);
        final int[] fds = new int[mems.length];
        for (int i = 0; i < mems.length; i++) {
            p.putLong(mems[i].gpaBase()).putLong(mems[i].size()).putLong(mems[i].uvaBase()).putLong(0);
            fds[i] = mems[i].fd();
        }
        return request(SET_MEM_TABLE, p.array(), fds);
    }

    public static byte[] singleRegion(final long gpa, final long size, final long uva, final long offset) {
        return payload(40).putLong(0).putLong(gpa).putLong(size).putLong(uva).putLong(offset).array();
    }

    public long addMemReg(final TestGuestMemory mem) throws IOException {
        return request(ADD_MEM_REG, singleRegion(mem.gpaBase(), mem.size(), mem.uvaBase(), 0), mem.fd());
    }

    public long remMemReg(final TestGuestMemory mem) throws IOException {
        return request(REM_MEM_REG, singleRegion(mem.gpaBase(), mem.size(), mem.uvaBase(), 0));
    }

    public long setVringNum(final int index, final int num) throws IOException {
        return request(SET_VRING_NUM, state(index, num));
    }

    public long setVringBase(final int index, final int base) throws IOException {
        return request(SET_VRING_BASE, state(index, base));
    }

    public long setVringAddr(final int index, final long descUva, final long usedUva, final long availUva)
        throws IOException {
        return request(SET_VRING_ADDR,
            payload(40).putInt(index).putInt(0).putLong(descUva).putLong(usedUva).putLong(availUva).putLong(0)
                .array());
    }

    public long setVringAddr(final TestGuestMemory mem, final DriverRing ring) throws IOException {
        return setVringAddr(ring.index(), mem.uva(ring.descGpa()), mem.uva(ring.usedGpa()), mem.uva(ring.availGpa()));
    }

    /** SET_VRING_KICK/CALL/ERR payload: spec layout below 256, the bridge's high-index extension above. */
    public static long vringFd(final int index, final boolean noFd) {
        return org.vsbridge.vhost.protocol.Payloads.vringFdValue(index, noFd);
    }

    public long setVringKick(final int index, final int fd) throws IOException {
        return fd < 0 ? request(SET_VRING_KICK, u64(vringFd(index, true)))
            : request(SET_VRING_KICK, u64(vringFd(index, false)), fd);
    }

    public long setVringCall(final int index, final int fd) throws IOException {
        return fd < 0 ? request(SET_VRING_CALL, u64(vringFd(index, true)))
            : request(SET_VRING_CALL, u64(vringFd(index, false)), fd);
    }

    public long setVringErr(final int index, final int fd) throws IOException {
        return fd < 0 ? request(SET_VRING_ERR, u64(vringFd(index, true)))
            : request(SET_VRING_ERR, u64(vringFd(index, false)), fd);
    }

    public long setVringEnable(final int index, final boolean enable) throws IOException {
        return request(SET_VRING_ENABLE, state(index, enable ? 1 : 0));
    }

    /** GET_VRING_BASE: returns the {@code num} of the reply (next avail index; packed: both positions). */
    public int getVringBase(final int index) throws IOException {
        final Reply r = call(GET_VRING_BASE, state(index, 0));
        final ByteBuffer b = r.buffer();
        if (r.payload().length != 8 || b.getInt(0) != index) {
            throw new IOException("bad GET_VRING_BASE reply of " + r.payload().length + " bytes");
        }
        return b.getInt(4);
    }

    /** GET_CONFIG(offset, size) with the full payload, as QEMU sends it; returns the whole reply. */
    public Reply getConfig(final int offset, final int size) throws IOException {
        final ByteBuffer p = payload(12 + size).putInt(offset).putInt(size).putInt(0);
        return call(GET_CONFIG, p.array());
    }

    public long setConfig(final int offset, final byte[] data) throws IOException {
        final ByteBuffer p = payload(12 + data.length).putInt(offset).putInt(data.length).putInt(0).put(data);
        return request(SET_CONFIG, p.array());
    }

    /** Set up one ring the way QEMU's vhost_virtqueue_start does: NUM, BASE, ADDR, KICK, CALL. */
    public void setUpRing(final TestGuestMemory mem, final DriverRing ring) throws IOException {
        requestOk(SET_VRING_NUM, state(ring.index(), ring.size()));
        requestOk(SET_VRING_BASE, state(ring.index(), ring.vringBase()));
        ok(setVringAddr(mem, ring));
        ok(setVringKick(ring.index(), ring.kickFd()));
        ok(setVringCall(ring.index(), ring.callFd()));
    }

    /**
     * The whole QEMU 10.2 sequence for {@code vhost-user-test-device-pci} (RESEARCH §10) up to running rings:
     * connect phase, then SET_FEATURES, SET_MEM_TABLE, per ring NUM/BASE/ADDR/KICK/CALL, ENABLE(1) per ring,
     * CALL again per ring. Acks REPLY_ACK when offered and from then on sets NEED_REPLY like QEMU.
     * Returns the features it acked.
     *
     * @param wanted virtio features the "driver" wants (masked with what the backend offers)
     * @param queueCount num_vqs: SET_VRING_CALL/ERR at connect and ENABLE go to all of them
     */
    public long negotiateLikeQemu(final TestGuestMemory mem, final long wanted, final int queueCount,
                                  final DriverRing... rings) throws IOException {
        final long offered = getFeatures();
        if ((offered & F_PROTOCOL_FEATURES) == 0) {
            throw new IOException("backend does not offer VHOST_USER_F_PROTOCOL_FEATURES");
        }
        final long protocol = getProtocolFeatures();
        final long ackProtocol = protocol & (P_MQ | P_REPLY_ACK | P_CONFIG | P_RESET_DEVICE | P_CONFIGURE_MEM_SLOTS);
        setProtocolFeatures(ackProtocol);
        setNeedReply((ackProtocol & P_REPLY_ACK) != 0);
        getQueueNum();
        ok(setOwner());
        getFeatures();
        final List<Integer> all = new ArrayList<>();
        for (int i = 0; i < queueCount; i++) {
            all.add(i);
        }
        for (final int i : all) {
            ok(setVringCall(i, -1));
            ok(setVringErr(i, -1));
        }
        final long acked = (wanted & offered) | F_PROTOCOL_FEATURES;
        ok(setFeatures(acked));
        ok(setMemTable(mem));
        for (final DriverRing r : rings) {
            r.useEventIdx((acked & F_EVENT_IDX) != 0);
            setUpRing(mem, r);
        }
        for (final int i : all) {
            ok(setVringEnable(i, true));
        }
        for (final DriverRing r : rings) {
            ok(setVringCall(r.index(), r.callFd()));
        }
        return acked;
    }

    private static void ok(final long ack) throws IOException {
        if (ack != 0) {
            throw new IOException("backend acked with failure " + ack);
        }
    }

    @Override
    public void close() {
        Sys.closeQuietly(fd);
    }
}
