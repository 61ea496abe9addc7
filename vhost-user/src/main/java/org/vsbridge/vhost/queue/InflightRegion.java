package org.vsbridge.vhost.queue;

import java.io.IOException;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.libc.SharedMemory;
import org.vsbridge.libc.Sys;

/**
 * The shared buffer of {@code VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD}: the backend allocates it (GET_INFLIGHT_FD),
 * the frontend keeps the descriptor and hands it back at every start (SET_INFLIGHT_FD), also to a backend
 * process started after the previous one died. What a queue had in flight survives that way.
 *
 * <p>Per queue, at a 64-byte aligned stride, the split-ring layout of the vhost-user specification: {@code u64
 * features; u16 version (1); u16 desc_num; u16 last_batch_head; u16 used_idx;} then {@code desc_num} descriptor
 * states of 16 bytes ({@code u8 inflight; u8 padding[5]; u16 next; u64 counter}). After them the bridge keeps one
 * record of its own (the frontend never reads the buffer): {@code u32 magic; u32 padding; u64 delivery; u64 ring},
 * where delivery packs, for a queue whose chains the device delivers to a host peer, the ring position of the
 * first chain not yet delivered in full (bits 0-15), its head (bits 16-31), the bytes of it already delivered
 * (bits 32-62) and a written flag (bit 63), and ring identifies the rings the state is about (their addresses),
 * so that state about rings a rebooted guest no longer has is never applied to new ones. One aligned 8-byte store updates it, so a process killed at any instant leaves either the old or the
 * new record. After the queues, {@link #DEVICE_AREA} bytes belong to the device (its own state across restarts).
 *
 * <p>The frontend's own numbers (sizes, offsets, queue count and size) are checked against the file before it
 * is mapped: a buffer shorter than its layout is refused, never touched.
 */
public final class InflightRegion implements AutoCloseable {

    public static final int VERSION = 1;
    static final int HEADER = 16;
    static final int DESC_STATE = 16;
    static final int RECORD = 32;
    /** Bit 63 of the delivery record: it was written (a record of position 0, head 0, 0 bytes is still one). */
    private static final long RECORD_VALID = 1L << 63;
    private static final int ALIGN = 64;
    /** Bytes after the queues for the device's own state ({@link #deviceArea()}). */
    public static final int DEVICE_AREA = 4096;
    /** "VSBD", little-endian. */
    static final int MAGIC = 0x44425356;

    private final int fd;
    private final SharedMemory.Mapping mapping;
    private final int numQueues;
    private final int queueSize;
    private final long stride;

    private InflightRegion(final int fd, final SharedMemory.Mapping mapping, final int numQueues, final int queueSize) {
        this.fd = fd;
        this.mapping = mapping;
        this.numQueues = numQueues;
        this.queueSize = queueSize;
        this.stride = queueStride(queueSize);
    }

    /** Bytes one queue of {@code queueSize} descriptors takes. */
    public static long queueStride(final int queueSize) {
        final long raw = HEADER + (long) DESC_STATE * queueSize + RECORD;
        return (raw + ALIGN - 1) & -ALIGN;
    }

    /** Bytes the whole buffer takes. */
    public static long sizeFor(final int numQueues, final int queueSize) {
        return numQueues * queueStride(queueSize) + DEVICE_AREA;
    }

    /** The device's own part, after the queues (see {@code VirtioDevice#stateBuffer}). */
    public UnsafeBuffer deviceArea() {
        return new UnsafeBuffer(mapping.address() + numQueues * stride, DEVICE_AREA);
    }

    private static void checkShape(final int numQueues, final int queueSize, final int maxQueues, final int maxSize)
        throws IOException {
        if (numQueues < 1 || numQueues > maxQueues) {
            throw new IOException("inflight buffer for " + numQueues + " queues: the device has 1.." + maxQueues);
        }
        if (queueSize < 1 || queueSize > maxSize) {
            throw new IOException("inflight buffer for queues of " + queueSize + " descriptors: the device takes 1.."
                + maxSize);
        }
    }

