package org.vsbridge.vhost.queue;

import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.sys.Sys;

import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A split virtqueue (virtio 1.x §2.7) as the device side sees it. Owned by the device worker thread: every
 * method, including the setters the worker calls for vhost-user commands, runs on that thread.
 *
 * <p>Ring addresses are frontend virtual addresses, translated once per (memory table, SET_VRING_ADDR,
 * SET_VRING_NUM) into range-checked views; descriptor addresses are guest-physical and checked on every chain.
 * Any bad guest number marks the queue broken (logged once), after which it does nothing until reset.
 */
public final class SplitVirtqueue implements Virtqueue {

    private static final Logger LOG = Logger.getLogger(SplitVirtqueue.class.getName());
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    public static final int VIRTQ_DESC_F_NEXT = 1;
    public static final int VIRTQ_DESC_F_WRITE = 2;
    public static final int VIRTQ_DESC_F_INDIRECT = 4;
    public static final int VIRTQ_USED_F_NO_NOTIFY = 1;
    public static final int VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
    public static final int DESC_SIZE = 16;

    private final int index;
    private final int maxSize;
    private final String name;
    private final QueueCounters counters;

    private final UnsafeBuffer desc = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer avail = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer used = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer indirect = new UnsafeBuffer(0, 0);

    private GuestMemory memory = GuestMemory.EMPTY;
    private int size;
    private boolean addrSet;
    private long descUva;
    private long availUva;
    private long usedUva;
    private boolean translated;
    private boolean reloadUsedIdx;

    private boolean enabled;
    private boolean started;
    private boolean polled;
    private int callFd = -1;
    private int errFd = -1;
    private boolean eventIdx;
    private boolean indirectAllowed;

    private boolean broken;
    private String brokenReason;

    private int nextAvail;
    private int nextUsed;
    private int signalledUsed;
    private boolean signalledValid;
    private boolean peeked;
    private boolean notificationsEnabled = true;

    public SplitVirtqueue(final String deviceName, final int index, final int maxSize, final QueueCounters counters) {
        this.index = index;
        this.maxSize = maxSize;
        this.name = deviceName + " queue " + index;
        this.counters = counters;
    }

    // ------------------------------------------------------------------ Virtqueue

    @Override
    public int index() {
        return index;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean isReady() {
        return started && enabled && translated && !broken;
    }

    @Override
    public boolean isBroken() {
        return broken;
    }

    /** Why the queue broke, or null. */
    public String brokenReason() {
        return brokenReason;
    }

    @Override
    public int available() {
        if (!isReady()) {
            return 0;
        }
        final int availIdx = avail.getShortVolatile(2) & 0xffff; // acquire: ring entries after this read
        final int count = (availIdx - nextAvail) & 0xffff;
        if (count > size) {
            markBroken("avail idx " + availIdx + " is " + count + " ahead of next_avail " + nextAvail
                + ", more than the queue size " + size);
            return 0;
        }
        return count;
    }

    @Override
    public boolean peek(final DescriptorChain chain) {
        peeked = false;
        if (available() == 0) {
            return false;
        }
        final int head = avail.getShort(4 + 2 * (nextAvail & (size - 1)), LE) & 0xffff;
        if (head >= size) {
            markBroken("avail ring entry " + nextAvail + " names head " + head + " >= queue size " + size);
            return false;
        }
        if (!walk(head, chain)) {
            return false;
        }
        peeked = true;
        return true;
    }

    /** Walks one chain into {@code chain}; false (queue broken) on the first bad descriptor. */
    private boolean walk(final int head, final DescriptorChain chain) {
        chain.reset(head);
        UnsafeBuffer table = desc;
        int tableSize = size;
        int hopLimit = size;
        int hops = 0;
        int i = head;
        boolean inIndirect = false;
        boolean seenWritable = false;
        while (true) {
            if (++hops > hopLimit) {
                return markBroken("descriptor chain from head " + head + " is longer than " + hopLimit
                    + " hops (loop)");
            }
            final int off = i * DESC_SIZE;
            final long addr = table.getLong(off, LE);
            final long len = table.getInt(off + 8, LE) & 0xffffffffL;
            final int flags = table.getShort(off + 12, LE) & 0xffff;
            final int next = table.getShort(off + 14, LE) & 0xffff;
            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                if (!indirectAllowed) {
                    return markBroken("descriptor " + i + " is INDIRECT but VIRTIO_RING_F_INDIRECT_DESC was not acked");
                }
                if (inIndirect) {
                    return markBroken("nested indirect descriptor in the table of head " + head);
                }
                if ((flags & VIRTQ_DESC_F_NEXT) != 0) {
                    return markBroken("descriptor " + i + " has both INDIRECT and NEXT");
                }
                if (len == 0 || len % DESC_SIZE != 0 || len / DESC_SIZE > 65536) {
                    return markBroken("indirect table of head " + head + " has bad length " + len);
                }
                final long host = memory.translateGpa(addr, len);
                if (host == GuestMemory.BAD) {
                    return markBroken("indirect table gpa 0x" + Long.toHexString(addr) + " + " + len
                        + " is not inside one memory region");
                }
                indirect.wrap(host, (int) len);
                table = indirect;
                tableSize = (int) (len / DESC_SIZE);
                hopLimit += tableSize;
                inIndirect = true;
                i = 0;
                continue;
            }
            final boolean writable = (flags & VIRTQ_DESC_F_WRITE) != 0;
            if (!writable && seenWritable) {
                return markBroken("readable descriptor after a writable one in the chain of head " + head);
            }
            seenWritable |= writable;
            if (!addSegments(chain, addr, len, writable, head)) {
                return false;
            }
            if ((flags & VIRTQ_DESC_F_NEXT) == 0) {
                return true;
            }
            if (next >= tableSize) {
                return markBroken("descriptor " + i + " of head " + head + " has next " + next + " >= "
                    + (inIndirect ? "indirect table size " : "queue size ") + tableSize);
            }
            i = next;
        }
    }

