package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import org.agrona.BitUtil;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.ControlledMessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.OneToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;

/**
 * One direction of a port's byte stream over an Agrona {@link OneToOneRingBuffer}: one producer thread, one consumer
 * thread at a time. The producer copies each buffer it is given (guest memory or a Netty buffer) into the ring once,
 * as messages of at most {@link #chunk()} bytes ({@code tryClaim}, copy, {@code commit}); the consumer gathers
 * consecutive messages into one buffer for one write ({@link #read(ByteBuf, int)}), or, towards the guest, fills a
 * receive buffer and may leave the rest of a message for the next one ({@link #read(long, int)}: the ring keeps the
 * message until its last byte is taken).
 *
 * <p>Agrona publishes the consumer's position with a release store. Both sides also run a "full, then look again"
 * handshake through flags outside the ring, which needs the consumer's store to be ordered before its next load:
 * {@link #read(long, int)} and {@link #read(ByteBuf, int)} end with a full fence when they freed room.
 */
public final class StreamRing {

    /** Message type of stream bytes (Agrona reserves negative ids). */
    private static final int BYTES = 1;
    /** Header of one message, and the alignment of messages (Agrona's record descriptor). */
    private static final int HEADER = 8;
    private static final int ALIGN = 8;
    private static final int LARGEST_CHUNK = 64 * 1024;
    /** A claim that failed is tried again with half the length down to this, so a ring with some room takes bytes. */
    private static final int SMALLEST_CHUNK = 64;

    private final OneToOneRingBuffer ring;
    private final int capacity;
    private final int chunk;

    /** Producer-side view of memory outside the ring (guest memory or a Netty buffer); never shared. */
    private final UnsafeBuffer producerView = new UnsafeBuffer(0, 0);
    /** Producer only, within one write: the largest message to claim, and the length of the last claim. */
    private int claimSize;
    private int claimed;

    /** Consumer only: bytes of the message at the head already handed out by {@link #read(long, int)}. */
    private int headSkip;
    private final UnsafeBuffer consumerView = new UnsafeBuffer(0, 0);
    private int consumerRoom;
    private int consumerCopied;
    private ByteBuf consumerDst;
    private final UnsafeBuffer dstView = new UnsafeBuffer(0, 0);
    private final ControlledMessageHandler toAddress = this::copyToAddress;
    private final ControlledMessageHandler toByteBuf = this::copyToByteBuf;

    /** @param capacity bytes of the ring, a power of two >= 4096 (message headers take 8 bytes per message from it) */
    public StreamRing(final int capacity) {
        if (!BitUtil.isPowerOfTwo(capacity) || capacity < 4096) {
            throw new IllegalArgumentException("ring capacity must be a power of two >= 4096: " + capacity);
        }
        this.ring = new OneToOneRingBuffer(new UnsafeBuffer(
            ByteBuffer.allocateDirect(capacity + RingBufferDescriptor.TRAILER_LENGTH)));
        this.capacity = capacity;
        this.chunk = Math.min(ring.maxMsgLength(), LARGEST_CHUNK);
    }

    public int capacity() {
        return capacity;
    }

    /** Largest message: the producer cuts longer buffers into messages of this size. */
    public int chunk() {
        return chunk;
    }

    /** Ring bytes in use, headers included (any thread; a snapshot). */
    public int used() {
        return ring.size();
    }

    /** True when a producer surely gets at least one message of {@link #chunk()} bytes in (any thread; a snapshot). */
    public boolean hasRoom() {
        return capacity - ring.size() >= 2 * (chunk + HEADER + ALIGN);
    }

    /** True when nothing is waiting (any thread; a snapshot). */
    public boolean isEmpty() {
        return ring.producerPosition() == ring.consumerPosition();
    }

    /**
     * Ring bytes that {@code bytes} of stream in messages of at most {@link #chunk()} bytes take at most, counted
     * so that a writer who promised bytes against {@link #promisable()} can always write them into an empty ring.
     */
    public int cost(final int bytes) {
        return bytes + (bytes / chunk + 1) * (HEADER + ALIGN);
    }

    /** What an empty ring surely takes in {@link #cost} units: its capacity less one message of padding at the wrap. */
    public int promisable() {
        return capacity - (chunk + HEADER + ALIGN);
    }

    /** The most bytes whose {@link #cost} is at most {@code budget}; 0 when none. */
    public int bytesFor(final int budget) {
        final int n = budget - (HEADER + ALIGN) - (budget / chunk + 1) * (HEADER + ALIGN);
        return Math.max(0, n);
    }

    // ---------------------------------------------------------------- producer side

    /** Producer: copy up to {@code length} bytes from a process address. Returns bytes written. */
    public int write(final long address, final int length) {
        int written = 0;
        claimSize = chunk;
        while (written < length) {
            final int index = claim(length - written);
            if (index == RingBuffer.INSUFFICIENT_CAPACITY) {
                break;
            }
            final int n = claimed;
            producerView.wrap(address + written, n);
            ring.buffer().putBytes(index, producerView, 0, n);
            ring.commit(index);
            written += n;
        }
        return written;
    }