    /** GET_INFLIGHT_FD: a new zeroed buffer in a memfd. */
    public static InflightRegion create(final String name, final int numQueues, final int queueSize,
                                        final int maxQueues, final int maxSize) throws IOException {
        checkShape(numQueues, queueSize, maxQueues, maxSize);
        final long size = sizeFor(numQueues, queueSize);
        final int fd = SharedMemory.memfdCreateSealed(name, size);
        try {
            return new InflightRegion(fd, SharedMemory.mmap(fd, size, 0), numQueues, queueSize);
        } catch (final IOException e) {
            Sys.closeQuietly(fd);
            throw e;
        }
    }

    /**
     * SET_INFLIGHT_FD: map the frontend's buffer. Takes ownership of {@code fd} (closed on failure too).
     * {@code size} and {@code offset} are the frontend's; the file must hold them and the layout must fit.
     */
    public static InflightRegion open(final int fd, final long size, final long offset, final int numQueues,
                                      final int queueSize, final int maxQueues, final int maxSize) throws IOException {
        try {
            checkShape(numQueues, queueSize, maxQueues, maxSize);
            final long needed = sizeFor(numQueues, queueSize);
            if (size < needed) {
                throw new IOException("inflight buffer of " + size + " bytes is smaller than the " + needed
                    + " that " + numQueues + " queues of " + queueSize + " need");
            }
            if (offset < 0 || offset > Long.MAX_VALUE - size || (offset & (ALIGN - 1)) != 0) {
                throw new IOException("inflight buffer offset " + Long.toUnsignedString(offset) + " is invalid");
            }
            if ((SharedMemory.seals(fd) & (SharedMemory.F_SEAL_SHRINK | SharedMemory.F_SEAL_GROW)) != (SharedMemory.F_SEAL_SHRINK | SharedMemory.F_SEAL_GROW)) {
                // An unsealed file could be truncated under the mapping (SIGBUS in this process): only the sealed
                // buffer GET_INFLIGHT_FD handed out is taken back.
                throw new IOException("inflight buffer file is not sealed against shrinking: not the one "
                    + "GET_INFLIGHT_FD gave");
            }
            final long file = SharedMemory.fileSize(fd);
            if (offset + size > file) {
                throw new IOException("inflight buffer " + size + " bytes at offset " + offset
                    + " lies past the end of its file (" + file + " bytes)");
            }
            return new InflightRegion(fd, SharedMemory.mmap(fd, needed, offset), numQueues, queueSize);
        } catch (final IOException | RuntimeException e) {
            Sys.closeQuietly(fd);
            throw e;
        }
    }

    public int fd() {
        return fd;
    }

    /** Bytes of the buffer (GET_INFLIGHT_FD's mmap_size). */
    public long size() {
        return mapping.length();
    }

    public int numQueues() {
        return numQueues;
    }

    public int queueSize() {
        return queueSize;
    }

    /** The view of queue {@code index}, or null when the buffer has no room for it. */
    public Queue queue(final int index) {
        if (index < 0 || index >= numQueues) {
            return null;
        }
        return new Queue(new UnsafeBuffer(mapping.address() + index * stride, (int) stride), queueSize);
    }

    @Override
    public void close() {
        try {
            SharedMemory.munmap(mapping);
        } catch (final IOException e) {
            // Unmapping our own mapping cannot fail short of a bug; nothing to do but go on.
        }
        Sys.closeQuietly(fd);
    }

    /** One queue's part of the buffer. Worker thread only. */
    public static final class Queue {

        private static final int FEATURES = 0;
        private static final int VERSION_AT = 8;
        private static final int DESC_NUM = 10;
        private static final int LAST_BATCH_HEAD = 12;
        private static final int USED_IDX = 14;

        private final UnsafeBuffer b;
        private final int capacity;
        private final int recordAt;
        private int descNum;

        Queue(final UnsafeBuffer b, final int capacity) {
            this.b = b;
            this.capacity = capacity;
            this.recordAt = HEADER + DESC_STATE * capacity;
        }

        /** The buffer has room for a ring of {@code size} descriptors. */
        public boolean prepareFits(final int size) {
            return size >= 1 && size <= capacity;
        }

