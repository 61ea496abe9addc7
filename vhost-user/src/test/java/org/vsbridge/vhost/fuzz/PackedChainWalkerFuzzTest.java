package org.vsbridge.vhost.fuzz;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.PackedVirtqueue;
import org.vsbridge.vhost.queue.QueueCounters;
import org.vsbridge.vhost.testing.TestGuestMemory;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packed-ring chain walker over a fuzzed guest memory image: descriptor ring, event suppression structures,
 * indirect tables, the vring base and the order in which the device completes chains all come from the input.
 * Whatever the guest wrote, every segment handed out must lie inside guest memory, and nothing may throw.
 */
class PackedChainWalkerFuzzTest {

    private static final long GPA = FuzzImage.GPA;
    private static final long DESC = 0;
    private static final long DRIVER_EVENT = 0x800;
    private static final long DEVICE_EVENT = 0x804;

    @FuzzTest(maxDuration = "60s")
    void walk(final FuzzedDataProvider data) {
        final int size = data.consumeInt(1, 128); // packed rings need not be powers of two
        final boolean eventIdx = data.consumeBoolean();
        final boolean indirect = data.consumeBoolean();
        // Both positions inside the ring (a base beyond it only keeps the queue from starting), any wrap counters.
        final int raw = data.consumeInt();
        final int base = (raw & 0x7fff) % size | (raw & 0x8000) | (((raw >>> 16) & 0x7fff) % size) << 16
            | (raw & 0x8000_0000);
        final int rounds = data.consumeInt(1, 3 * size);
        final long completionOrder = data.consumeLong();
        final byte[] image = data.consumeRemainingAsBytes();
        final FuzzImage fuzz = FuzzImage.with(image);
        final TestGuestMemory mem = fuzz.mem;

        final PackedVirtqueue q = new PackedVirtqueue("fuzz", 0, 1 << 15, new QueueCounters(1));
        q.setMemory(fuzz.table);
        q.setSize(size);
        q.setAddresses(mem.uva(GPA + DESC), mem.uva(GPA + DRIVER_EVENT), mem.uva(GPA + DEVICE_EVENT));
        q.setFeatures(eventIdx, indirect);
        q.setBase(base);
        q.setEnabled(true);
        q.start(false);
        final DescriptorChain chain = new DescriptorChain();
        final int[] inFlight = new int[3 * size];
        int held = 0;
        for (int i = 0; i < rounds && q.peek(chain); i++) {
            fuzz.assertInside(chain);
            assertTrue(chain.head() >= 0 && chain.head() < size, "buffer id " + chain.head());
            q.advance();
            inFlight[held++] = chain.head();
            // Complete some of the held chains, in an order the input picks.
            if (((completionOrder >>> (i & 63)) & 1) != 0) {
                final int pick = (int) Math.floorMod(completionOrder ^ i, (long) held);
                q.addUsed(inFlight[pick], (int) Math.min(chain.writableLength(), Integer.MAX_VALUE));
                inFlight[pick] = inFlight[--held];
            }
            if ((i & 3) == 3) {
                q.flushUsed();
            }
        }
        while (held > 0) {
            q.addUsed(inFlight[--held], 0);
        }
        q.flushUsed();
        q.enableNotifications();
        q.disableNotifications();
        q.vringBase();
    }
}