    /** Translates one descriptor buffer, split at region boundaries. */
    private boolean addSegments(final DescriptorChain chain, final long gpa, final long len, final boolean writable,
                                final int head) {
        long at = gpa;
        long left = len;
        while (left > 0) {
            final long remaining = memory.gpaRemaining(at);
            if (remaining == 0) {
                return markBroken("descriptor buffer gpa 0x" + Long.toHexString(gpa) + " + " + len
                    + " of head " + head + " is outside guest memory");
            }
            final long n = Math.min(Math.min(remaining, left), Integer.MAX_VALUE);
            final long host = memory.translateGpa(at, n);
            if (host == GuestMemory.BAD) {
                return markBroken("descriptor buffer gpa 0x" + Long.toHexString(at) + " is outside guest memory");
            }
            if (!chain.add(host, (int) n, writable)) {
                return markBroken("chain of head " + head + " has more than " + DescriptorChain.MAX_SEGMENTS
                    + " segments");
            }
            at += n;
            left -= n;
        }
        return true;
    }

    @Override
    public void advance() {
        if (!peeked || !isReady()) {
            return;
        }
        peeked = false;
        nextAvail = (nextAvail + 1) & 0xffff;
        if (eventIdx && notificationsEnabled) {
            // As QEMU does on every pop: ask for a kick as soon as the driver adds past what we consumed.
            used.putShort(4 + 8 * size, (short) nextAvail, LE);
        }
    }

    @Override
    public void addUsed(final int head, final int writtenLength) {
        if (!isReady()) {
            return;
        }
        if (head < 0 || head >= size) {
            markBroken("device returned head " + head + " outside the queue size " + size);
            return;
        }
        final int off = 4 + 8 * (nextUsed & (size - 1));
        used.putInt(off, head, LE);
        used.putInt(off + 4, writtenLength, LE);
        nextUsed = (nextUsed + 1) & 0xffff;
        counters.onUsed(index);
    }

