package org.vsbridge.vhost.queue;

import org.agrona.concurrent.UnsafeBuffer;

import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.logging.Logger;

/**
 * A packed virtqueue (virtio 1.x §2.8, VIRTIO_F_RING_PACKED) as the device side sees it: one ring of 16-byte
 * descriptors {@code {le64 addr, le32 len, le16 id, le16 flags}} that the driver makes available and the device
 * overwrites with used descriptors, and two 4-byte event suppression structures {@code {le16 off_wrap, le16
 * flags}}: the driver's, read here (the driver area, "avail" in SET_VRING_ADDR), and the device's, written here
 * (the device area, "used"). The control state, the broken-queue rule and what the layouts do alike (descriptor
 * checks, the advance/used/flush sequence, notification decisions) are {@link AbstractVirtqueue}'s.
 *
 * <p>The device keeps two positions, each with its ring wrap counter (§2.8.1, both start at 0 with counter 1):
 * next avail, where it reads the next chain, and next used, where it writes the next used descriptor. A chain of
 * n ring descriptors moves each of them by n: its one used descriptor carries the buffer id read from the
 * chain's last descriptor (§2.8.6). The ring descriptor count of every chain in flight is kept by buffer id, so
 * chains may complete in any order.
 *
 * <p>SET_VRING_BASE and GET_VRING_BASE carry both positions the way QEMU does (hw/virtio/virtio.c, and
 * vhost-user.rst "Vring descriptor indices for packed virtqueues"): bits 0-14 next avail, bit 15 the driver
 * ring wrap counter, bits 16-30 next used, bit 31 the device ring wrap counter.
 *
 * <p>Queue sizes need not be powers of two here (§2.8.10): positions wrap by comparison, never by a mask.
 */
public final class PackedVirtqueue extends AbstractVirtqueue {

    private static final Logger LOG = Logger.getLogger(PackedVirtqueue.class.getName());

    public static final int VIRTQ_DESC_F_NEXT = 1;
    public static final int VIRTQ_DESC_F_WRITE = 2;
    public static final int VIRTQ_DESC_F_INDIRECT = 4;
    public static final int VIRTQ_DESC_F_AVAIL = 1 << 7;
    public static final int VIRTQ_DESC_F_USED = 1 << 15;
    public static final int RING_EVENT_FLAGS_ENABLE = 0;
    public static final int RING_EVENT_FLAGS_DISABLE = 1;
    /** Only with VIRTIO_RING_F_EVENT_IDX: notify when the descriptor at off_wrap is made available / used. */
    public static final int RING_EVENT_FLAGS_DESC = 2;
    /** Size of one event suppression structure. */
    public static final int EVENT_SIZE = 4;
    /** §2.8: a packed virtqueue has at most 2^15 entries. */
    public static final int MAX_QUEUE_SIZE = 1 << 15;
    /** Bit 15 of an off_wrap value (and of each half of a vring base): the wrap counter. */
    public static final int WRAP_BIT = 1 << 15;

    private static final int POSITION_MASK = WRAP_BIT - 1;
    private static final int LEN_OFFSET = 8;
    private static final int ID_OFFSET = 12;
    private static final int FLAGS_OFFSET = 14;

    private final UnsafeBuffer desc = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer driverEvent = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer deviceEvent = new UnsafeBuffer(0, 0);

    private int nextAvail;
    private boolean availWrap = true;
    private int nextUsed;
    private boolean usedWrap = true;
    /** By buffer id: the ring descriptors of its chain while in flight (advanced, not used yet), 0 when not.
     *  Unsigned: a chain may take all 2^15 descriptors. */
    private short[] inFlight = new short[0];
    private int peekedId;
    private int peekedDescriptors;
    /** Offset of the batch's first used descriptor (its flags are stored last, by flushUsed), or -1. */
    private int pendingOffset = -1;
    private short pendingFlags;

    public PackedVirtqueue(final String deviceName, final int index, final int maxSize,
                           final QueueCounters counters) {
        super(deviceName, index, maxSize, counters);
    }

    /** The packed layout of {@code from}'s control state (the frontend acked VIRTIO_F_RING_PACKED). */
    PackedVirtqueue(final AbstractVirtqueue from) {
        super(from);
        sizeChanged();
        translate();
    }

    @Override
    public boolean isPacked() {
        return true;
    }

