package org.vsbridge.core.port;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class StreamRingTest {

    @Test
    void rejectsCapacityThatIsNotAPowerOfTwo() {
        assertThrows(IllegalArgumentException.class, () -> new StreamRing(5000));
        assertThrows(IllegalArgumentException.class, () -> new StreamRing(2048));
    }

    @Test
    void partialWritesAndReadsAcrossTheWrapKeepOrder() {
        final StreamRing ring = new StreamRing(4096);
        final ByteBuffer src = ByteBuffer.allocateDirect(2000);
        final ByteBuffer dst = ByteBuffer.allocateDirect(2000);
        final long srcAddress = BufferUtil.address(src);
        final long dstAddress = BufferUtil.address(dst);
        final UnsafeBuffer s = new UnsafeBuffer(src);
        final UnsafeBuffer d = new UnsafeBuffer(dst);
        long next = 0;
        long expected = 0;
        for (int round = 0; round < 500; round++) {
            for (int i = 0; i < 2000; i++) {
                s.putByte(i, pattern(next + i));
            }
            next += ring.write(srcAddress, 400 + (round * 37) % 1500);
            // Reads smaller than a message take part of it; the rest comes first next time.
            final int read = ring.read(dstAddress, 17 + (round * 53) % 1200);
            for (int i = 0; i < read; i++) {
                assertEquals(pattern(expected++), d.getByte(i), "byte " + (expected - 1));
            }
        }
        // A full ring takes nothing more; reading it empty gives every byte in order.
        while (ring.write(srcAddress, 1) > 0) {
            next += 0; // fill (the pattern no longer matters past here)
        }
        assertEquals(0, ring.write(srcAddress, 1));
        assertTrue(!ring.hasRoom());
        int n;
        while ((n = ring.read(dstAddress, 2000)) > 0) {
            expected += n;
        }
        assertTrue(ring.isEmpty());
        assertTrue(ring.hasRoom());
        // The ring sees raw addresses only: keep the buffers alive (else the GC may free them mid-copy).
        Reference.reachabilityFence(src);
        Reference.reachabilityFence(dst);
    }

    @Test
    void promisedBytesAlwaysFitAnEmptyRing() {
        for (final int capacity : new int[] {4096, 64 * 1024, 1 << 20}) {
            final StreamRing ring = new StreamRing(capacity);
            final ByteBuffer src = ByteBuffer.allocateDirect(capacity);
            final long address = BufferUtil.address(src);
            final ByteBuffer dst = ByteBuffer.allocateDirect(capacity);
            for (final int piece : new int[] {1, 7, 100, 1000, 4095, ring.chunk() - 1, ring.chunk() + 1}) {
                for (int offset = 0; offset < 3; offset++) {
                    // Move the ring's positions so that the promised bytes wrap at a different place each time.
                    ring.write(address, 333 * offset + 8);
                    while (ring.read(BufferUtil.address(dst), capacity) > 0) {
                        // empty it
                    }
                    long budget = ring.promisable();
                    long promised = 0;
                    int pieces = 0;
                    while (true) {
                        final int n = Math.min(piece, ring.bytesFor((int) budget));
                        if (n <= 0) {
                            break;
                        }
                        budget -= ring.cost(n);
                        promised += n;
                        pieces++;
                        assertEquals(n, ring.write(address, n), "piece " + pieces + " of " + piece + " bytes, ring " + capacity);
                    }
                    // Each message costs a header of 8 bytes and up to 7 of alignment.
                    assertTrue(promised > (long) capacity / 2 * piece / (piece + 32),
                        "promised only " + promised + " of " + capacity + " in pieces of " + piece);
                    long back = 0;
                    int r;
                    while ((r = ring.read(BufferUtil.address(dst), capacity)) > 0) {
                        back += r;
                    }
                    assertEquals(promised, back);
                }
            }
            Reference.reachabilityFence(src);
            Reference.reachabilityFence(dst);
        }
    }

    @Test
    void gatheredReadsTakeWholeMessagesHeapAndDirect() {
        final StreamRing ring = new StreamRing(4096);
        final ByteBuf heap = Unpooled.buffer(5000);
        for (int i = 0; i < 5000; i++) {
            heap.writeByte(pattern(i));
        }
        final int first = ring.write(heap);
        assertTrue(first > 2048 && first < 4096, "took " + first);
        final ByteBuf direct = Unpooled.directBuffer(16);
        final ByteBuf heapOut = Unpooled.buffer(16);
        try {
            // A read gathers consecutive messages (of chunk() bytes each) into one buffer, never part of one.
            final int a = ring.read(direct, 2 * ring.chunk() + 10);
            assertEquals(2 * ring.chunk(), a);
            ring.write(heap);
            int b;
            while ((b = ring.read(heapOut, 100_000)) > 0) {
                assertTrue(b > 0);
            }
            for (int i = 0; i < a; i++) {
                assertEquals(pattern(i), direct.getByte(i));
            }
            for (int i = 0; i < heapOut.readableBytes(); i++) {
                assertEquals(pattern(a + i), heapOut.getByte(i));
            }
            assertEquals(5000, a + heapOut.readableBytes() + heap.readableBytes());
        } finally {
            heap.release();
            direct.release();
            heapOut.release();
        }
    }

    @Test
    void producerAndConsumerThreadsMoveEveryByteInOrder() throws Exception {
        final StreamRing ring = new StreamRing(4096);
        final long total = 64L * 1024 * 1024;
        final Thread producer = new Thread(() -> {
            final ByteBuffer src = ByteBuffer.allocateDirect(3000);
            final long address = BufferUtil.address(src);
            final UnsafeBuffer s = new UnsafeBuffer(src);
            long sent = 0;
            while (sent < total) {
                final int chunk = (int) Math.min(3000, total - sent);
                for (int i = 0; i < chunk; i++) {
                    s.putByte(i, pattern(sent + i));
                }
                int off = 0;
                while (off < chunk) {
                    off += ring.write(address + off, chunk - off);
                }
                sent += chunk;
            }
            Reference.reachabilityFence(src);
        });
        producer.start();
        final ByteBuffer dst = ByteBuffer.allocateDirect(1500);
        final long address = BufferUtil.address(dst);
        final UnsafeBuffer d = new UnsafeBuffer(dst);
        long received = 0;
        long mismatches = 0;
        while (received < total) {
            final int n = ring.read(address, 1500);
            for (int i = 0; i < n; i++) {
                if (d.getByte(i) != pattern(received + i)) {
                    mismatches++;
                }
            }
            received += n;
        }
        producer.join();
        Reference.reachabilityFence(dst);
        assertEquals(0, mismatches);
        assertEquals(total, received);
        assertTrue(ring.isEmpty());
    }

    private static byte pattern(final long position) {
        return (byte) (position * 31 + (position >>> 9));
    }
}
