package org.vsbridge.vhost.queue;

import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.memory.GuestMemory;

import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What both ring layouts share: the control state the engine sets from vhost-user messages (size, ring
 * addresses, memory table, call and error fds, ring features, enable and start), the broken-queue rule, and the
 * parts of the device's work whose logic does not depend on the layout: the peek/advance/used/flush sequence,
 * notification suppression (asking for kicks, deciding whether a batch of used buffers needs a call), the
 * checks every descriptor chain goes through (indirect tables, readable before writable, buffers inside guest
 * memory) and the mapping of the three ring areas. Where the formats differ (where a chain starts and ends,
 * how a used entry and the event fields are written) the two permitted subclasses (virtio 1.x §2.7 split, §2.8
 * packed) fill in. Owned by the device worker thread: every method, including the setters the worker calls for
 * vhost-user commands, runs on it.
 *
 * <p>Ring addresses are frontend virtual addresses, translated once per (memory table, SET_VRING_ADDR,
 * SET_VRING_NUM) into range-checked views by the layout; descriptor addresses are guest-physical and checked on
 * every chain. Any bad guest number marks the queue broken (logged once), after which it does nothing until
 * reset.
 */
public abstract sealed class AbstractVirtqueue implements Virtqueue permits SplitVirtqueue, PackedVirtqueue {

    private static final Logger LOG = Logger.getLogger(AbstractVirtqueue.class.getName());
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes of one descriptor, split and packed alike (§2.7.5, §2.8.13). */
    public static final int DESC_SIZE = 16;
    /** Most entries one indirect table may have (QEMU's limit too). */
    static final long MAX_INDIRECT_ENTRIES = 65536;

    final int index;
    final int maxSize;
    final String name;
    final QueueCounters counters;

    GuestMemory memory = GuestMemory.EMPTY;
    int size;
    boolean eventIdx;
    boolean indirectAllowed;

    private boolean addrSet;
    private long descUva;
    private long availUva;
    private long usedUva;
    private boolean translated;
    private boolean enabled;
    private boolean started;
    private boolean polled;
    private int callFd = -1;
    private int errFd = -1;
    private boolean broken;
    private String brokenReason;

    /** {@link #peek} found a chain that {@link #advance} may consume. */
    boolean peeked;
    /** The driver is asked for kicks (not suppressed while the device polls anyway). */
    boolean notificationsEnabled = true;
    /** The used position the last notification decision saw ({@link #usedMark()}), if {@link #signalledValid}. */
    private int signalledMark;
    /** False after a start or a remap: the next flush decides without comparing with a previous one. */
    boolean signalledValid;
    /** The indirect table being walked, re-wrapped per table. */
    final UnsafeBuffer indirect = new UnsafeBuffer(0, 0);
    /** A writable descriptor was seen in the chain being walked: a readable one may not follow (§2.7.4.2). */
    private boolean seenWritable;

    AbstractVirtqueue(final String deviceName, final int index, final int maxSize, final QueueCounters counters) {
        this.index = index;
        this.maxSize = maxSize;
        this.name = deviceName + " queue " + index;
        this.counters = counters;
    }

    /** A queue of another layout taking over {@code from}'s control state; its call and error fds move here.
     *  Ring positions start afresh (the layout changed: the old ones mean nothing to the new one). */
    AbstractVirtqueue(final AbstractVirtqueue from) {
        this.index = from.index;
        this.maxSize = from.maxSize;
        this.name = from.name;
        this.counters = from.counters;
        this.memory = from.memory;
        this.size = from.size;
        this.eventIdx = from.eventIdx;
        this.indirectAllowed = from.indirectAllowed;
        this.addrSet = from.addrSet;
        this.descUva = from.descUva;
        this.availUva = from.availUva;
        this.usedUva = from.usedUva;
        this.enabled = from.enabled;
        this.started = from.started;
        this.polled = from.polled;
        this.callFd = from.replaceCallFd(-1);
        this.errFd = from.replaceErrFd(-1);
    }

    /**
     * This queue if it already has the wanted layout, else a queue of that layout with this one's control state
     * (SET_FEATURES decides the layout: VIRTIO_F_RING_PACKED). This queue must not be used afterwards.
     */
    public final AbstractVirtqueue withLayout(final boolean packed) {
        if (packed == isPacked()) {
            return this;
        }
        return packed ? new PackedVirtqueue(this) : new SplitVirtqueue(this);
    }

    /**
     * INFLIGHT_SHMFD: this queue's part of the frontend's inflight buffer, or null (none). Only the split layout
     * keeps state there (the packed ring's inflight layout is not implemented); the packed one ignores it.
     */
    public void setInflight(final InflightRegion.Queue inflight) {
    }

