package org.vsbridge.vhost.server;

import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.device.WorkerProxy;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.protocol.MessageHeader;
import org.vsbridge.vhost.protocol.Payloads;
import org.vsbridge.vhost.protocol.ProtocolException;
import org.vsbridge.vhost.protocol.Request;
import org.vsbridge.vhost.queue.InflightRegion;
import org.vsbridge.vhost.queue.PackedVirtqueue;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One frontend connection: reads vhost-user messages (blocking recvmsg, fds by SCM_RIGHTS), keeps the
 * per-connection negotiation state, and turns ring requests into worker commands. Every message is answered
 * promptly: a reply of its own, a REPLY_ACK when NEED_REPLY asked for one, or nothing. A malformed message gets
 * an error answer and the connection goes on; only a stream that can no longer be framed is closed.
 */
final class FrontendConnection {

    private static final Logger LOG = Logger.getLogger(FrontendConnection.class.getName());

    static final long VHOST_USER_F_PROTOCOL_FEATURES = 1L << 30;
    static final long VIRTIO_F_RING_PACKED = 1L << 34;

    static final long PROTOCOL_F_MQ = 1L;
    static final long PROTOCOL_F_REPLY_ACK = 1L << 3;
    static final long PROTOCOL_F_BACKEND_REQ = 1L << 5;
    static final long PROTOCOL_F_CONFIG = 1L << 9;
    static final long PROTOCOL_F_INFLIGHT_SHMFD = 1L << 12;
    static final long PROTOCOL_F_RESET_DEVICE = 1L << 13;
    static final long PROTOCOL_F_CONFIGURE_MEM_SLOTS = 1L << 15;
    static final long PROTOCOL_F_STATUS = 1L << 16;
    static final long OFFERED_PROTOCOL_FEATURES = PROTOCOL_F_MQ | PROTOCOL_F_REPLY_ACK | PROTOCOL_F_BACKEND_REQ
        | PROTOCOL_F_CONFIG | PROTOCOL_F_INFLIGHT_SHMFD | PROTOCOL_F_RESET_DEVICE | PROTOCOL_F_CONFIGURE_MEM_SLOTS
        | PROTOCOL_F_STATUS;

    /** virtio 1.x §2.1: the device hit an error and needs a reset; reported in GET_STATUS. */
    static final int VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;

    private static final long ACK_OK = 0;
    private static final long ACK_FAILED = 1;

    private final String name;
    private final int fd;
    private final int stopFd;
    private final VirtioDevice device;
    private final WorkerProxy worker;
    private final int maxPayload;
    private final long offeredFeatures;

    private final byte[] in;
    private final byte[] out;
    private final UnsafeBuffer payload;
    private final UnsafeBuffer replyPayload;
    private final MessageHeader header = new MessageHeader();
    private final MessageHeader replyHeader = new MessageHeader();
    private final FdList fds = new FdList();
    private final FdList more = new FdList();

    private long ackedFeatures;
    private long protocolFeatures;
    private InflightRegion inflight;
    private int status;
    /** QueueCounters.brokenEvents() at the last reset: a queue that broke since then means NEEDS_RESET. */
    private long brokenAtReset;
    private GuestMemory memory = GuestMemory.EMPTY;
    /**
     * The queue count the frontend shows: QEMU's vhost_dev_init sends SET_VRING_CALL (and SET_VRING_ERR) for
     * each of its queues 0..n-1 in order before anything else needs them. {@code sweptQueues} counts that opening
     * sweep; the first other request after it ends the sweep, and its count is compared once with the device's.
     */
    private int sweptQueues;
    private boolean sweepOver;
    private boolean queueCountWarned;
    private BackendChannel backendChannel;

    FrontendConnection(final String name, final int fd, final int stopFd, final VirtioDevice device,
                       final WorkerProxy worker) {
        this.name = name;
        this.fd = fd;
        this.stopFd = stopFd;
        this.device = device;
        this.worker = worker;
        this.maxPayload = Math.max(4096, Payloads.CONFIG_HEADER_SIZE + device.configSize());
        this.offeredFeatures = device.deviceFeatures() | VHOST_USER_F_PROTOCOL_FEATURES;
        this.in = new byte[MessageHeader.LENGTH + maxPayload];
        this.out = new byte[MessageHeader.LENGTH + maxPayload];
        this.payload = new UnsafeBuffer(in, MessageHeader.LENGTH, maxPayload);
        this.replyPayload = new UnsafeBuffer(out, MessageHeader.LENGTH, maxPayload);
        header.wrap(in, 0);
        replyHeader.wrap(out, 0);
        this.brokenAtReset = worker.counters().brokenEvents();
    }

