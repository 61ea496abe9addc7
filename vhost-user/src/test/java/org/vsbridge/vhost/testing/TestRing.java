package org.vsbridge.vhost.testing;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.vsbridge.libc.Sys;

/**
 * The driver's side of one split virtqueue laid out in {@link TestGuestMemory}: descriptor table, avail and used
 * rings, a kick eventfd and a call eventfd. Posts buffers the way Linux's virtio_ring does (free descriptor
 * list, avail idx published with release, optional indirect tables and EVENT_IDX), and reads back used entries.
 * Not thread-safe: one test thread drives it.
 */
public final class TestRing implements DriverRing {

    public static final int F_NEXT = 1;
    public static final int F_WRITE = 2;
    public static final int F_INDIRECT = 4;

    private final TestGuestMemory mem;
    private final int index;
    private final int size;
    private final long descGpa;
    private final long availGpa;
    private final long usedGpa;
    private final int kickFd;
    private final int callFd;
    private final boolean[] free;
    private final Buffer[][] posted;
    private int availIdx;
    private int lastUsedSeen;
    private boolean eventIdx;

    /** One used element read back from the ring. */
    public record Used(int id, int len) {
    }

    /** One buffer of a chain: guest address, length, device-writable or not. */
    public record Buffer(long gpa, int len, boolean writable) {
        public static Buffer readable(final long gpa, final int len) {
            return new Buffer(gpa, len, false);
        }

        public static Buffer writable(final long gpa, final int len) {
            return new Buffer(gpa, len, true);
        }
    }

    public TestRing(final TestGuestMemory mem, final int index, final int size) throws IOException {
        this.mem = mem;
        this.index = index;
        this.size = size;
        this.descGpa = mem.alloc(16L * size, 16);
        this.availGpa = mem.alloc(6L + 2L * size, 2);
        this.usedGpa = mem.alloc(6L + 8L * size, 4);
        this.kickFd = Sys.eventfd();
        this.callFd = Sys.eventfd();
        this.free = new boolean[size];
        this.posted = new Buffer[size][];
        java.util.Arrays.fill(free, true);
    }

    public int index() {
        return index;
    }

    public int size() {
        return size;
    }

    public long descGpa() {
        return descGpa;
    }

    public long availGpa() {
        return availGpa;
    }

    public long usedGpa() {
        return usedGpa;
    }

    /** The eventfd the driver writes to kick (send it with SET_VRING_KICK). */
    public int kickFd() {
        return kickFd;
    }

    /** The eventfd the device writes to call (send it with SET_VRING_CALL). */
    public int callFd() {
        return callFd;
    }

    /** Driver acked VIRTIO_RING_F_EVENT_IDX: maintain used_event. */
    public void useEventIdx(final boolean on) {
        this.eventIdx = on;
    }

    public int availIdx() {
        return availIdx;
    }

    /** A split ring resumes at the driver's avail idx; the used idx is read from the ring. */
    @Override
    public int vringBase() {
        return availIdx;
    }

    /** Free descriptors left. */
    public int freeCount() {
        int n = 0;
        for (final boolean f : free) {
            n += f ? 1 : 0;
        }
        return n;
    }

    private int takeFree() {
        for (int i = 0; i < size; i++) {
            if (free[i]) {
                free[i] = false;
                return i;
            }
        }
        throw new IllegalStateException("queue " + index + ": no free descriptor");
    }

    /** Write descriptor {@code i} of the main table verbatim (tests that misbehave on purpose). */
    public void writeDescriptor(final int i, final long addr, final int len, final int flags, final int next) {
        writeDesc(descGpa + 16L * i, addr, len, flags, next);
    }

    private void writeDesc(final long at, final long addr, final int len, final int flags, final int next) {
        mem.putLong(at, addr);
        mem.putInt(at + 8, len);
        mem.putShort(at + 12, flags);
        mem.putShort(at + 14, next);
    }

    /** Post a chain of direct descriptors; returns its head. Does not kick. */
    public int post(final Buffer... buffers) {
        final int[] ids = new int[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            ids[i] = takeFree();
        }
        for (int i = 0; i < buffers.length; i++) {
            final Buffer b = buffers[i];
            final boolean last = i == buffers.length - 1;
            writeDesc(descGpa + 16L * ids[i], b.gpa(), b.len(), (b.writable() ? F_WRITE : 0) | (last ? 0 : F_NEXT),
                last ? 0 : ids[i + 1]);
        }
        posted[ids[0]] = buffers.clone();
        publishHead(ids[0]);
        return ids[0];
    }

    /** Post a chain as one INDIRECT descriptor pointing at a table in guest memory; returns its head. */
    public int postIndirect(final Buffer... buffers) {
        final long table = mem.alloc(16L * buffers.length, 16);
        for (int i = 0; i < buffers.length; i++) {
            final Buffer b = buffers[i];
            final boolean last = i == buffers.length - 1;
            writeDesc(table + 16L * i, b.gpa(), b.len(), (b.writable() ? F_WRITE : 0) | (last ? 0 : F_NEXT),
                last ? 0 : i + 1);
        }
        final int head = takeFree();
        writeDesc(descGpa + 16L * head, table, 16 * buffers.length, F_INDIRECT, 0);
        posted[head] = buffers.clone();
        publishHead(head);
        return head;
    }

