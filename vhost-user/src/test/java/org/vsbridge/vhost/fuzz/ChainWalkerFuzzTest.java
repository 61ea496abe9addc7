package org.vsbridge.vhost.fuzz;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.QueueCounters;
import org.vsbridge.vhost.queue.SplitVirtqueue;
import org.vsbridge.vhost.testing.TestGuestMemory;

/**
 * The split-ring chain walker over a fuzzed guest memory image: descriptor table, avail ring, indirect tables
 * and ring indices all come from the input. Whatever the guest wrote, every segment the walker hands out must
 * lie inside guest memory, and nothing may throw.
 */
class ChainWalkerFuzzTest {

    private static final long GPA = FuzzImage.GPA;
    private static final long DESC = 0;
    private static final long AVAIL = 0x400;
    private static final long USED = 0x800;

    @FuzzTest(maxDuration = "60s")
    void walk(final FuzzedDataProvider data) {
        final int size = 1 << data.consumeInt(0, 6);
        final boolean eventIdx = data.consumeBoolean();
        final boolean indirect = data.consumeBoolean();
        final int base = data.consumeInt(0, 0xffff);
        final int rounds = data.consumeInt(1, 3 * size);
        final byte[] image = data.consumeRemainingAsBytes();
        final FuzzImage fuzz = FuzzImage.with(image);
        final TestGuestMemory mem = fuzz.mem;

        final SplitVirtqueue q = new SplitVirtqueue("fuzz", 0, 64, new QueueCounters(1));
        q.setMemory(fuzz.table);
        q.setSize(size);
        q.setAddresses(mem.uva(GPA + DESC), mem.uva(GPA + AVAIL), mem.uva(GPA + USED));
        q.setFeatures(eventIdx, indirect);
        q.setBase(base);
        q.setEnabled(true);
        q.start(false);
        final DescriptorChain chain = new DescriptorChain();
        for (int i = 0; i < rounds && q.peek(chain); i++) {
            fuzz.assertInside(chain);
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