    /** Memory mapped for this connection; the server unmaps it once the worker dropped it. */
    GuestMemory memory() {
        return memory;
    }

    /** Serves until the frontend hangs up, the stream breaks, or the stop fd fires. */
    void serve() {
        try {
            while (true) {
                final int ready = Sys.pollReadable(new int[] {fd, stopFd}, -1);
                if ((ready & 2) != 0) {
                    return;
                }
                if ((ready & 1) == 0) {
                    continue;
                }
                if (!readMessage()) {
                    return;
                }
                try {
                    handle();
                } finally {
                    final int stray = fds.closeAll();
                    if (stray > 0) {
                        LOG.warning(() -> name + ": closed " + stray + " fd(s) that "
                            + Request.name(header.request()) + " was not supposed to carry");
                    }
                }
            }
        } catch (final Disconnected e) {
            LOG.info(() -> name + ": frontend connection lost: " + e.getMessage());
        } catch (final IOException e) {
            LOG.warning(() -> name + ": frontend connection failed: " + e.getMessage());
        } finally {
            fds.closeAll();
            more.closeAll();
            closeBackendChannel();
            closeInflight();
        }
    }

    /** The connection's inflight buffer goes with it (the frontend keeps its own descriptor for the next one). */
    private void closeInflight() {
        if (inflight != null) {
            try {
                worker.setInflight(null);
            } catch (final IOException e) {
                LOG.warning(() -> name + ": dropping the inflight buffer: " + e.getMessage());
            }
            inflight.close();
            inflight = null;
        }
    }

    /** GET_INFLIGHT_FD: a new zeroed buffer for the frontend's queue count and size, sent with its fd. */
    private void getInflight(final int request, final int size) throws ProtocolException, IOException {
        final Payloads.Inflight asked = inflightPayload("GET_INFLIGHT_FD", size);
        final InflightRegion region;
        try {
            region = InflightRegion.create("vsb-inflight", asked.numQueues(), asked.queueSize(), device.queueCount(),
                device.maxQueueSize());
        } catch (final IOException e) {
            throw new ProtocolException("GET_INFLIGHT_FD: " + e.getMessage());
        }
        try {
            Payloads.putInflight(replyPayload, new Payloads.Inflight(region.size(), 0, asked.numQueues(),
                asked.queueSize()), size);
            replyHeader.request(request).flags(MessageHeader.REPLY_FLAGS).size(size);
            Sockets.sendMsg(fd, out, 0, MessageHeader.LENGTH + size, region.fd());
        } catch (final IOException e) {
            throw new Disconnected("reply to GET_INFLIGHT_FD failed: " + e.getMessage());
        } finally {
            region.close(); // the frontend has the file now; SET_INFLIGHT_FD hands it back
        }
        LOG.info(() -> name + ": inflight buffer of " + region.size() + " bytes for " + asked.numQueues()
            + " queues of " + asked.queueSize());
    }

    /** SET_INFLIGHT_FD: the frontend's buffer (perhaps written by a backend process that died) goes to the rings. */
    private void setInflight(final int size) throws ProtocolException, IOException {
        final Payloads.Inflight given = inflightPayload("SET_INFLIGHT_FD", size);
        if (fds.count() != 1) {
            throw new ProtocolException("carries " + fds.count() + " fds, expected 1");
        }
        final InflightRegion region;
        try {
            region = InflightRegion.open(fds.take(0), given.mmapSize(), given.mmapOffset(), given.numQueues(),
                given.queueSize(), device.queueCount(), device.maxQueueSize());
        } catch (final IOException e) {
            throw new ProtocolException(e.getMessage());
        }
        closeInflight();
        inflight = region;
        worker.setInflight(region);
        if (packedRing()) {
            LOG.warning(() -> name + ": inflight buffer set, but the rings are packed: in-flight state is kept for "
                + "split rings only");
        }
        LOG.info(() -> name + ": inflight buffer set (" + given.mmapSize() + " bytes, " + given.numQueues()
            + " queues of " + given.queueSize() + ")");
    }

