package org.vsbridge.vhost.queue;

import org.agrona.concurrent.UnsafeBuffer;

import java.lang.invoke.VarHandle;
import java.util.logging.Logger;

/**
 * A split virtqueue (virtio 1.x §2.7) as the device side sees it: descriptor table, avail ring, used ring. The
 * control state (size, addresses, memory, fds, features, enable and start), the broken-queue rule and what the
 * layouts do alike (descriptor checks, the advance/used/flush sequence, notification decisions) are
 * {@link AbstractVirtqueue}'s; here are the split ring's own formats and its INFLIGHT_SHMFD tracking. Worker thread
 * only.
 */
public final class SplitVirtqueue extends AbstractVirtqueue {

    private static final Logger LOG = Logger.getLogger(SplitVirtqueue.class.getName());

    public static final int VIRTQ_DESC_F_NEXT = 1;
    public static final int VIRTQ_DESC_F_WRITE = 2;
    public static final int VIRTQ_DESC_F_INDIRECT = 4;
    public static final int VIRTQ_USED_F_NO_NOTIFY = 1;
    public static final int VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

    private final UnsafeBuffer desc = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer avail = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer used = new UnsafeBuffer(0, 0);

    private boolean reloadUsedIdx;
    private int nextAvail;
    private int nextUsed;
    private int peekedHead;

    /** INFLIGHT_SHMFD state (null: none); see {@link #recoverInflight}. */
    private InflightRegion.Queue inflight;
    private boolean inflightChecked;
    private boolean trackDelivery;
    private long inflightCounter;
    private int[] batchHeads;
    private int batchCount;
    /** After a restart on a live buffer: the chain at this position and head resumes at this byte. */
    private int resumePosition = -1;
    private int resumeHead;
    private long resumeBytes;

    public SplitVirtqueue(final String deviceName, final int index, final int maxSize, final QueueCounters counters) {
        super(deviceName, index, maxSize, counters);
    }

    /** The split layout of {@code from}'s control state (a frontend that acked VIRTIO_F_RING_PACKED acks
     *  features again without it). */
    SplitVirtqueue(final AbstractVirtqueue from) {
        super(from);
        addressesChanged(); // the used index lives in the ring: read it there
        translate();
    }

    @Override
    public boolean isPacked() {
        return false;
    }

