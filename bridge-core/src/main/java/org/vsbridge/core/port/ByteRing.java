package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import java.nio.ByteBuffer;
import org.agrona.BitUtil;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A single-producer single-consumer byte stream ring over an Agrona {@link UnsafeBuffer}.
 *
 * <p>Why not Agrona's {@code OneToOneRingBuffer}: a port carries a byte stream, not messages. The
 * guest's rx buffers (one page each) never line up with what a chardev read, so the consumer must be
 * able to take part of what the producer wrote; a record ring would need a second staging copy for the
 * remainder, adds a header per record and zero-fills on read. This ring keeps two monotonically
 * increasing positions (no wrap arithmetic on the positions themselves) on separate cache lines.
 *
 * <p>Positions are published with volatile stores: both sides also run a "full, then re-check" handshake
 * with flags outside the ring, which needs store-load ordering, and a volatile store per batch is cheap.
 */
public final class ByteRing {

    private static final int CACHE_LINE = 64;
    private static final int TAIL_OFFSET = CACHE_LINE * 2;
    private static final int HEAD_OFFSET = CACHE_LINE * 4;

    private final UnsafeBuffer data;
    private final UnsafeBuffer positions = new UnsafeBuffer(ByteBuffer.allocateDirect(CACHE_LINE * 6));
    private final int capacity;
    private final int mask;

    /** Producer-side view of memory outside the ring (guest memory or a Netty buffer); never shared. */
    private final UnsafeBuffer producerView = new UnsafeBuffer(0, 0);
    /** Consumer-side view, likewise. */
    private final UnsafeBuffer consumerView = new UnsafeBuffer(0, 0);
    private long producerHeadCache;
    private long consumerTailCache;

    public ByteRing(final int capacity) {
        if (!BitUtil.isPowerOfTwo(capacity) || capacity < 64) {
            throw new IllegalArgumentException("ring capacity must be a power of two >= 64: " + capacity);
        }
        this.capacity = capacity;
        this.mask = capacity - 1;
        this.data = new UnsafeBuffer(ByteBuffer.allocateDirect(capacity));
    }

    public int capacity() {
        return capacity;
    }

    /** Bytes readable now (any thread; a snapshot). */
    public int size() {
        return (int) (positions.getLongVolatile(TAIL_OFFSET) - positions.getLongVolatile(HEAD_OFFSET));
    }

    public boolean isEmpty() {
        return size() == 0;
    }

    // ---------------------------------------------------------------- producer side

    /** Producer: copy up to {@code length} bytes from a process address. Returns bytes written. */
    public int write(final long address, final int length) {
        final long tail = positions.getLong(TAIL_OFFSET);
        final int n = Math.min(length, freeFor(tail, length));
        if (n > 0) {
            producerView.wrap(address, n);
            copyIn(tail, producerView, 0, n);
            positions.putLongVolatile(TAIL_OFFSET, tail + n);
        }
        return n;
    }

    /** Producer: copy as much of {@code src}'s readable bytes as fit, advancing its reader index. Returns bytes written. */
    public int write(final ByteBuf src) {
        if (src.hasMemoryAddress()) {
            final int n = write(src.memoryAddress() + src.readerIndex(), src.readableBytes());
            src.skipBytes(n);
            return n;
        }
        final long tail = positions.getLong(TAIL_OFFSET);
        final int length = src.readableBytes();
        final int n = Math.min(length, freeFor(tail, length));
        if (n > 0) {
            final int index = (int) (tail & mask);
            final int first = Math.min(n, capacity - index);
            src.readBytes(data.byteBuffer().duplicate().limit(index + first).position(index));
            if (first < n) {
                src.readBytes(data.byteBuffer().duplicate().limit(n - first).position(0));
            }
            positions.putLongVolatile(TAIL_OFFSET, tail + n);
        }
        return n;
    }

    private int freeFor(final long tail, final int wanted) {
        int free = (int) (capacity - (tail - producerHeadCache));
        if (free < wanted) {
            producerHeadCache = positions.getLongVolatile(HEAD_OFFSET);
            free = (int) (capacity - (tail - producerHeadCache));
        }
        return free;
    }

    private void copyIn(final long tail, final UnsafeBuffer src, final int srcOffset, final int n) {
        final int index = (int) (tail & mask);
        final int first = Math.min(n, capacity - index);
        data.putBytes(index, src, srcOffset, first);
        if (first < n) {
            data.putBytes(0, src, srcOffset + first, n - first);
        }
    }

    // ---------------------------------------------------------------- consumer side

    /** Consumer: copy up to {@code length} bytes into a process address. Returns bytes read. */
    public int read(final long address, final int length) {
        final long head = positions.getLong(HEAD_OFFSET);
        final int n = Math.min(length, availableFor(head, length));
        if (n > 0) {
            consumerView.wrap(address, n);
            final int index = (int) (head & mask);
            final int first = Math.min(n, capacity - index);
            consumerView.putBytes(0, data, index, first);
            if (first < n) {
                consumerView.putBytes(first, data, 0, n - first);
            }
            positions.putLongVolatile(HEAD_OFFSET, head + n);
        }
        return n;
    }

    /** Consumer: append up to {@code length} bytes to {@code dst} (which must have the room). Returns bytes read. */
    public int read(final ByteBuf dst, final int length) {
        if (dst.hasMemoryAddress()) {
            dst.ensureWritable(length);
            final int n = read(dst.memoryAddress() + dst.writerIndex(), Math.min(length, dst.writableBytes()));
            dst.writerIndex(dst.writerIndex() + n);
            return n;
        }
        final long head = positions.getLong(HEAD_OFFSET);
        final int n = Math.min(length, availableFor(head, length));
        if (n > 0) {
            final int index = (int) (head & mask);
            final int first = Math.min(n, capacity - index);
            dst.writeBytes(data.byteBuffer().duplicate().limit(index + first).position(index));
            if (first < n) {
                dst.writeBytes(data.byteBuffer().duplicate().limit(n - first).position(0));
            }
            positions.putLongVolatile(HEAD_OFFSET, head + n);
        }
        return n;
    }

    /** Consumer: drop everything readable now. Returns bytes dropped. */
    public int discard() {
        final long head = positions.getLong(HEAD_OFFSET);
        final long tail = positions.getLongVolatile(TAIL_OFFSET);
        positions.putLongVolatile(HEAD_OFFSET, tail);
        return (int) (tail - head);
    }

    /** Consumer: bytes readable now. */
    public int available() {
        return availableFor(positions.getLong(HEAD_OFFSET), Integer.MAX_VALUE);
    }

    private int availableFor(final long head, final int wanted) {
        int available = (int) (consumerTailCache - head);
        if (available < wanted) {
            consumerTailCache = positions.getLongVolatile(TAIL_OFFSET);
            available = (int) (consumerTailCache - head);
        }
        return available;
    }
}