    private Payloads.Inflight inflightPayload(final String what, final int size) throws ProtocolException {
        if ((protocolFeatures & PROTOCOL_F_INFLIGHT_SHMFD) == 0) {
            throw new ProtocolException("INFLIGHT_SHMFD protocol feature not negotiated");
        }
        return Payloads.inflight(what, payload, size);
    }

    private void closeBackendChannel() {
        if (backendChannel != null) {
            worker.setConfigNotifier(null);
            backendChannel.close();
            backendChannel = null;
        }
    }

    private void setBackendReqFd(final int size) throws ProtocolException {
        if ((protocolFeatures & PROTOCOL_F_BACKEND_REQ) == 0) {
            throw new ProtocolException("BACKEND_REQ protocol feature not negotiated");
        }
        if (size != 0 && size != Payloads.U64_SIZE) {
            throw new ProtocolException("payload is " + size + " bytes, expected 0 (or 8)");
        }
        if (fds.count() != 1) {
            throw new ProtocolException("carries " + fds.count() + " fds, expected 1");
        }
        closeBackendChannel();
        final BackendChannel channel = new BackendChannel(name, fds.take(0),
            (protocolFeatures & PROTOCOL_F_REPLY_ACK) != 0);
        backendChannel = channel;
        worker.setConfigNotifier(channel::configChanged);
        LOG.info(() -> name + ": backend request channel set up");
    }

    /** Reads one whole message into {@code in}; false when the stream ended or cannot be trusted. */
    private boolean readMessage() throws IOException {
        int got = Sockets.recvMsg(fd, in, 0, MessageHeader.LENGTH, fds);
        if (got == 0) {
            LOG.info(() -> name + ": frontend closed the connection");
            return false;
        }
        while (got < MessageHeader.LENGTH) {
            final int n = Sockets.recvMsg(fd, in, got, MessageHeader.LENGTH - got, more);
            fds.addAll(more);
            if (n == 0) {
                final int have = got;
                LOG.warning(() -> name + ": short read: " + have + " of 12 header bytes, then end of stream");
                return false;
            }
            got += n;
        }
        final int request = header.request();
        final int size = header.size();
        if (header.version() != MessageHeader.VERSION) {
            LOG.warning(() -> name + ": " + Request.name(request) + " has protocol version " + header.version()
                + " (flags 0x" + Integer.toHexString(header.flags()) + "), expected 1; closing the connection");
            return false;
        }
        if (size < 0 || size > maxPayload) {
            LOG.warning(() -> name + ": " + Request.name(request) + " claims a payload of "
                + Integer.toUnsignedString(size) + " bytes (max " + maxPayload + "); closing the connection");
            return false;
        }
        int read = 0;
        while (read < size) {
            final int n = Sockets.recvMsg(fd, in, MessageHeader.LENGTH + read, size - read, more);
            fds.addAll(more);
            if (n == 0) {
                final int have = read;
                LOG.warning(() -> name + ": short read: " + have + " of " + size + " payload bytes of "
                    + Request.name(request) + ", then end of stream");
                return false;
            }
            read += n;
        }
        return true;
    }

    private void handle() throws IOException {
        final int request = header.request();
        final int size = header.size();
        final boolean needReply = header.needReply();
        if (LOG.isLoggable(Level.FINE)) {
            LOG.fine(name + ": " + Request.name(request) + " size " + size + " flags 0x"
                + Integer.toHexString(header.flags()) + " fds " + fds.count());
        }
        try {
            if (fds.truncated()) {
                throw new ProtocolException("the kernel truncated its file descriptors (MSG_CTRUNC)");
            }
            final int expected = Request.expectedSize(request);
            if (expected >= 0 && size != expected) {
                throw new ProtocolException("payload is " + size + " bytes, expected " + expected);
            }
            watchQueueCount(request, size);
            if (dispatch(request, size)) {
                return; // answered with a reply of its own
            }
            if (needReply) {
                sendU64(request, ACK_OK);
            }
        } catch (final Disconnected e) {
            throw e;
        } catch (final ProtocolException | IOException e) {
            LOG.warning(() -> name + ": " + Request.name(request) + " refused: " + e.getMessage());
            if (Request.owesReply(request)) {
                if (Request.hasU64Reply(request)) {
                    sendU64(request, ACK_FAILED);
                } else {
                    sendReply(request, 0);
                }
            } else if (needReply) {
                sendU64(request, ACK_FAILED);
            }
        }
    }