    // ------------------------------------------------------------------ Virtqueue

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
        if (inflight != null && !inflightChecked && isReady()) {
            recoverInflight(chain);
        }
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
        peekedHead = head;
        return true;
    }

    /** Walks one chain into {@code chain}; false (queue broken) on the first bad descriptor. */
    private boolean walk(final int head, final DescriptorChain chain) {
        beginChain(chain, head);
        UnsafeBuffer table = desc;
        int tableSize = size;
        int hopLimit = size;
        int hops = 0;
        int i = head;
        boolean inIndirect = false;
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
                if (!checkIndirectAllowed(i)) {
                    return false;
                }
                if (inIndirect) {
                    return markBroken("nested indirect descriptor in the table of head " + head);
                }
                if ((flags & VIRTQ_DESC_F_NEXT) != 0) {
                    return markBroken("descriptor " + i + " has both INDIRECT and NEXT");
                }
                tableSize = mapIndirect(addr, len, head);
                if (tableSize < 0) {
                    return false;
                }
                table = indirect;
                hopLimit += tableSize;
                inIndirect = true;
                i = 0;
                continue;
            }
            if (!addDescriptor(chain, addr, len, (flags & VIRTQ_DESC_F_WRITE) != 0, head, false)) {
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


    @Override
    String chainName(final int where) {
        return "the chain of head " + where;
    }

    @Override
    void consumePeeked() {
        nextAvail = (nextAvail + 1) & 0xffff;
        if (inflight != null) {
            inflight.setInflight(peekedHead, ++inflightCounter);
            if (trackDelivery) {
                inflight.setDelivered(nextAvail, 0, 0); // the chain before it went out in full
            }
        }
    }

    /** avail_event (in the used ring, after its entries) = next avail. */
    @Override
    void publishAvailEvent() {
        used.putShort(4 + 8 * size, (short) nextAvail, LE);
    }

    /** A split ring does not track its heads (the inflight buffer does, for another process): any head of the
     *  ring is taken as in flight. */
    @Override
    boolean isInFlight(final int head) {
        return true;
    }

    @Override
    String idName() {
        return "head";
    }

    @Override
    void writeUsed(final int head, final int writtenLength) {
        final int off = 4 + 8 * (nextUsed & (size - 1));
        used.putInt(off, head, LE);
        used.putInt(off + 4, writtenLength, LE);
        nextUsed = (nextUsed + 1) & 0xffff;
        if (inflight != null) {
            if (batchCount < batchHeads.length) {
                batchHeads[batchCount++] = head;
            } else {
                inflight.clearInflight(head); // cannot happen: at most a ring's worth is unpublished
            }
        }
    }

    @Override
    void publishUsed() {
        final int published = used.getShort(2, LE) & 0xffff;
        if (inflight != null && batchCount > 0) {
            inflight.setLastBatchHead(batchHeads[batchCount - 1]);
        }
        if (published != nextUsed) {
            VarHandle.releaseFence(); // used elements before used.idx
            used.putShort(2, (short) nextUsed, LE);
        }
        if (inflight != null && batchCount > 0) {
            // The spec's order: used.idx published, then the batch's heads leave the buffer, then its used_idx.
            for (int i = 0; i < batchCount; i++) {
                inflight.clearInflight(batchHeads[i]);
            }
            batchCount = 0;
            inflight.setUsedIdx(nextUsed);
        }
    }

    @Override
    int usedMark() {
        return nextUsed;
    }

    /** EVENT_IDX: vring_need_event against used_event (after the avail ring's entries); else the avail flags. */
    @Override
    boolean driverWantsCall(final boolean valid, final int old, final int now) {
        if (eventIdx) {
            final int usedEvent = avail.getShort(4 + 2 * size, LE) & 0xffff;
            return !valid || ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
        }
        return (avail.getShort(0, LE) & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
    }

    @Override
    void requestKicks() {
        if (eventIdx) {
            used.putShort(4 + 8 * size, (short) (avail.getShortVolatile(2) & 0xffff), LE);
        } else {
            used.putShort(0, (short) 0, LE);
        }
    }

    @Override
    void suppressKicks() {
        if (!eventIdx) {
            used.putShort(0, (short) VIRTQ_USED_F_NO_NOTIFY, LE);
        }
    }

    // ------------------------------------------------------------------ INFLIGHT_SHMFD

    @Override
    public void setInflight(final InflightRegion.Queue q) {
        inflight = q;
        inflightChecked = false;
        batchCount = 0;
        resumePosition = -1;
        if (q != null && (batchHeads == null || batchHeads.length < maxSize)) {
            batchHeads = new int[Math.max(1, Math.min(maxSize, 32768))];
        }
    }

    @Override
    public boolean tracksInflight() {
        return inflight != null;
    }

    @Override
    public boolean resumesInflight() {
        return inflight != null && size <= batchHeads.length && inflight.prepareFits(size)
            && inflight.describes(size, ringIdentity());
    }

    /** A new ring size: the inflight buffer is looked at again (prepared for the new size) at the next peek. */
    @Override
    void sizeChanged() {
        inflightChecked = false;
    }

    @Override
    public void setDeliveryTracking(final boolean on) {
        trackDelivery = on;
    }

    @Override
    public void noteDelivered(final int head, final long bytes) {
        if (inflight != null && trackDelivery && peeked && head == peekedHead) {
            inflight.setDelivered(nextAvail, head, bytes);
        }
    }

    @Override
    public long resumeOffset(final int head) {
        if (resumePosition < 0 || resumePosition != nextAvail) {
            return 0;
        }
        resumePosition = -1;
        return head == resumeHead ? resumeBytes : 0;
    }

    /**
     * First use of the rings with an inflight buffer. A blank buffer (or one for another ring size) is prepared
     * and nothing else happens. A buffer a previous process left describes where it stopped: a batch whose
     * used index was published but whose heads were not yet cleared is cleared (its heads are in the used ring);
     * then, because this device completes every queue's chains in order, whatever was in flight is exactly the
     * chains from the used index on, still in the avail ring: the ring resumes there. For a queue whose delivery
     * was recorded, the chains the previous process delivered in full but had not completed are completed now
     * (written length 0), and the next one resumes at the byte it reached.
     */
    private void recoverInflight(final DescriptorChain chain) {
        inflightChecked = true;
        if (size > batchHeads.length || !inflight.prepareFits(size)) {
            LOG.warning(() -> name + ": inflight buffer has room for fewer descriptors than the queue's " + size
                + "; not tracked");
            inflight = null;
            return;
        }
        if (!inflight.prepare(size, 0, ringIdentity())) {
            inflight.setUsedIdx(nextUsed);
            return;
        }
        final int ringUsed = used.getShortVolatile(2) & 0xffff;
        final int from = inflight.usedIdx();
        final int published = (ringUsed - from) & 0xffff;
        if (published <= size) {
            for (int k = 0; k < published; k++) {
                final int head = used.getInt(4 + 8 * ((from + k) & (size - 1)), LE);
                if (head >= 0 && head < size) {
                    inflight.clearInflight(head);
                }
            }
        }
        final int wasInflight = inflight.inflightCount();
        inflight.setUsedIdx(ringUsed);
        final int frontendBase = nextAvail;
        nextAvail = ringUsed;
        nextUsed = ringUsed;
        signalledValid = false;
        final long record = inflight.delivered();
        int completed = 0;
        long skipped = 0;
        if (record >= 0) {
            final int position = InflightRegion.Queue.position(record);
            final int ahead = (position - ringUsed) & 0xffff;
            if (ahead <= available()) {
                // Delivered in full before the previous process died, taken (in flight) but not completed:
                // complete them now. A chain not marked in flight was never taken: the record is not about it.
                while (completed < ahead && peek(chain) && inflight.isInflight(chain.head())) {
                    advance();
                    addUsed(chain.head(), 0);
                    completed++;
                }
                peeked = false;
                flushUsed();
                if (InflightRegion.Queue.bytes(record) > 0 && completed == ahead) {
                    resumePosition = nextAvail;
                    resumeHead = InflightRegion.Queue.head(record);
                    resumeBytes = InflightRegion.Queue.bytes(record);
                    skipped = resumeBytes;
                }
            }
        }
        for (int head = 0; head < size; head++) {
            inflight.clearInflight(head); // the chains still to do are taken (and marked) anew
        }
        final int done = completed;
        final long skip = skipped;
        LOG.info(() -> name + ": inflight buffer from a previous backend: resuming at used index " + ringUsed
            + " (frontend base " + frontendBase + "), " + wasInflight + " chain(s) were in flight, " + done
            + " delivered chain(s) completed, " + skip + " delivered byte(s) of the next skipped");
    }

    // ------------------------------------------------------------------ engine side (worker thread)

    /** SET_VRING_BASE: next avail index (the caller checked it fits 16 bits). */
    @Override
    public void setBase(final int base) {
        nextAvail = base & 0xffff;
        peeked = false;
    }

    /** GET_VRING_BASE answer: next avail index. */
    @Override
    public int vringBase() {
        return nextAvail;
    }

    public int nextAvail() {
        return nextAvail;
    }

    public int nextUsed() {
        return nextUsed;
    }

    /** The used index is re-read from the ring at SET_VRING_ADDR (rust-vmm#180). */
    @Override
    void addressesChanged() {
        reloadUsedIdx = true;
        if (!isStarted()) {
            inflightChecked = false; // rings that moved are other rings: see what the buffer says about them
        }
    }

    /** A device reset (not a disconnect): what the inflight buffer says about these rings no longer holds. */
    public void forgetInflight() {
        if (inflight != null) {
            inflight.forget();
        }
    }

    @Override
    void resetRing() {
        inflightChecked = false;
        batchCount = 0;
        resumePosition = -1;
        reloadUsedIdx = false;
        nextAvail = nextUsed = 0;
        desc.wrap(0, 0);
        avail.wrap(0, 0);
        used.wrap(0, 0);
    }

    @Override
    boolean mapRings(final long descUva, final long availUva, final long usedUva) {
        final long descLen = (long) DESC_SIZE * size;
        final long availLen = 6L + 2L * size;
        final long usedLen = 6L + 8L * size;
        if ((descUva & 15) != 0 || (availUva & 1) != 0 || (usedUva & 3) != 0) {
            LOG.warning(() -> name + ": misaligned ring addresses desc=0x" + Long.toHexString(descUva)
                + " avail=0x" + Long.toHexString(availUva) + " used=0x" + Long.toHexString(usedUva));
            return false;
        }
        if (!mapAreas(desc, descUva, descLen, avail, availUva, availLen, "avail", used, usedUva, usedLen, "used")) {
            return false;
        }
        if (reloadUsedIdx) {
            reloadUsedIdx = false;
            nextUsed = used.getShortVolatile(2) & 0xffff;
            signalledValid = false;
        }
        return true;
    }

    @Override
    String positions() {
        return "nextAvail=" + nextAvail + ", nextUsed=" + nextUsed;
    }
}