        /**
         * Start of a ring of {@code size} descriptors: true when the buffer already describes such a ring (state
         * left by an earlier backend), false when it was blank or described another shape and was cleared.
         */
        public boolean prepare(final int size, final long features, final long ring) {
            if (size < 1 || size > capacity) {
                throw new IllegalArgumentException("queue size " + size + " exceeds the inflight buffer's " + capacity);
            }
            descNum = size;
            if (describes(size, ring)) {
                return true;
            }
            b.putShortVolatile(VERSION_AT, (short) 0);
            b.setMemory(0, recordAt + RECORD, (byte) 0);
            b.putLong(FEATURES, features);
            b.putShort(DESC_NUM, (short) size);
            b.putInt(recordAt, MAGIC);
            b.putLong(recordAt + 16, ring);
            b.putShortVolatile(VERSION_AT, (short) VERSION);
            return false;
        }

        /** The buffer holds state about a ring of {@code size} descriptors at {@code ring} (its addresses). */
        public boolean describes(final int size, final long ring) {
            return b.getShortVolatile(VERSION_AT) == VERSION && (b.getShort(DESC_NUM) & 0xffff) == size
                && b.getInt(recordAt) == MAGIC && b.getLong(recordAt + 16) == ring;
        }

        /** Blank the queue's part (a device reset: the next start prepares it afresh). */
        public void forget() {
            b.putShortVolatile(VERSION_AT, (short) 0);
        }

        public int descNum() {
            return descNum;
        }

        private int desc(final int head) {
            return HEADER + DESC_STATE * head;
        }

        /** The chain at {@code head} was taken from the avail ring. */
        public void setInflight(final int head, final long counter) {
            if (head >= descNum) {
                return;
            }
            final int at = desc(head);
            b.putLong(at + 8, counter);
            b.putByteVolatile(at, (byte) 1);
        }

        public boolean isInflight(final int head) {
            return head < descNum && b.getByteVolatile(desc(head)) != 0;
        }

        public long counter(final int head) {
            return b.getLong(desc(head) + 8);
        }

        /** The chain at {@code head} is in a published used entry. */
        public void clearInflight(final int head) {
            if (head < descNum) {
                b.putByteVolatile(desc(head), (byte) 0);
            }
        }

        /** Before a batch's used index is published: the batch's last head (the spec's recovery hint). */
        public void setLastBatchHead(final int head) {
            b.putShortVolatile(LAST_BATCH_HEAD, (short) head);
        }

        public int lastBatchHead() {
            return b.getShortVolatile(LAST_BATCH_HEAD) & 0xffff;
        }

        /** After the batch's heads were cleared: the used index the buffer now agrees with. */
        public void setUsedIdx(final int usedIdx) {
            b.putShortVolatile(USED_IDX, (short) usedIdx);
        }

        public int usedIdx() {
            return b.getShortVolatile(USED_IDX) & 0xffff;
        }

        /** Heads marked in flight now. */
        public int inflightCount() {
            int n = 0;
            for (int head = 0; head < descNum; head++) {
                if (isInflight(head)) {
                    n++;
                }
            }
            return n;
        }

        /**
         * The device delivered {@code bytes} of the chain {@code head} at ring position {@code position}, and every
         * chain before it in full. {@code bytes} 0 with any head means "everything before {@code position}".
         */
        public void setDelivered(final int position, final int head, final long bytes) {
            if (bytes < 0 || bytes > 0x7fffffffL) {
                return; // a chain longer than 2 GiB: its progress is not recorded (resubmitted whole)
            }
            b.putLongVolatile(recordAt + 8, (position & 0xffffL) | (head & 0xffffL) << 16 | bytes << 32
                | RECORD_VALID);
        }

        /** The delivery record, or -1 when none was ever written. Decode with the static helpers. */
        public long delivered() {
            if (b.getInt(recordAt) != MAGIC) {
                return -1;
            }
            final long v = b.getLongVolatile(recordAt + 8);
            return (v & RECORD_VALID) == 0 ? -1 : v & ~RECORD_VALID;
        }

        public static int position(final long record) {
            return (int) (record & 0xffff);
        }

        public static int head(final long record) {
            return (int) (record >>> 16 & 0xffff);
        }

        public static long bytes(final long record) {
            return record >>> 32 & 0x7fffffffL;
        }
    }
}