    /** Handles one request; true if it sent a reply of its own. */
    private boolean dispatch(final int request, final int size) throws ProtocolException, IOException {
        switch (request) {
            case Request.GET_FEATURES -> {
                sendU64(request, offeredFeatures);
                return true;
            }
            case Request.SET_FEATURES -> setFeatures(Payloads.u64("SET_FEATURES", payload, size));
            case Request.SET_OWNER -> {
            }
            case Request.SET_BACKEND_REQ_FD -> setBackendReqFd(size);
            case Request.RESET_OWNER -> {
                // Deprecated; older cloud-hypervisor still sends it. Treated as a device reset.
                worker.reset(false);
                ackedFeatures = 0;
                status = 0;
                brokenAtReset = worker.counters().brokenEvents();
            }
            case Request.SET_MEM_TABLE -> setMemTable(Payloads.memTable(payload, size));
            case Request.SET_VRING_NUM -> {
                final Payloads.VringState s = Payloads.vringState("SET_VRING_NUM", payload, size);
                final int index = checkIndex(s.index());
                final int num = s.num();
                if (packedRing()) {
                    // §2.8: up to 2^15 entries, and no power of two required.
                    final int max = Math.min(device.maxQueueSize(), PackedVirtqueue.MAX_QUEUE_SIZE);
                    if (num <= 0 || num > max) {
                        throw new ProtocolException("queue " + index + " size " + Integer.toUnsignedString(num)
                            + " is not in 1.." + max + " (packed ring)");
                    }
                } else if (num <= 0 || num > device.maxQueueSize() || Integer.bitCount(num) != 1) {
                    throw new ProtocolException("queue " + index + " size " + Integer.toUnsignedString(num)
                        + " is not a power of two in 1.." + device.maxQueueSize());
                }
                worker.setVringNum(index, num);
            }
            case Request.SET_VRING_ADDR -> {
                final Payloads.VringAddr a = Payloads.vringAddr(payload, size);
                worker.setVringAddr(checkIndex(a.index()), a.desc(), a.avail(), a.used());
            }
            case Request.SET_VRING_BASE -> {
                final Payloads.VringState s = Payloads.vringState("SET_VRING_BASE", payload, size);
                final int index = checkIndex(s.index());
                // A packed ring's base is 32 bits (both positions with their wrap counters), a split ring's 16.
                if (!packedRing() && (s.num() < 0 || s.num() > 0xffff)) {
                    throw new ProtocolException("queue " + index + " base " + Integer.toUnsignedString(s.num())
                        + " does not fit a split ring's 16-bit index");
                }
                worker.setVringBase(index, s.num());
            }
            case Request.GET_VRING_BASE -> {
                final Payloads.VringState s = Payloads.vringState("GET_VRING_BASE", payload, size);
                final int index = checkIndex(s.index());
                final int base = worker.getVringBase(index);
                Payloads.putVringState(replyPayload, index, base);
                sendReply(request, Payloads.VRING_STATE_SIZE);
                return true;
            }
            case Request.SET_VRING_KICK, Request.SET_VRING_CALL, Request.SET_VRING_ERR -> setVringFd(request, size);
            case Request.GET_PROTOCOL_FEATURES -> {
                sendU64(request, OFFERED_PROTOCOL_FEATURES);
                return true;
            }
            case Request.SET_PROTOCOL_FEATURES -> {
                final long value = Payloads.u64("SET_PROTOCOL_FEATURES", payload, size);
                if ((value & ~OFFERED_PROTOCOL_FEATURES) != 0) {
                    throw new ProtocolException("protocol features 0x" + Long.toHexString(value)
                        + " include bits never offered (offered 0x" + Long.toHexString(OFFERED_PROTOCOL_FEATURES)
                        + ")");
                }
                protocolFeatures = value;
            }
            case Request.GET_QUEUE_NUM -> {
                sendU64(request, device.queueCount());
                return true;
            }
            case Request.SET_VRING_ENABLE -> {
                final Payloads.VringState s = Payloads.vringState("SET_VRING_ENABLE", payload, size);
                final int index = checkIndex(s.index());
                if (s.num() != 0 && s.num() != 1) {
                    throw new ProtocolException("queue " + index + " enable value " + s.num() + " is not 0 or 1");
                }
                worker.setVringEnable(index, s.num() == 1);
            }
            case Request.GET_CONFIG -> {
                final Payloads.Config c = configRange("GET_CONFIG", size);
                final byte[] data = new byte[c.size()];
                device.readConfig(c.offset(), data, 0, c.size());
                replyPayload.putBytes(0, payload, 0, Payloads.CONFIG_HEADER_SIZE);
                replyPayload.putBytes(Payloads.CONFIG_HEADER_SIZE, data);
                sendReply(request, size);
                return true;
            }
            case Request.SET_CONFIG -> {
                final Payloads.Config c = configRange("SET_CONFIG", size);
                final byte[] data = new byte[c.size()];
                payload.getBytes(Payloads.CONFIG_HEADER_SIZE, data);
                device.writeConfig(c.offset(), data, 0, c.size());
            }
            case Request.RESET_DEVICE -> {
                worker.reset(false);
                ackedFeatures = 0;
                status = 0;
                brokenAtReset = worker.counters().brokenEvents();
            }
            case Request.GET_INFLIGHT_FD -> {
                getInflight(request, size);
                return true;
            }
            case Request.SET_INFLIGHT_FD -> setInflight(size);
            case Request.GET_MAX_MEM_SLOTS -> {
                sendU64(request, GuestMemory.MAX_REGIONS);
                return true;
            }
            case Request.ADD_MEM_REG -> addMemRegion(Payloads.singleRegion("ADD_MEM_REG", payload, size));
            case Request.REM_MEM_REG -> removeMemRegion(Payloads.singleRegion("REM_MEM_REG", payload, size));
            case Request.SET_STATUS -> setStatusOrLoopbackFd(size);
            case Request.GET_STATUS -> {
                if ((protocolFeatures & PROTOCOL_F_STATUS) == 0) {
                    throw new ProtocolException("STATUS protocol feature not negotiated");
                }
                // A broken queue (bad guest data) is the device error the spec reports as NEEDS_RESET.
                final boolean needsReset = worker.counters().brokenEvents() != brokenAtReset;
                sendU64(request, status | (needsReset ? VIRTIO_CONFIG_S_NEEDS_RESET : 0));
                return true;
            }
            default -> {
                if (Request.isKnown(request)) {
                    throw new ProtocolException("not supported by this backend (size " + size + ")");
                }
                throw new ProtocolException("unknown request id " + Integer.toUnsignedString(request)
                    + " (size " + size + ")");
            }
        }
        return false;
    }