    /** True for the packed layout (virtio 1.x §2.8), false for the split one (§2.7). */
    public abstract boolean isPacked();

    /** SET_VRING_BASE: the layout's own encoding of where the device resumes. */
    public abstract void setBase(int base);

    /** GET_VRING_BASE answer, in the encoding {@link #setBase} takes. */
    public abstract int vringBase();

    // ------------------------------------------------------------------ Virtqueue

    @Override
    public final int index() {
        return index;
    }

    @Override
    public final int size() {
        return size;
    }

    @Override
    public final boolean isReady() {
        return started && enabled && translated && !broken;
    }

    @Override
    public final boolean isBroken() {
        return broken;
    }

    /** Why the queue broke, or null. */
    public final String brokenReason() {
        return brokenReason;
    }

    @Override
    public final void advance() {
        if (!peeked || !isReady()) {
            return;
        }
        peeked = false;
        consumePeeked();
        if (eventIdx && notificationsEnabled) {
            // As QEMU does on every pop: ask for a kick as soon as the driver adds past what we consumed.
            publishAvailEvent();
        }
    }

    @Override
    public final void addUsed(final int head, final int writtenLength) {
        if (!isReady()) {
            return;
        }
        if (head < 0 || head >= size || !isInFlight(head)) {
            markBroken("device returned " + idName() + " " + head + ", which is not in flight (queue size " + size
                + ")");
            return;
        }
        writeUsed(head, writtenLength);
        counters.onUsed(index);
    }

    /** Publishes the batch, then decides (once per new used position) whether the driver wants a call. */
    @Override
    public final void flushUsed() {
        if (!isReady()) {
            return;
        }
        publishUsed();
        // The used publication before the driver's event fields are read (vring_need_event needs a full barrier).
        VarHandle.fullFence();
        final int mark = usedMark();
        final int old = signalledMark;
        final boolean valid = signalledValid;
        if (valid && old == mark) {
            return;
        }
        signalledMark = mark;
        signalledValid = true;
        if (driverWantsCall(valid, old, mark)) {
            signalCall();
        }
    }

    @Override
    public final boolean enableNotifications() {
        if (!isReady()) {
            return false;
        }
        notificationsEnabled = true;
        requestKicks();
        VarHandle.fullFence(); // publish the request before re-checking the ring
        return available() > 0;
    }

    @Override
    public final void disableNotifications() {
        if (!isReady()) {
            return;
        }
        notificationsEnabled = false;
        suppressKicks();
    }

    // ------------------------------------------------------------------ what a layout writes and reads

    /** Move next avail past the peeked chain (and record it in flight). */
    abstract void consumePeeked();

    /** EVENT_IDX: tell the driver to kick once it makes a buffer available past next avail. */
    abstract void publishAvailEvent();

    /** Whether {@code head} names a chain taken and not yet used (a layout that cannot tell says true). */
    abstract boolean isInFlight(int head);

    /** How log lines call what {@link #addUsed} takes ("head" or "buffer id"). */
    abstract String idName();

    /** Write the used entry of {@code head} at next used, not yet visible to the driver as a whole batch. */
    abstract void writeUsed(int head, int writtenLength);

    /** Make the batch's used entries visible to the driver (release). */
    abstract void publishUsed();

    /** The used position as one number, compared between flushes (packed: with its wrap counter). */
    abstract int usedMark();

    /** Whether the driver's event fields ask for a call now that used moved from {@code old} to {@code now};
     *  {@code valid} false: no earlier decision to compare with. */
    abstract boolean driverWantsCall(boolean valid, int old, int now);

    /** Ask the driver for kicks (EVENT_IDX or the flags the layout has). */
    abstract void requestKicks();

    /** Ask the driver not to kick. */
    abstract void suppressKicks();

    // ------------------------------------------------------------------ for the layouts

