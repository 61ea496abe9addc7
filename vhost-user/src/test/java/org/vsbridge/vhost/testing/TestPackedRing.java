package org.vsbridge.vhost.testing;

import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import org.vsbridge.libc.Sys;

/**
 * The driver's side of one packed virtqueue (virtio 1.x §2.8) laid out in {@link TestGuestMemory}: the descriptor
 * ring, the driver event suppression structure (written here), the device event suppression structure (read
 * here), a kick and a call eventfd. Posts chains as the spec's driver does: descriptors in ring order, the buffer
 * id in the last one only, every descriptor's flags before the head's, the head's with release; reads used
 * descriptors back at its own used position, skipping each chain's length. Not thread-safe: one test thread.
 */
public final class TestPackedRing implements DriverRing {

    public static final int F_NEXT = 1;
    public static final int F_WRITE = 2;
    public static final int F_INDIRECT = 4;
    public static final int F_AVAIL = 1 << 7;
    public static final int F_USED = 1 << 15;
    public static final int EVENT_ENABLE = 0;
    public static final int EVENT_DISABLE = 1;
    public static final int EVENT_DESC = 2;
    public static final int WRAP = 1 << 15;

    private final TestGuestMemory mem;
    private final int index;
    private final int size;
    private final long descGpa;
    private final long driverEventGpa;
    private final long deviceEventGpa;
    private final int kickFd;
    private final int callFd;
    /** By buffer id: descriptors its chain took while in flight, 0 when the id is free. */
    private final int[] chainLength;
    private final TestRing.Buffer[][] posted;
    /** Free buffer ids, the most recently freed first; the first ids handed out are the highest, so they rarely
     *  equal the ring positions (a device reading the id from the wrong place shows). */
    private final ArrayDeque<Integer> freeIds = new ArrayDeque<>();
    private int nextAvail;
    private boolean availWrap = true;
    private int nextUsed;
    private boolean usedWrap = true;
    private int inFlightDescriptors;
    private boolean eventIdx;

    /** One used descriptor as read back: where, buffer id, written length, flags. */
    public record UsedDesc(int position, int id, int len, int flags) {
    }

    /** One descriptor written verbatim by {@link #postRaw} (the avail bits of its position are added). */
    public record Desc(long addr, int len, int id, int flags) {
    }

    public TestPackedRing(final TestGuestMemory mem, final int index, final int size) throws IOException {
        this.mem = mem;
        this.index = index;
        this.size = size;
        this.descGpa = mem.alloc(16L * size, 16);
        this.driverEventGpa = mem.alloc(4, 4);
        this.deviceEventGpa = mem.alloc(4, 4);
        this.kickFd = Sys.eventfd();
        this.callFd = Sys.eventfd();
        this.chainLength = new int[size];
        this.posted = new TestRing.Buffer[size][];
        for (int id = 0; id < size; id++) {
            freeIds.push(id);
        }
    }

