package org.vsbridge.vhost.fuzz;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.QueueCounters;
import org.vsbridge.vhost.queue.SplitVirtqueue;
import org.vsbridge.vhost.testing.TestGuestMemory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The split-ring chain walker over a fuzzed guest memory image: descriptor table, avail ring, indirect tables
 * and ring indices all come from the input. Whatever the guest wrote, every segment the walker hands out must
 * lie inside guest memory, and nothing may throw.
 */
class ChainWalkerFuzzTest {

    private static final long GPA = 0x10000;
    private static final int SIZE = 64 * 1024;
    private static final long DESC = 0;
    private static final long AVAIL = 0x400;
    private static final long USED = 0x800;

    private static TestGuestMemory mem;
    private static MemoryRegion region;
    private static GuestMemory table;

    private static synchronized void setUp() {
        if (mem == null) {
            try {
                mem = new TestGuestMemory(SIZE, GPA);
                region = MemoryRegion.map(mem.fd(), GPA, SIZE, mem.uvaBase(), 0);
                table = GuestMemory.of(List.of(region));
            } catch (final IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @FuzzTest(maxDuration = "60s")
    void walk(final FuzzedDataProvider data) {
        setUp();
        final int size = 1 << data.consumeInt(0, 6);
        final boolean eventIdx = data.consumeBoolean();
        final boolean indirect = data.consumeBoolean();
        final int base = data.consumeInt(0, 0xffff);
        final int rounds = data.consumeInt(1, 3 * size);
        final byte[] image = data.consumeRemainingAsBytes();
        mem.write(GPA, new byte[SIZE]);
        mem.write(GPA, image, 0, Math.min(image.length, SIZE));

        final SplitVirtqueue q = new SplitVirtqueue("fuzz", 0, 64, new QueueCounters(1));
        q.setMemory(table);
        q.setSize(size);
        q.setAddresses(mem.uva(GPA + DESC), mem.uva(GPA + AVAIL), mem.uva(GPA + USED));
        q.setFeatures(eventIdx, indirect);
        q.setBase(base);
        q.setEnabled(true);
        q.start(false);
        final DescriptorChain chain = new DescriptorChain();
        final long lo = region.hostAddress();
        final long hi = lo + SIZE;
        for (int i = 0; i < rounds && q.peek(chain); i++) {
            long total = 0;
            for (int s = 0; s < chain.segmentCount(); s++) {
                final long a = chain.address(s);
                final long n = chain.length(s);
                assertTrue(n >= 0 && a >= lo && a + n <= hi, "segment " + s + " at 0x" + Long.toHexString(a) + "+" + n
                    + " is outside guest memory [0x" + Long.toHexString(lo) + ", 0x" + Long.toHexString(hi) + ")");
                total += n;
            }
            assertTrue(chain.readableLength() + chain.writableLength() == total);
            q.advance();
            q.addUsed(chain.head(), (int) Math.min(chain.writableLength(), Integer.MAX_VALUE));
            if ((i & 3) == 3) {
                q.flushUsed();
            }
        }
        q.flushUsed();
        q.enableNotifications();
        q.disableNotifications();
    }
}