    /** Marks the queue broken for a bad guest number (logged and signalled on the error fd once); returns false
     *  so a walker can {@code return markBroken(...)}. */
    final boolean markBroken(final String reason) {
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

    /** Used buffer notification through the call fd (counted; EAGAIN means one is pending already). */
    final void signalCall() {
        if (callFd >= 0) {
            final int errno = Sys.eventfdSignal(callFd);
            if (errno == 0) {
                counters.onCall(index);
            } else if (errno != Sys.EAGAIN) {
                LOG.warning(() -> name + ": call eventfd write failed: " + Sys.strerror(errno));
            }
        }
    }

    /** How a log line names the chain a layout calls {@code where} (split: its head; packed: its position). */
    abstract String chainName(int where);

    /** A chain walk starts: {@code chain} is emptied for {@code head} (split) or a buffer id still to be read. */
    final void beginChain(final DescriptorChain chain, final int head) {
        chain.reset(head);
        seenWritable = false;
    }

    /** A descriptor with VIRTQ_DESC_F_INDIRECT: false (queue broken) unless the driver acked indirect ones. */
    final boolean checkIndirectAllowed(final int descriptor) {
        return indirectAllowed || markBroken("descriptor " + descriptor
            + " is INDIRECT but VIRTIO_RING_F_INDIRECT_DESC was not acked");
    }

    /**
     * Maps the indirect table of {@code len} bytes at {@code gpa} into {@link #indirect}; returns its entry count,
     * or -1 (queue broken) when the length is not a non-zero multiple of a descriptor, the table is too large, or
     * it is not inside one memory region.
     */
    final int mapIndirect(final long gpa, final long len, final int where) {
        if (len == 0 || len % DESC_SIZE != 0 || len / DESC_SIZE > MAX_INDIRECT_ENTRIES) {
            markBroken("indirect table of " + chainName(where) + " has bad length " + len + " (not a non-zero"
                + " multiple of " + DESC_SIZE + " up to " + MAX_INDIRECT_ENTRIES + " entries)");
            return -1;
        }
        final long host = memory.translateGpa(gpa, len);
        if (host == GuestMemory.BAD) {
            markBroken("indirect table gpa 0x" + Long.toHexString(gpa) + " + " + len
                + " is not inside one memory region");
            return -1;
        }
        indirect.wrap(host, (int) len);
        return (int) (len / DESC_SIZE);
    }

    /** One buffer descriptor of the chain being walked: readable ones first (§2.7.4.2, §2.8.4), then its buffer
     *  added through {@link #addSegments}. {@code inIndirect} only words the error. */
    final boolean addDescriptor(final DescriptorChain chain, final long gpa, final long len, final boolean writable,
                                final int where, final boolean inIndirect) {
        if (!writable && seenWritable) {
            return markBroken("readable descriptor after a writable one in " + (inIndirect ? "the indirect table of "
                : "") + chainName(where));
        }
        seenWritable |= writable;
        return addSegments(chain, gpa, len, writable, where);
    }

    /** Translates one descriptor buffer into {@code chain}, split at region boundaries; false (queue broken) when
     *  it is not all inside guest memory or the chain has too many segments. */
    final boolean addSegments(final DescriptorChain chain, final long gpa, final long len, final boolean writable,
                              final int where) {
        long at = gpa;
        long left = len;
        while (left > 0) {
            final long remaining = memory.gpaRemaining(at);
            if (remaining == 0) {
                return markBroken("descriptor buffer gpa 0x" + Long.toHexString(gpa) + " + " + len + " of "
                    + chainName(where) + " is outside guest memory");
            }
            final long n = Math.min(Math.min(remaining, left), Integer.MAX_VALUE);
            final long host = memory.translateGpa(at, n);
            if (host == GuestMemory.BAD) {
                return markBroken("descriptor buffer gpa 0x" + Long.toHexString(at) + " is outside guest memory");
            }
            if (!chain.add(host, (int) n, writable)) {
                return markBroken(chainName(where) + " has more than " + DescriptorChain.MAX_SEGMENTS + " segments");
            }
            at += n;
            left -= n;
        }
        return true;
    }

    /** Translates the rings at these frontend virtual addresses for {@link #size}; false (logged) if they cannot
     *  run yet. */
    abstract boolean mapRings(long descUva, long availUva, long usedUva);

    /**
     * Wraps the three ring areas (descriptors, driver area, device area) of the given lengths, or logs which of them
     * is not inside mapped memory and returns false. {@code driverArea} and {@code deviceArea} name the areas as the
     * layout's spec section does.
     */
    final boolean mapAreas(final UnsafeBuffer desc, final long descUva, final long descLen,
                           final UnsafeBuffer driver, final long driverUva, final long driverLen, final String driverArea,
                           final UnsafeBuffer device, final long deviceUva, final long deviceLen,
                           final String deviceArea) {
        final long d = memory.translateUva(descUva, descLen);
        final long a = memory.translateUva(driverUva, driverLen);
        final long u = memory.translateUva(deviceUva, deviceLen);
        if (d == GuestMemory.BAD || a == GuestMemory.BAD || u == GuestMemory.BAD) {
            LOG.warning(() -> name + ": ring not inside mapped memory (desc=0x" + Long.toHexString(descUva)
                + (d == GuestMemory.BAD ? " bad" : "") + ", " + driverArea + "=0x" + Long.toHexString(driverUva)
                + (a == GuestMemory.BAD ? " bad" : "") + ", " + deviceArea + "=0x" + Long.toHexString(deviceUva)
                + (u == GuestMemory.BAD ? " bad" : "") + ", size " + size + ")");
            return false;
        }
        desc.wrap(d, (int) descLen);
        driver.wrap(a, (int) driverLen);
        device.wrap(u, (int) deviceLen);
        return true;
    }

    /** Unmap the rings and forget every ring position (reset). */
    abstract void resetRing();

    /** SET_VRING_NUM changed {@link #size}. */
    void sizeChanged() {
    }

    /** SET_VRING_ADDR gave new addresses (before they are translated). */
    void addressesChanged() {
    }

    /** The ring stopped (GET_VRING_BASE); a peeked chain is already forgotten. */
    void stopped() {
    }

    /** One-line ring positions for {@link #toString()}. */
    abstract String positions();

    // ------------------------------------------------------------------ engine side (worker thread)

    /** SET_VRING_NUM; the caller checked the range the layout allows. */
    public final void setSize(final int num) {
        size = num;
        sizeChanged();
        translate();
    }

    /** SET_VRING_ADDR: frontend virtual addresses of the descriptor area, the driver area ("avail") and the
     *  device area ("used"). */
    public final void setAddresses(final long descUva, final long availUva, final long usedUva) {
        this.descUva = descUva;
        this.availUva = availUva;
        this.usedUva = usedUva;
        this.addrSet = true;
        addressesChanged();
        translate();
    }

    public final void setMemory(final GuestMemory memory) {
        this.memory = memory;
        translate();
    }

    public final void setFeatures(final boolean eventIdx, final boolean indirectAllowed) {
        this.eventIdx = eventIdx;
        this.indirectAllowed = indirectAllowed;
    }

    public final void setEnabled(final boolean enabled) {
        this.enabled = enabled;
    }

    public final boolean isEnabled() {
        return enabled;
    }

    /** Kick fd set (or NOFD = {@code polled}): the ring may run. */
    public final void start(final boolean polled) {
        this.started = true;
        this.polled = polled;
        signalledValid = false; // the driver may have changed its event fields while the ring was stopped
    }

    /** GET_VRING_BASE: stop without forgetting where we are. */
    public final void stop() {
        started = false;
        polled = false;
        peeked = false;
        stopped();
    }

    public final boolean isStarted() {
        return started;
    }

    /** NOFD kick: the worker polls this ring instead of waiting for kicks. */
    public final boolean isPolled() {
        return polled;
    }

    /** Replace the call fd (-1 = none); returns the previous one for the caller to close. */
    public final int replaceCallFd(final int fd) {
        final int old = callFd;
        callFd = fd;
        return old;
    }

    public final int replaceErrFd(final int fd) {
        final int old = errFd;
        errFd = fd;
        return old;
    }

    /** Back to the state after construction (RESET_DEVICE, disconnect); memory is kept. Fds are returned
     *  through the replace methods first by the caller. */
    public final void reset() {
        size = 0;
        addrSet = false;
        descUva = availUva = usedUva = 0;
        translated = false;
        enabled = false;
        started = false;
        polled = false;
        eventIdx = false;
        indirectAllowed = false;
        broken = false;
        brokenReason = null;
        peeked = false;
        notificationsEnabled = true;
        signalledValid = false;
        signalledMark = 0;
        resetRing();
    }

    /** Re-translate the ring addresses; a failure is not a broken queue (the frontend may still be setting
     *  things up), just a queue that cannot run yet. */
    final void translate() {
        translated = false;
        if (!addrSet || size == 0 || memory.regionCount() == 0) {
            return;
        }
        translated = mapRings(descUva, availUva, usedUva);
    }

    /** The rings' frontend addresses in one number: what an inflight buffer's state is about. */
    final long ringIdentity() {
        return descUva ^ Long.rotateLeft(availUva, 21) ^ Long.rotateLeft(usedUva, 42);
    }

    /** The rings are mapped for the current size, addresses and memory table. */
    final boolean isTranslated() {
        return translated;
    }

    public final int maxSize() {
        return maxSize;
    }

    @Override
    public final String toString() {
        return name + "{size=" + size + ", enabled=" + enabled + ", started=" + started + ", translated="
            + translated + ", broken=" + broken + ", " + positions() + "}";
    }
}