    /** Put {@code head} in the avail ring and publish the new avail idx (release). */
    public void publishHead(final int head) {
        mem.putShort(availGpa + 4 + 2L * (availIdx % size), head);
        availIdx = (availIdx + 1) & 0xffff;
        mem.putShortRelease(availGpa + 2, availIdx);
    }

    /** Write avail.idx verbatim (misbehaving driver). */
    public void setAvailIdx(final int idx) {
        availIdx = idx & 0xffff;
        mem.putShortRelease(availGpa + 2, availIdx);
    }

    /** used_event (EVENT_IDX): call me when used idx passes this. */
    public void setUsedEvent(final int idx) {
        mem.putShortRelease(availGpa + 4 + 2L * size, idx);
    }

    /** avail_event as the device last wrote it. */
    public int availEvent() {
        return mem.getShortAcquire(usedGpa + 4 + 8L * size);
    }

    public int usedFlags() {
        return mem.getShort(usedGpa);
    }

    public void setAvailFlags(final int flags) {
        mem.putShortRelease(availGpa, flags);
    }

    /** Kick, honouring EVENT_IDX / NO_NOTIFY like the Linux driver would; returns true if it kicked. */
    public boolean kickIfNeeded(final int oldAvail) {
        final boolean kick;
        if (eventIdx) {
            final int event = availEvent();
            kick = ((availIdx - event - 1) & 0xffff) < ((availIdx - oldAvail) & 0xffff);
        } else {
            kick = (usedFlags() & 1) == 0;
        }
        if (kick) {
            kick();
        }
        return kick;
    }

    /** Write the kick eventfd unconditionally. */
    public void kick() {
        final int errno = Sys.eventfdSignal(kickFd);
        if (errno != 0) {
            throw new IllegalStateException("kick failed: " + Sys.strerror(errno));
        }
    }

    public int usedIdx() {
        return mem.getShortAcquire(usedGpa + 2);
    }

    /** Used entries that appeared since the last call; their descriptors become free again. */
    public List<Used> collectUsed() {
        final List<Used> out = new ArrayList<>();
        final int idx = usedIdx();
        while (lastUsedSeen != idx) {
            final long at = usedGpa + 4 + 8L * (lastUsedSeen % size);
            final Used u = new Used(mem.getInt(at), mem.getInt(at + 4));
            out.add(u);
            freeChain(u.id());
            lastUsedSeen = (lastUsedSeen + 1) & 0xffff;
        }
        if (eventIdx) {
            setUsedEvent(lastUsedSeen);
        }
        return out;
    }

    private void freeChain(final int head) {
        if (head < 0 || head >= size) {
            throw new IllegalStateException("queue " + index + ": device used id " + head + " out of range");
        }
        int i = head;
        for (int hops = 0; hops < size; hops++) {
            free[i] = true;
            final long at = descGpa + 16L * i;
            final int flags = mem.getShort(at + 12);
            if ((flags & F_NEXT) == 0) {
                return;
            }
            i = mem.getShort(at + 14);
        }
    }

    /** The buffers last posted with head {@code head} (by {@link #post} or {@link #postIndirect}). */
    public Buffer[] buffers(final int head) {
        return posted[head];
    }

    /** The bytes the device wrote into a used chain: {@code used.len()} bytes across its writable buffers. */
    public byte[] readWritten(final Used used) {
        return readWritten(mem, index, posted[used.id()], used);
    }

    /** {@code used.len()} bytes across the writable ones of {@code bufs} (the chain {@code used} names). Either
     *  ring layout's driver side. */
    static byte[] readWritten(final TestGuestMemory mem, final int index, final Buffer[] bufs, final Used used) {
        if (bufs == null) {
            throw new IllegalStateException("queue " + index + ": used id " + used.id() + " was never posted");
        }
        final byte[] out = new byte[used.len()];
        int at = 0;
        for (final Buffer b : bufs) {
            if (!b.writable() || at == out.length) {
                continue;
            }
            final int n = Math.min(b.len(), out.length - at);
            System.arraycopy(mem.read(b.gpa(), n), 0, out, at, n);
            at += n;
        }
        if (at != out.length) {
            throw new IllegalStateException("queue " + index + ": used len " + used.len() + " exceeds the "
                + at + " writable bytes of id " + used.id());
        }
        return out;
    }

    /** Wait until the call eventfd fires; returns its counter (0 on timeout). */
    public long awaitCall(final long timeoutMs) throws IOException {
        if (Sys.pollReadable(new int[] {callFd}, (int) timeoutMs) == 0) {
            return 0;
        }
        return Sys.eventfdDrain(callFd);
    }

    /** Read and reset the call eventfd without waiting. */
    public long drainCalls() {
        return Sys.eventfdDrain(callFd);
    }

    /** Wait (safety-net timeout) until the used idx reaches {@code target}. Waits on calls, re-checking the
     *  ring so a suppressed call does not hang the test. */
    public boolean awaitUsedIdx(final int target, final long timeoutMs) throws IOException {
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (((usedIdx() - target) & 0x8000) != 0) { // usedIdx before target (mod 2^16)
            if (System.nanoTime() > deadline) {
                return false;
            }
            awaitCall(10);
        }
        return true;
    }

    @Override
    public boolean awaitPostedUsed(final long timeoutMs) throws IOException {
        return awaitUsedIdx(availIdx, timeoutMs);
    }

    @Override
    public void close() {
        Sys.closeQuietly(kickFd);
        Sys.closeQuietly(callFd);
    }
}
