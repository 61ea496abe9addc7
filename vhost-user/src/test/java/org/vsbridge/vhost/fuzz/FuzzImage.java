package org.vsbridge.vhost.fuzz;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.testing.TestGuestMemory;

/** The fuzzed guest memory of the chain-walker fuzz tests: one 64 KiB memfd region at {@link #GPA}, made once. */
final class FuzzImage {

    static final long GPA = 0x10000;
    static final int SIZE = 64 * 1024;

    private static FuzzImage image;

    final TestGuestMemory mem;
    final MemoryRegion region;
    final GuestMemory table;

    private FuzzImage() throws IOException {
        mem = new TestGuestMemory(SIZE, GPA);
        region = MemoryRegion.map(mem.fd(), GPA, SIZE, mem.uvaBase(), 0);
        table = GuestMemory.of(List.of(region));
    }

    /** The image, holding {@code bytes} (zero-filled past their end). */
    static synchronized FuzzImage with(final byte[] bytes) {
        if (image == null) {
            try {
                image = new FuzzImage();
            } catch (final IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        image.mem.write(GPA, new byte[SIZE]);
        image.mem.write(GPA, bytes, 0, Math.min(bytes.length, SIZE));
        return image;
    }

    /** Every segment of {@code chain} lies inside the image, and the lengths add up. */
    void assertInside(final DescriptorChain chain) {
        final long lo = region.hostAddress();
        final long hi = lo + SIZE;
        long total = 0;
        for (int s = 0; s < chain.segmentCount(); s++) {
            final long a = chain.address(s);
            final long n = chain.length(s);
            final int segment = s;
            assertTrue(n >= 0 && a >= lo && a + n <= hi, () -> "segment " + segment + " at 0x" + Long.toHexString(a)
                + "+" + n + " is outside guest memory [0x" + Long.toHexString(lo) + ", 0x" + Long.toHexString(hi) + ")");
            total += n;
        }
        assertTrue(chain.readableLength() + chain.writableLength() == total);
    }
}