    /** The acked features make the rings packed (the worker switched their layout at SET_FEATURES). */
    private boolean packedRing() {
        return (ackedFeatures & VIRTIO_F_RING_PACKED) != 0;
    }

    /** Follows the opening SET_VRING_CALL sweep and warns once when it shows fewer queues than the device has. */
    private void watchQueueCount(final int request, final int size) {
        if (sweepOver) {
            return;
        }
        if (request == Request.SET_VRING_CALL || request == Request.SET_VRING_ERR) {
            final int index;
            try {
                final String what = Request.name(request);
                index = Payloads.vringFdIndex(what, Payloads.u64(what, payload, size));
            } catch (final ProtocolException e) {
                sweepOver = true; // dispatch reports it
                return;
            }
            if (request == Request.SET_VRING_CALL && index == sweptQueues) {
                sweptQueues++;
            } else if (index >= sweptQueues) {
                sweepOver = true; // not in queue order: not a sweep that tells a count
            }
            return;
        }
        if (sweptQueues == 0) {
            // The negotiation before QEMU's sweep; anything that uses queues or memory means no sweep is coming.
            switch (request) {
                case Request.GET_FEATURES, Request.GET_PROTOCOL_FEATURES, Request.SET_PROTOCOL_FEATURES,
                     Request.GET_QUEUE_NUM, Request.SET_OWNER, Request.SET_BACKEND_REQ_FD,
                     Request.GET_MAX_MEM_SLOTS -> {
                    return;
                }
                default -> {
                    sweepOver = true;
                    return;
                }
            }
        }
        sweepOver = true;
        if (sweptQueues < device.queueCount()) {
            warnQueueCount("set up queues 0.." + (sweptQueues - 1) + " (" + sweptQueues + " queues)");
        }
    }