    // ------------------------------------------------------------------ Virtqueue

    /** 1 if a chain is available at next avail, else 0: a packed ring has no index to subtract, and counting
     *  would walk the ring. */
    @Override
    public int available() {
        if (!isReady()) {
            return 0;
        }
        return isAvailable(flagsAcquire(nextAvail), availWrap) ? 1 : 0;
    }

    /** §2.8.1: the driver marks a descriptor available with AVAIL equal to its wrap counter and USED not. */
    static boolean isAvailable(final int flags, final boolean wrap) {
        return ((flags & VIRTQ_DESC_F_AVAIL) != 0) == wrap && ((flags & VIRTQ_DESC_F_USED) != 0) != wrap;
    }

    /** The flags of ring descriptor {@code position}, read with acquire: what the driver wrote before them
     *  (the rest of the chain, the buffers) is visible after this load. */
    private int flagsAcquire(final int position) {
        final int flags = desc.getShort(position * DESC_SIZE + FLAGS_OFFSET, LE) & 0xffff;
        VarHandle.acquireFence();
        return flags;
    }

    @Override
    public boolean peek(final DescriptorChain chain) {
        peeked = false;
        if (!isReady()) {
            return false;
        }
        final int headFlags = flagsAcquire(nextAvail);
        if (!isAvailable(headFlags, availWrap)) {
            return false;
        }
        return walk(headFlags, chain);
    }