    /** Producer: copy as much of {@code src}'s readable bytes as fit, advancing its reader index. Returns bytes written. */
    public int write(final ByteBuf src) {
        if (src.hasMemoryAddress()) {
            final int n = write(src.memoryAddress() + src.readerIndex(), src.readableBytes());
            src.skipBytes(n);
            return n;
        }
        int written = 0;
        claimSize = chunk;
        while (src.isReadable()) {
            final int index = claim(src.readableBytes());
            if (index == RingBuffer.INSUFFICIENT_CAPACITY) {
                break;
            }
            final int n = claimed;
            ring.buffer().putBytes(index, src.nioBuffer(src.readerIndex(), n), n);
            ring.commit(index);
            src.skipBytes(n);
            written += n;
        }
        return written;
    }

    /**
     * Producer: claims a message of up to {@code remaining} bytes, no longer than {@link #claimSize}; while the ring
     * has no room for it, halves the size (for the rest of this write) down to {@link #SMALLEST_CHUNK}. Returns the
     * index with the length in {@link #claimed}, or {@code INSUFFICIENT_CAPACITY}.
     */
    private int claim(final int remaining) {
        while (true) {
            final int n = Math.min(claimSize, remaining);
            final int index = ring.tryClaim(BYTES, n);
            if (index != RingBuffer.INSUFFICIENT_CAPACITY) {
                claimed = n;
                return index;
            }
            if (claimSize <= SMALLEST_CHUNK || n <= SMALLEST_CHUNK) {
                return index;
            }
            claimSize = Math.min(claimSize, n) >>> 1;
        }
    }

    // ---------------------------------------------------------------- consumer side

    /**
     * Consumer: copy up to {@code length} bytes into a process address, taking part of a message when it does not
     * fit (the rest comes first next time). Returns bytes read.
     */
    public int read(final long address, final int length) {
        consumerView.wrap(address, length);
        consumerRoom = length;
        consumerCopied = 0;
        // Twice at most: once up to the end of the buffer, once from its start after the wrap.
        for (int pass = 0; pass < 2 && consumerRoom > 0; pass++) {
            ring.controlledRead(toAddress);
        }
        final int n = consumerCopied;
        consumerView.wrap(0, 0);
        if (n > 0) {
            VarHandle.fullFence();
        }
        return n;
    }

    private ControlledMessageHandler.Action copyToAddress(final int type, final MutableDirectBuffer buffer,
                                                          final int index, final int length) {
        final int left = length - headSkip;
        final int n = Math.min(left, consumerRoom);
        buffer.getBytes(index + headSkip, consumerView, consumerCopied, n);
        consumerCopied += n;
        consumerRoom -= n;
        if (n < left) {
            headSkip += n; // the message stays at the head: the rest of it comes first next time
            return ControlledMessageHandler.Action.ABORT;
        }
        headSkip = 0;
        return consumerRoom == 0 ? ControlledMessageHandler.Action.BREAK : ControlledMessageHandler.Action.CONTINUE;
    }

    /**
     * Consumer: gather whole consecutive messages, up to {@code length} bytes, into {@code dst} (which grows as
     * needed). Returns bytes read. A ring is read either
     * this way or by {@link #read(long, int)}, never both.
     */
    public int read(final ByteBuf dst, final int length) {
        consumerDst = dst;
        consumerRoom = length;
        consumerCopied = 0;
        for (int pass = 0; pass < 2 && consumerRoom > 0; pass++) {
            ring.controlledRead(toByteBuf);
        }
        consumerDst = null;
        final int n = consumerCopied;
        if (n > 0) {
            VarHandle.fullFence();
        }
        return n;
    }

    private ControlledMessageHandler.Action copyToByteBuf(final int type, final MutableDirectBuffer buffer,
                                                          final int index, final int length) {
        if (length > consumerRoom) {
            return ControlledMessageHandler.Action.ABORT;
        }
        final ByteBuf dst = consumerDst;
        dst.ensureWritable(length);
        if (dst.hasMemoryAddress()) {
            dstView.wrap(dst.memoryAddress() + dst.writerIndex(), length);
            buffer.getBytes(index, dstView, 0, length);
            dstView.wrap(0, 0);
            dst.writerIndex(dst.writerIndex() + length);
        } else {
            final ByteBuffer nio = dst.nioBuffer(dst.writerIndex(), length);
            buffer.getBytes(index, nio, nio.position(), length);
            dst.writerIndex(dst.writerIndex() + length);
        }
        consumerCopied += length;
        consumerRoom -= length;
        return ControlledMessageHandler.Action.CONTINUE;
    }
}