    @Override
    public int index() {
        return index;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public long descGpa() {
        return descGpa;
    }

    /** The driver event suppression structure: SET_VRING_ADDR's "avail". */
    @Override
    public long availGpa() {
        return driverEventGpa;
    }

    /** The device event suppression structure: SET_VRING_ADDR's "used". */
    @Override
    public long usedGpa() {
        return deviceEventGpa;
    }

    @Override
    public int kickFd() {
        return kickFd;
    }

    @Override
    public int callFd() {
        return callFd;
    }

    /** Driver acked VIRTIO_RING_F_EVENT_IDX: ask for calls in desc mode at the next used position, and honour the
     *  device's desc mode for kicks. */
    @Override
    public void useEventIdx(final boolean on) {
        eventIdx = on;
    }

    public int nextAvail() {
        return nextAvail;
    }

    public boolean availWrap() {
        return availWrap;
    }

    public int nextUsed() {
        return nextUsed;
    }

    public boolean usedWrap() {
        return usedWrap;
    }

    /** QEMU's form: bits 0-14 next avail, 15 its wrap counter, 16-30 next used, 31 its wrap counter. */
    @Override
    public int vringBase() {
        return availIdx() | (nextUsed | (usedWrap ? WRAP : 0)) << 16;
    }

    /** Next avail position with its wrap counter in bit 15. */
    @Override
    public int availIdx() {
        return nextAvail | (availWrap ? WRAP : 0);
    }

    @Override
    public int freeCount() {
        return size - inFlightDescriptors;
    }

    /** The AVAIL/USED bits that make a descriptor available in the driver's current lap. */
    public int availBits() {
        return availBits(availWrap);
    }

    private static int availBits(final boolean wrap) {
        return wrap ? F_AVAIL : F_USED;
    }

    private int takeId() {
        final Integer id = freeIds.poll();
        if (id == null) {
            throw new IllegalStateException("queue " + index + ": no free buffer id");
        }
        return id;
    }

    private void needDescriptors(final int n) {
        if (n > freeCount()) {
            throw new IllegalStateException("queue " + index + ": " + n + " descriptors wanted, " + freeCount()
                + " free");
        }
    }

    private void writeDesc(final long at, final long addr, final int len, final int id, final int flags) {
        mem.putLong(at, addr);
        mem.putInt(at + 8, len);
        mem.putShort(at + 12, id);
        mem.putShort(at + 14, flags);
    }

    private long slot(final int position) {
        return descGpa + 16L * position;
    }

    private void step() {
        if (++nextAvail == size) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    @Override
    public int post(final TestRing.Buffer... buffers) {
        return postWithId(takeIdFor(buffers.length), buffers);
    }

    private int takeIdFor(final int descriptors) {
        needDescriptors(descriptors);
        return takeId();
    }

    /** Post a chain with buffer id {@code id} (taken out of the free ids if it is there). */
    public int postWithId(final int id, final TestRing.Buffer... buffers) {
        needDescriptors(buffers.length);
        freeIds.remove(id);
        final int head = nextAvail;
        int headFlags = 0;
        for (int i = 0; i < buffers.length; i++) {
            final TestRing.Buffer b = buffers[i];
            final boolean last = i == buffers.length - 1;
            final int flags = (b.writable() ? F_WRITE : 0) | (last ? 0 : F_NEXT) | availBits();
            // §2.8.6: the id goes in the last descriptor; the others carry a value the device must ignore.
            writeBody(slot(nextAvail), b.gpa(), b.len(), last ? id : 0xbeef);
            if (i == 0) {
                headFlags = flags;
            } else {
                mem.putShort(slot(nextAvail) + 14, flags);
            }
            step();
        }
        chainLength[id] = buffers.length;
        posted[id] = buffers.clone();
        inFlightDescriptors += buffers.length;
        mem.putShortRelease(slot(head) + 14, headFlags);
        return id;
    }

    /** Address, length and id of a descriptor; its flags are stored separately (a head's last). */
    private void writeBody(final long at, final long addr, final int len, final int id) {
        mem.putLong(at, addr);
        mem.putInt(at + 8, len);
        mem.putShort(at + 12, id);
    }

    @Override
    public int postIndirect(final TestRing.Buffer... buffers) {
        final int id = takeIdFor(1);
        final long table = mem.alloc(16L * buffers.length, 16);
        for (int i = 0; i < buffers.length; i++) {
            final TestRing.Buffer b = buffers[i];
            // §2.8.7: only WRITE counts in a table; ids there are ignored.
            writeDesc(table + 16L * i, b.gpa(), b.len(), 0, b.writable() ? F_WRITE : 0);
        }
        final int head = nextAvail;
        final int flags = F_INDIRECT | availBits();
        writeBody(slot(head), table, 16 * buffers.length, id);
        step();
        chainLength[id] = 1;
        posted[id] = buffers.clone();
        inFlightDescriptors += 1;
        mem.putShortRelease(slot(head) + 14, flags);
        return id;
    }

    /**
     * Write {@code descs} at the driver's position verbatim (misbehaving driver), each with the avail bits of its
     * own lap added and the first one's flags stored last; moves the driver's position past them. No id is
     * tracked: use it for chains that break the queue.
     */
    public void postRaw(final Desc... descs) {
        final int head = nextAvail;
        int headFlags = 0;
        for (int i = 0; i < descs.length; i++) {
            final Desc d = descs[i];
            final int flags = d.flags() | availBits();
            writeBody(slot(nextAvail), d.addr(), d.len(), d.id());
            if (i == 0) {
                headFlags = flags;
            } else {
                mem.putShort(slot(nextAvail) + 14, flags);
            }
            step();
        }
        mem.putShortRelease(slot(head) + 14, headFlags);
    }

    /** Write ring descriptor {@code position} verbatim, flags included. */
    public void writeDescriptor(final int position, final long addr, final int len, final int id, final int flags) {
        writeDesc(slot(position), addr, len, id, flags);
    }

    /** The driver event suppression structure (read by the device before it calls). */
    public void setDriverEvent(final int flags, final int offWrap) {
        mem.putShortRelease(driverEventGpa, offWrap);
        mem.putShortRelease(driverEventGpa + 2, flags);
    }

    /** Calls wanted once the used descriptor at this position (and lap) is written. */
    public void callAt(final int position, final boolean wrap) {
        setDriverEvent(EVENT_DESC, position | (wrap ? WRAP : 0));
    }

    public int deviceEventFlags() {
        return mem.getShortAcquire(deviceEventGpa + 2);
    }

    public int deviceEventOffWrap() {
        return mem.getShortAcquire(deviceEventGpa);
    }

    /** Kick as Linux's virtqueue_kick_prepare_packed decides: desc mode (with EVENT_IDX) kicks when the event
     *  position lies in what was made available since {@code oldAvail}; otherwise unless disabled. */
    @Override
    public boolean kickIfNeeded(final int oldAvail) {
        java.lang.invoke.VarHandle.fullFence();
        final int event = mem.getInt(deviceEventGpa);
        final int flags = (event >>> 16) & 3;
        final boolean kick;
        if (eventIdx && flags == EVENT_DESC) {
            final int laps = 2 * size;
            final int old = lap(oldAvail);
            kick = Math.floorMod(lap(event & 0xffff) - old, laps) < Math.floorMod(lap(availIdx()) - old, laps);
        } else {
            kick = flags != EVENT_DISABLE;
        }
        if (kick) {
            kick();
        }
        return kick;
    }

    private int lap(final int offWrap) {
        final int position = offWrap & (WRAP - 1);
        return (offWrap & WRAP) != 0 ? position : position + size;
    }

    @Override
    public void kick() {
        final int errno = Sys.eventfdSignal(kickFd);
        if (errno != 0) {
            throw new IllegalStateException("kick failed: " + Sys.strerror(errno));
        }
    }

    /** Used descriptors written since the last call, in ring order; their ids and descriptors become free. */
    public List<UsedDesc> collectUsedDescriptors() {
        final List<UsedDesc> out = new ArrayList<>();
        while (inFlightDescriptors > 0) {
            final long at = slot(nextUsed);
            final int flags = mem.getShortAcquire(at + 14);
            final boolean usedBit = (flags & F_USED) != 0;
            if (usedBit != usedWrap) {
                break;
            }
            if (((flags & F_AVAIL) != 0) != usedWrap) {
                throw new IllegalStateException("queue " + index + ": used descriptor at " + nextUsed
                    + " has AVAIL != USED (flags 0x" + Integer.toHexString(flags) + ")");
            }
            final int id = mem.getShort(at + 12);
            final int len = mem.getInt(at + 8);
            if (id >= size || chainLength[id] == 0) {
                throw new IllegalStateException("queue " + index + ": device used buffer id " + id
                    + ", which is not in flight");
            }
            out.add(new UsedDesc(nextUsed, id, len, flags));
            final int n = chainLength[id];
            chainLength[id] = 0;
            freeIds.push(id);
            inFlightDescriptors -= n;
            nextUsed += n;
            if (nextUsed >= size) {
                nextUsed -= size;
                usedWrap = !usedWrap;
            }
        }
        if (eventIdx) {
            callAt(nextUsed, usedWrap);
        }
        return out;
    }

    @Override
    public List<TestRing.Used> collectUsed() {
        final List<TestRing.Used> out = new ArrayList<>();
        for (final UsedDesc u : collectUsedDescriptors()) {
            out.add(new TestRing.Used(u.id(), u.len()));
        }
        return out;
    }

    /** Chains posted and not yet used. */
    public int inFlightDescriptors() {
        return inFlightDescriptors;
    }

    @Override
    public byte[] readWritten(final TestRing.Used used) {
        return TestRing.readWritten(mem, index, posted[used.id()], used);
    }

    @Override
    public long awaitCall(final long timeoutMs) throws IOException {
        if (Sys.pollReadable(new int[] {callFd}, (int) timeoutMs) == 0) {
            return 0;
        }
        return Sys.eventfdDrain(callFd);
    }

    @Override
    public long drainCalls() {
        return Sys.eventfdDrain(callFd);
    }

    /** Whether the device has written a used descriptor for every chain in flight (read only, nothing
     *  collected): walks the used descriptors from the driver's used position, skipping each chain. */
    private boolean allPostedUsed() {
        int position = nextUsed;
        boolean wrap = usedWrap;
        int left = inFlightDescriptors;
        while (left > 0) {
            final long at = slot(position);
            final int flags = mem.getShortAcquire(at + 14);
            if (((flags & F_USED) != 0) != wrap) {
                return false;
            }
            final int id = mem.getShort(at + 12);
            final int n = id < size ? chainLength[id] : 0;
            if (n == 0) {
                throw new IllegalStateException("queue " + index + ": device used buffer id " + id
                    + ", which is not in flight");
            }
            left -= n;
            position += n;
            if (position >= size) {
                position -= size;
                wrap = !wrap;
            }
        }
        return true;
    }

    @Override
    public boolean awaitPostedUsed(final long timeoutMs) throws IOException {
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (!allPostedUsed()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            awaitCall(10);
        }
        return true;
    }

    /** Wait (safety-net timeout) until every posted chain is used, collecting them. */
    public List<UsedDesc> awaitAllUsed(final long timeoutMs) throws IOException {
        final List<UsedDesc> out = new ArrayList<>();
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000;
        while (true) {
            out.addAll(collectUsedDescriptors());
            if (inFlightDescriptors == 0 || System.nanoTime() > deadline) {
                return out;
            }
            awaitCall(10);
        }
    }

    @Override
    public void close() {
        Sys.closeQuietly(kickFd);
        Sys.closeQuietly(callFd);
    }
}