    @Override
    public void flushUsed() {
        if (!isReady()) {
            return;
        }
        final int published = used.getShort(2, LE) & 0xffff;
        if (published != nextUsed) {
            VarHandle.releaseFence(); // used elements before used.idx
            used.putShort(2, (short) nextUsed, LE);
        }
        // used.idx store before the used_event / flags load (vring_need_event needs a full barrier).
        VarHandle.fullFence();
        final int newIdx = nextUsed;
        final int old = signalledUsed;
        final boolean valid = signalledValid;
        if (valid && old == newIdx) {
            return;
        }
        signalledUsed = newIdx;
        signalledValid = true;
        final boolean notify;
        if (eventIdx) {
            final int usedEvent = avail.getShort(4 + 2 * size, LE) & 0xffff;
            notify = !valid || ((newIdx - usedEvent - 1) & 0xffff) < ((newIdx - old) & 0xffff);
        } else {
            notify = (avail.getShort(0, LE) & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
        }
        if (notify) {
            signalCall();
        }
    }

    private void signalCall() {
        if (callFd >= 0) {
            final int errno = Sys.eventfdSignal(callFd);
            if (errno == 0) {
                counters.onCall(index);
            } else if (errno != Sys.EAGAIN) {
                LOG.warning(() -> name + ": call eventfd write failed: " + Sys.strerror(errno));
            }
        }
    }

    @Override
    public boolean enableNotifications() {
        if (!isReady()) {
            return false;
        }
        notificationsEnabled = true;
        if (eventIdx) {
            used.putShort(4 + 8 * size, (short) (avail.getShortVolatile(2) & 0xffff), LE);
        } else {
            used.putShort(0, (short) 0, LE);
        }
        VarHandle.fullFence(); // publish the request before re-checking avail
        return available() > 0;
    }

    @Override
    public void disableNotifications() {
        if (!isReady()) {
            return;
        }
        notificationsEnabled = false;
        if (!eventIdx) {
            used.putShort(0, (short) VIRTQ_USED_F_NO_NOTIFY, LE);
        }
    }

    // ------------------------------------------------------------------ engine side (worker thread)

    private boolean markBroken(final String reason) {
        if (!broken) {
            broken = true;
            brokenReason = reason;
            counters.onBroken();
            LOG.log(Level.WARNING, () -> name + " broken: " + reason);
            if (errFd >= 0) {
                Sys.eventfdSignal(errFd);
            }
        }
        return false;
    }

    /** SET_VRING_NUM; the caller checked 1..max and power of two. */
    public void setSize(final int num) {
        size = num;
        translate();
    }

    /** SET_VRING_ADDR: frontend virtual addresses. The used index is re-read from the ring (rust-vmm#180). */
    public void setAddresses(final long descUva, final long availUva, final long usedUva) {
        this.descUva = descUva;
        this.availUva = availUva;
        this.usedUva = usedUva;
        this.addrSet = true;
        this.reloadUsedIdx = true;
        translate();
    }

    /** SET_VRING_BASE: next avail index. */
    public void setBase(final int base) {
        nextAvail = base & 0xffff;
        peeked = false;
    }

    /** GET_VRING_BASE answer. */
    public int nextAvail() {
        return nextAvail;
    }

    public int nextUsed() {
        return nextUsed;
    }

    public void setMemory(final GuestMemory memory) {
        this.memory = memory;
        translate();
    }

    public void setFeatures(final boolean eventIdx, final boolean indirectAllowed) {
        this.eventIdx = eventIdx;
        this.indirectAllowed = indirectAllowed;
    }

    public void setEnabled(final boolean enabled) {
        this.enabled = enabled;
    }

    public boolean isEnabled() {
        return enabled;
    }

    /** Kick fd set (or NOFD = {@code polled}): the ring may run. */
    public void start(final boolean polled) {
        this.started = true;
        this.polled = polled;
        this.signalledValid = false;
    }

    /** GET_VRING_BASE: stop without forgetting where we are. */
    public void stop() {
        started = false;
        polled = false;
        peeked = false;
    }

    public boolean isStarted() {
        return started;
    }

    /** NOFD kick: the worker polls this ring instead of waiting for kicks. */
    public boolean isPolled() {
        return polled;
    }

    /** Replace the call fd (-1 = none); returns the previous one for the caller to close. */
    public int replaceCallFd(final int fd) {
        final int old = callFd;
        callFd = fd;
        return old;
    }

    public int replaceErrFd(final int fd) {
        final int old = errFd;
        errFd = fd;
        return old;
    }

    /** Back to the state after construction (RESET_DEVICE, disconnect); memory is kept. Fds are returned
     *  through the replace methods first by the caller. */
    public void reset() {
        size = 0;
        addrSet = false;
        descUva = availUva = usedUva = 0;
        translated = false;
        reloadUsedIdx = false;
        enabled = false;
        started = false;
        polled = false;
        eventIdx = false;
        indirectAllowed = false;
        broken = false;
        brokenReason = null;
        nextAvail = nextUsed = signalledUsed = 0;
        signalledValid = false;
        peeked = false;
        notificationsEnabled = true;
        desc.wrap(0, 0);
        avail.wrap(0, 0);
        used.wrap(0, 0);
    }

    /** Re-translate the ring addresses; a failure is not a broken queue (the frontend may still be
     *  setting things up), just a queue that cannot run yet. */
    private void translate() {
        translated = false;
        if (!addrSet || size == 0 || memory.regionCount() == 0) {
            return;
        }
        final long descLen = (long) DESC_SIZE * size;
        final long availLen = 6L + 2L * size;
        final long usedLen = 6L + 8L * size;
        if ((descUva & 15) != 0 || (availUva & 1) != 0 || (usedUva & 3) != 0) {
            LOG.warning(() -> name + ": misaligned ring addresses desc=0x" + Long.toHexString(descUva)
                + " avail=0x" + Long.toHexString(availUva) + " used=0x" + Long.toHexString(usedUva));
            return;
        }
        final long d = memory.translateUva(descUva, descLen);
        final long a = memory.translateUva(availUva, availLen);
        final long u = memory.translateUva(usedUva, usedLen);
        if (d == GuestMemory.BAD || a == GuestMemory.BAD || u == GuestMemory.BAD) {
            LOG.warning(() -> name + ": ring not inside mapped memory (desc=0x" + Long.toHexString(descUva)
                + (d == GuestMemory.BAD ? " bad" : "") + ", avail=0x" + Long.toHexString(availUva)
                + (a == GuestMemory.BAD ? " bad" : "") + ", used=0x" + Long.toHexString(usedUva)
                + (u == GuestMemory.BAD ? " bad" : "") + ", size " + size + ")");
            return;
        }
        desc.wrap(d, (int) descLen);
        avail.wrap(a, (int) availLen);
        used.wrap(u, (int) usedLen);
        translated = true;
        if (reloadUsedIdx) {
            reloadUsedIdx = false;
            nextUsed = used.getShortVolatile(2) & 0xffff;
            signalledUsed = nextUsed;
            signalledValid = false;
        }
    }

    public int maxSize() {
        return maxSize;
    }

    @Override
    public String toString() {
        return name + "{size=" + size + ", enabled=" + enabled + ", started=" + started + ", translated="
            + translated + ", broken=" + broken + ", nextAvail=" + nextAvail + ", nextUsed=" + nextUsed + "}";
    }
}