    /** One warning per connection: the frontend's queue count is not the device's. */
    private void warnQueueCount(final String what) {
        if (queueCountWarned) {
            return;
        }
        queueCountWarned = true;
        final int expected = device.queueCount();
        LOG.warning(() -> name + ": the frontend " + what + " but this device has " + expected
            + " queues: give the frontend " + expected + " (QEMU's vhost-user-device: num_vqs=" + expected + ")");
    }

    private int checkIndex(final int index) throws ProtocolException {
        if (index < 0 || index >= device.queueCount()) {
            warnQueueCount("names queue " + Integer.toUnsignedString(index));
            throw new ProtocolException("queue index " + Integer.toUnsignedString(index) + " is beyond the "
                + device.queueCount() + " queues this device serves");
        }
        return index;
    }

    private void setFeatures(final long value) throws ProtocolException, IOException {
        if ((value & ~offeredFeatures) != 0) {
            throw new ProtocolException("features 0x" + Long.toHexString(value) + " include bits never offered (0x"
                + Long.toHexString(value & ~offeredFeatures) + ")");
        }
        worker.setFeatures(value);
        if (value != ackedFeatures) {
            LOG.info(() -> name + ": features acked 0x" + Long.toHexString(value) + " ("
                + ((value & 1L << 34) != 0 ? "packed" : "split") + " rings)");
        }
        ackedFeatures = value;
    }

    private void setVringFd(final int request, final int size) throws ProtocolException, IOException {
        final String what = Request.name(request);
        final long value = Payloads.u64(what, payload, size);
        final int index = checkIndex(Payloads.vringFdIndex(what, value));
        final boolean noFd = (value & Payloads.VRING_NOFD_MASK) != 0;
        final int expectedFds = noFd ? 0 : 1;
        if (fds.count() != expectedFds) {
            throw new ProtocolException("queue " + index + " carries " + fds.count() + " fd(s), expected "
                + expectedFds + (noFd ? " (NOFD set)" : ""));
        }
        final int newFd = noFd ? -1 : fds.take(0);
        switch (request) {
            case Request.SET_VRING_KICK -> worker.setVringKick(index, newFd);
            case Request.SET_VRING_CALL -> worker.setVringCall(index, newFd);
            default -> worker.setVringErr(index, newFd);
        }
    }

    private Payloads.Config configRange(final String what, final int size) throws ProtocolException {
        final Payloads.Config c = Payloads.config(what, payload, size);
        if (c.size() == 0) {
            throw new ProtocolException("asks for 0 config bytes");
        }
        final long end = (c.offset() & 0xffffffffL) + c.size();
        if (c.offset() < 0 || end > device.configSize()) {
            throw new ProtocolException("config range " + Integer.toUnsignedString(c.offset()) + "+" + c.size()
                + " is outside the " + device.configSize() + "-byte config space");
        }
        return c;
    }

    private void setMemTable(final Payloads.Region[] regions) throws ProtocolException, IOException {
        if (fds.count() != regions.length) {
            throw new ProtocolException(regions.length + " regions but " + fds.count() + " fds");
        }
        final List<MemoryRegion> mapped = new ArrayList<>(regions.length);
        final GuestMemory table;
        try {
            for (int i = 0; i < regions.length; i++) {
                final Payloads.Region r = regions[i];
                mapped.add(MemoryRegion.map(fds.get(i), r.guestPhysAddr(), r.size(), r.userspaceAddr(),
                    r.mmapOffset()));
            }
            table = GuestMemory.of(mapped);
        } catch (final IOException | IllegalArgumentException e) {
            unmapAll(mapped);
            throw new ProtocolException(e.getMessage());
        }
        fds.closeAll(); // the mappings keep the files alive
        swapMemory(table, memory.regions());
        LOG.info(() -> name + ": memory table " + table);
    }

