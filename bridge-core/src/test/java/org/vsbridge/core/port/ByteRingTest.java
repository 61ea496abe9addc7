package org.vsbridge.core.port;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.BufferUtil;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class ByteRingTest {

    @Test
    void rejectsCapacityThatIsNotAPowerOfTwo() {
        assertThrows(IllegalArgumentException.class, () -> new ByteRing(1000));
    }

    @Test
    void partialWritesAndReadsAcrossTheWrapKeepOrder() {
        final ByteRing ring = new ByteRing(64);
        final ByteBuffer src = ByteBuffer.allocateDirect(100);
        final ByteBuffer dst = ByteBuffer.allocateDirect(100);
        final long srcAddress = BufferUtil.address(src);
        final long dstAddress = BufferUtil.address(dst);
        final UnsafeBuffer s = new UnsafeBuffer(src);
        final UnsafeBuffer d = new UnsafeBuffer(dst);
        int next = 0;
        int expected = 0;
        for (int round = 0; round < 50; round++) {
            for (int i = 0; i < 100; i++) {
                s.putByte(i, (byte) (next + i));
            }
            final int written = ring.write(srcAddress, 40 + round % 30);
            next += written;
            final int read = ring.read(dstAddress, 17 + round % 40);
            for (int i = 0; i < read; i++) {
                assertEquals((byte) expected++, d.getByte(i));
            }
        }
        // A full ring takes nothing more.
        while (ring.write(srcAddress, 10) > 0) {
            // fill
        }
        assertEquals(64, ring.available());
        assertEquals(0, ring.write(srcAddress, 1));
        assertEquals(64, ring.discard());
        assertEquals(0, ring.available());
    }

    @Test
    void byteBufPathsHeapAndDirectKeepOrder() {
        final ByteRing ring = new ByteRing(128);
        final ByteBuf heap = Unpooled.buffer(200);
        for (int i = 0; i < 200; i++) {
            heap.writeByte(i);
        }
        assertEquals(128, ring.write(heap));
        assertEquals(72, heap.readableBytes());
        final ByteBuf direct = Unpooled.directBuffer(300);
        final ByteBuf heapOut = Unpooled.buffer(300);
        try {
            assertEquals(100, ring.read(direct, 100));
            assertEquals(72, ring.write(heap));
            assertEquals(100, ring.read(heapOut, 150));
            for (int i = 0; i < 100; i++) {
                assertEquals((byte) i, direct.getByte(i));
                assertEquals((byte) (100 + i), heapOut.getByte(i));
            }
        } finally {
            heap.release();
            direct.release();
            heapOut.release();
        }
    }

    @Test
    void producerAndConsumerThreadsMoveEveryByteInOrder() throws Exception {
        final ByteRing ring = new ByteRing(4096);
        final long total = 64L * 1024 * 1024;
        final AtomicLong consumerSum = new AtomicLong();
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
        consumerSum.set(received);
        assertEquals(0, mismatches);
        assertEquals(total, consumerSum.get());
        assertEquals(0, ring.available());
    }

    private static byte pattern(final long position) {
        return (byte) (position * 31 + (position >>> 9));
    }
}