    /** Walks the chain at next avail into {@code chain}; false (queue broken) on the first bad descriptor. */
    private boolean walk(final int headFlags, final DescriptorChain chain) {
        beginChain(chain, 0);
        final int start = nextAvail;
        int position = start;
        boolean wrap = availWrap;
        int flags = headFlags;
        for (int count = 1; ; count++) {
            if (count > size) {
                return markBroken("descriptor chain at position " + start + " is longer than the queue size "
                    + size);
            }
            final int off = position * DESC_SIZE;
            if (count > 1) {
                // The driver makes a chain's head available last (§2.8.6): the rest must be available already.
                flags = desc.getShort(off + FLAGS_OFFSET, LE) & 0xffff;
                if (!isAvailable(flags, wrap)) {
                    return markBroken("descriptor " + position + " continues the chain at position " + start
                        + " but is not marked available (flags 0x" + Integer.toHexString(flags)
                        + "): the head was made available out of order");
                }
            }
            final long addr = desc.getLong(off, LE);
            final long len = desc.getInt(off + LEN_OFFSET, LE) & 0xffffffffL;
            final int id = desc.getShort(off + ID_OFFSET, LE) & 0xffff;
            final boolean next = (flags & VIRTQ_DESC_F_NEXT) != 0;
            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                if (!checkIndirectAllowed(position)) {
                    return false;
                }
                if (count > 1 || next) {
                    return markBroken("indirect descriptor " + position + " is chained with NEXT in the chain at "
                        + "position " + start);
                }
                if (!walkIndirect(chain, addr, len, start)) {
                    return false;
                }
            } else if (!addDescriptor(chain, addr, len, (flags & VIRTQ_DESC_F_WRITE) != 0, start, false)) {
                return false;
            }
            if (++position == size) {
                position = 0;
                wrap = !wrap;
            }
            if (!next) {
                // §2.8.6: the buffer id is in the chain's last descriptor.
                if (id >= size) {
                    return markBroken("buffer id " + id + " of the chain at position " + start
                        + " is >= queue size " + size);
                }
                if (inFlight[id] != 0) {
                    return markBroken("buffer id " + id + " of the chain at position " + start
                        + " is still in use by an earlier chain");
                }
                chain.setHead(id);
                peekedId = id;
                peekedDescriptors = count;
                peeked = true;
                return true;
            }
        }
    }

    /** §2.8.7: a table of {@code len / 16} packed descriptors, the whole chain at {@code start} (it was its only
     *  ring descriptor); only WRITE counts in them, INDIRECT (nesting) is refused. */
    private boolean walkIndirect(final DescriptorChain chain, final long addr, final long len, final int start) {
        final int entries = mapIndirect(addr, len, start);
        if (entries < 0) {
            return false;
        }
        for (int i = 0; i < entries; i++) {
            final int off = i * DESC_SIZE;
            final int flags = indirect.getShort(off + FLAGS_OFFSET, LE) & 0xffff;
            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                return markBroken("nested indirect descriptor " + i + " in the table of descriptor " + start);
            }
            if (!addDescriptor(chain, indirect.getLong(off, LE), indirect.getInt(off + LEN_OFFSET, LE) & 0xffffffffL,
                (flags & VIRTQ_DESC_F_WRITE) != 0, start, true)) {
                return false;
            }
        }
        return true;
    }


    @Override
    String chainName(final int where) {
        return "the chain at position " + where;
    }

    @Override
    void consumePeeked() {
        inFlight[peekedId] = (short) peekedDescriptors;
        nextAvail += peekedDescriptors;
        if (nextAvail >= size) {
            nextAvail -= size;
            availWrap = !availWrap;
        }
    }

    /** The device event: notify at the descriptor at next avail (as the split ring's avail_event). */
    @Override
    void publishAvailEvent() {
        writeDeviceEvent(RING_EVENT_FLAGS_DESC);
    }

    @Override
    boolean isInFlight(final int head) {
        return inFlight[head] != 0;
    }

    @Override
    String idName() {
        return "buffer id";
    }

    /** Writes the used descriptor of buffer {@code head} at next used (§2.8.3: id, length, AVAIL = USED = the
     *  device ring wrap counter, WRITE when something was written) and moves next used past its chain. The
     *  batch's first flags wait for {@link #flushUsed}. */
    @Override
    void writeUsed(final int head, final int writtenLength) {
        final int descriptors = inFlight[head] & 0xffff;
        inFlight[head] = 0;
        final int off = nextUsed * DESC_SIZE;
        desc.putInt(off + LEN_OFFSET, writtenLength, LE);
        desc.putShort(off + ID_OFFSET, (short) head, LE);
        final short flags = (short) ((usedWrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0)
            | (writtenLength != 0 ? VIRTQ_DESC_F_WRITE : 0));
        if (pendingOffset < 0) {
            pendingOffset = off;
            pendingFlags = flags;
        } else {
            // The driver reads past the batch's first used descriptor only after seeing it (stored last).
            desc.putShort(off + FLAGS_OFFSET, flags, LE);
        }
        nextUsed += descriptors;
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
    }

    private void publishPending() {
        if (pendingOffset >= 0) {
            VarHandle.releaseFence(); // ids, lengths and the batch's other flags before its first flags
            desc.putShort(pendingOffset + FLAGS_OFFSET, pendingFlags, LE);
            pendingOffset = -1;
        }
    }

    @Override
    void publishUsed() {
        publishPending();
    }

    /** Next used with the device ring wrap counter in bit 15, as the driver's off_wrap names a position. */
    @Override
    int usedMark() {
        return nextUsed | (usedWrap ? WRAP_BIT : 0);
    }

    /** The driver event suppression structure (§2.8.10): its flags, and with DESC the position it names. */
    @Override
    boolean driverWantsCall(final boolean valid, final int old, final int now) {
        final int event = driverEvent.getInt(0, LE);
        final int offWrap = event & 0xffff;
        return switch ((event >>> 16) & 3) {
            case RING_EVENT_FLAGS_DISABLE -> false;
            case RING_EVENT_FLAGS_DESC -> !eventIdx || !valid || eventPassed(offWrap, old & POSITION_MASK,
                (old & WRAP_BIT) != 0, now & POSITION_MASK, (now & WRAP_BIT) != 0);
            // ENABLE, and the reserved value 3: a needless notification costs little, a missing one hangs the driver.
            default -> true;
        };
    }

    /**
     * Whether the descriptor the driver named in {@code offWrap} lies in [old, new): it was written as a used
     * descriptor or skipped over inside a used chain in this batch. Positions are counted over two laps (the
     * wrap counter is the lap's parity), so the comparison survives wrap-around.
     */
    private boolean eventPassed(final int offWrap, final int oldUsed, final boolean oldWrap, final int newUsed,
                                final boolean newWrap) {
        final int position = offWrap & POSITION_MASK;
        if (position >= size) {
            return true; // not a position of this ring: notify rather than let the driver wait forever
        }
        final int laps = 2 * size;
        final int old = lapPosition(oldUsed, oldWrap);
        final int moved = Math.floorMod(lapPosition(newUsed, newWrap) - old, laps);
        return Math.floorMod(lapPosition(position, (offWrap & WRAP_BIT) != 0) - old, laps) < moved;
    }

    private int lapPosition(final int position, final boolean wrap) {
        return wrap ? position : position + size;
    }

    @Override
    void requestKicks() {
        writeDeviceEvent(eventIdx ? RING_EVENT_FLAGS_DESC : RING_EVENT_FLAGS_ENABLE);
    }

    @Override
    void suppressKicks() {
        writeDeviceEvent(RING_EVENT_FLAGS_DISABLE);
    }

    /** The device event suppression structure: off_wrap = next avail and its wrap counter, then the flags, as
     *  one aligned 32-bit store so the driver never reads half of an update. */
    private void writeDeviceEvent(final int flags) {
        final int offWrap = nextAvail | (availWrap ? WRAP_BIT : 0);
        deviceEvent.putInt(0, offWrap | flags << 16, LE);
    }

    // ------------------------------------------------------------------ engine side (worker thread)

    /** SET_VRING_BASE: bits 0-14 next avail, bit 15 the driver ring wrap counter, bits 16-30 next used, bit 31 the
     *  device ring wrap counter. Chains in flight are forgotten: the frontend says where the rings are. */
    @Override
    public void setBase(final int base) {
        nextAvail = base & POSITION_MASK;
        availWrap = (base & WRAP_BIT) != 0;
        nextUsed = (base >>> 16) & POSITION_MASK;
        usedWrap = ((base >>> 16) & WRAP_BIT) != 0;
        Arrays.fill(inFlight, (short) 0);
        peeked = false;
        pendingOffset = -1;
        signalledValid = false;
        translate(); // the positions must lie inside the ring
    }

    /** GET_VRING_BASE answer, in the encoding {@link #setBase} takes. */
    @Override
    public int vringBase() {
        return nextAvail | (availWrap ? WRAP_BIT : 0) | (nextUsed | (usedWrap ? WRAP_BIT : 0)) << 16;
    }

    /** Position of the next chain to read. */
    public int nextAvail() {
        return nextAvail;
    }

    /** The driver ring wrap counter the device expects at {@link #nextAvail()}. */
    public boolean availWrapCounter() {
        return availWrap;
    }

    /** Position of the next used descriptor. */
    public int nextUsed() {
        return nextUsed;
    }

    /** The device ring wrap counter written with the next used descriptor. */
    public boolean usedWrapCounter() {
        return usedWrap;
    }

    @Override
    void sizeChanged() {
        if (inFlight.length != size) {
            inFlight = new short[size];
        } else {
            Arrays.fill(inFlight, (short) 0);
        }
        peeked = false;
        pendingOffset = -1;
    }

    @Override
    void stopped() {
        if (isTranslated()) {
            publishPending(); // a batch without its flush: next used already counts it
        }
    }

    @Override
    void resetRing() {
        nextAvail = nextUsed = 0;
        availWrap = usedWrap = true;
        inFlight = new short[0];
        pendingOffset = -1;
        desc.wrap(0, 0);
        driverEvent.wrap(0, 0);
        deviceEvent.wrap(0, 0);
    }

    @Override
    boolean mapRings(final long descUva, final long availUva, final long usedUva) {
        final long descLen = (long) DESC_SIZE * size;
        if ((descUva & 15) != 0 || (availUva & 3) != 0 || (usedUva & 3) != 0) {
            LOG.warning(() -> name + ": misaligned packed ring addresses desc=0x" + Long.toHexString(descUva)
                + " driver area=0x" + Long.toHexString(availUva) + " device area=0x" + Long.toHexString(usedUva));
            return false;
        }
        final int avail = nextAvail;
        final int used = nextUsed;
        if (avail >= size || used >= size) {
            LOG.warning(() -> name + ": ring base (next avail " + avail + ", next used " + used
                + ") is beyond the queue size " + size);
            return false;
        }
        return mapAreas(desc, descUva, descLen, driverEvent, availUva, EVENT_SIZE, "driver area", deviceEvent,
            usedUva, EVENT_SIZE, "device area");
    }

    @Override
    String positions() {
        return "packed, nextAvail=" + nextAvail + " (wrap " + (availWrap ? 1 : 0) + "), nextUsed=" + nextUsed
            + " (wrap " + (usedWrap ? 1 : 0) + ")";
    }
}