    private void addMemRegion(final Payloads.Region r) throws ProtocolException, IOException {
        if (fds.count() != 1) {
            throw new ProtocolException("carries " + fds.count() + " fds, expected 1");
        }
        if (memory.regionCount() >= GuestMemory.MAX_REGIONS) {
            throw new ProtocolException("all " + GuestMemory.MAX_REGIONS + " memory slots are in use");
        }
        final MemoryRegion region = MemoryRegion.map(fds.get(0), r.guestPhysAddr(), r.size(), r.userspaceAddr(),
            r.mmapOffset());
        fds.closeAll();
        final GuestMemory table;
        try {
            table = memory.with(region);
        } catch (final IllegalArgumentException e) {
            unmapAll(List.of(region));
            throw new ProtocolException(e.getMessage());
        }
        swapMemory(table, List.of());
        LOG.fine(() -> name + ": added " + region);
    }

    private void removeMemRegion(final Payloads.Region r) throws ProtocolException, IOException {
        if (fds.count() > 1) {
            throw new ProtocolException("carries " + fds.count() + " fds, expected at most 1");
        }
        fds.closeAll(); // some frontends send the region's fd along; we do not need it
        final MemoryRegion region = memory.find(r.guestPhysAddr(), r.size(), r.userspaceAddr());
        if (region == null) {
            throw new ProtocolException("no region gpa 0x" + Long.toHexString(r.guestPhysAddr()) + " size 0x"
                + Long.toHexString(r.size()) + " uva 0x" + Long.toHexString(r.userspaceAddr()));
        }
        swapMemory(memory.without(region), List.of(region));
        LOG.fine(() -> name + ": removed " + region);
    }

    /** Hands the worker a new table, then unmaps what it no longer holds: only after the worker let go. */
    private void swapMemory(final GuestMemory table, final List<MemoryRegion> dropped) throws IOException {
        // If this throws (worker did not answer) it is unknown whether the worker switched: every mapping,
        // old and new, is kept (a leak) rather than risking a fault.
        worker.setMemoryTable(table);
        memory = table;
        final List<MemoryRegion> unmap = new ArrayList<>();
        for (final MemoryRegion r : dropped) {
            if (!table.regions().contains(r)) {
                unmap.add(r);
            }
        }
        unmapAll(unmap);
    }

    private void unmapAll(final List<MemoryRegion> regions) {
        for (final MemoryRegion r : regions) {
            try {
                r.unmap();
            } catch (final IOException e) {
                LOG.warning(() -> name + ": " + e.getMessage());
            }
        }
    }

    private void setStatusOrLoopbackFd(final int size) throws ProtocolException, IOException {
        if (fds.count() > 0 || (protocolFeatures & PROTOCOL_F_STATUS) == 0) {
            // virtio-loopback's private SHARE_LOOPBACK_FD reuses id 39: we have no use for its fd.
            final int closed = fds.closeAll();
            LOG.info(() -> name + ": SHARE_LOOPBACK_FD (virtio-loopback) with " + closed + " fd(s): closed");
            return;
        }
        final long value = Payloads.u64("SET_STATUS", payload, size);
        if (value < 0 || value > 0xff) {
            throw new ProtocolException("status 0x" + Long.toHexString(value) + " does not fit the 8-bit status");
        }
        status = (int) value;
        worker.statusChanged(status);
        if (status == 0) {
            worker.reset(false);
            ackedFeatures = 0;
            brokenAtReset = worker.counters().brokenEvents();
        }
    }

    // ------------------------------------------------------------------ replies

    private void sendU64(final int request, final long value) throws Disconnected {
        Payloads.putU64(replyPayload, value);
        sendReply(request, Payloads.U64_SIZE);
    }

    private void sendReply(final int request, final int size) throws Disconnected {
        replyHeader.request(request).flags(MessageHeader.REPLY_FLAGS).size(size);
        try {
            Sockets.sendMsg(fd, out, 0, MessageHeader.LENGTH + size);
        } catch (final IOException e) {
            throw new Disconnected("reply to " + Request.name(request) + " failed: " + e.getMessage());
        }
    }

    /** The reply could not be sent: the connection is gone. */
    static final class Disconnected extends IOException {
        private static final long serialVersionUID = 1L;

        Disconnected(final String message) {
            super(message);
        }
    }
}
