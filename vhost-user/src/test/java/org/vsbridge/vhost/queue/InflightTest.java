package org.vsbridge.vhost.queue;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;

import java.io.IOException;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vsbridge.libc.SharedMemory;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;

/**
 * INFLIGHT_SHMFD over real memfd memory: one queue object plays the backend process that dies (it is simply
 * dropped, mid-batch), a second one on the same guest rings and the same inflight file plays the process started
 * after it, with the base the frontend sends after a crash (the used index).
 */
class InflightTest {

    private static final int SIZE = 8;
    private static final int QUEUES = 2;

    private TestGuestMemory mem;
    private TestRing ring;
    private MemoryRegion region;
    private InflightRegion created;
    private final DescriptorChain chain = new DescriptorChain();

    @BeforeEach
    void setUp() throws IOException {
        mem = new TestGuestMemory(1 << 20, 0x4000_0000L);
        ring = new TestRing(mem, 0, SIZE);
        region = MemoryRegion.map(mem.fd(), mem.gpaBase(), mem.size(), mem.uvaBase(), 0);
        created = InflightRegion.create("test-inflight", QUEUES, SIZE, QUEUES, 256);
    }

    @AfterEach
    void tearDown() throws IOException {
        ring.close();
        region.unmap();
        mem.close();
        created.close();
    }

    /** What the frontend does at every start: hands its descriptor of the buffer back (SET_INFLIGHT_FD). */
    private InflightRegion handBack() throws IOException {
        return InflightRegion.open(Sys.dup(created.fd()), created.size(), 0, QUEUES, SIZE, QUEUES, 256);
    }

    private SplitVirtqueue queue(final InflightRegion inflight, final int base) {
        final SplitVirtqueue q = new SplitVirtqueue("test", 1, 256, new QueueCounters(QUEUES));
        q.setMemory(GuestMemory.of(List.of(region)));
        q.setSize(SIZE);
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        q.setFeatures(false, true);
        q.setBase(base);
        q.setEnabled(true);
        q.setInflight(inflight.queue(1));
        q.start(false);
        q.setDeliveryTracking(true);
        return q;
    }

    @Test
    void aRestartedBackendCompletesWhatWasDeliveredAndResumesThePartChain() throws IOException {
        final long buf = mem.alloc(4096, 8);
        final int a = ring.post(readable(buf, 1000));
        final int b = ring.post(readable(buf, 1000));
        final int c = ring.post(readable(buf, 1000));
        final int d = ring.post(readable(buf, 1000));
        try (InflightRegion first = handBack()) {
            final SplitVirtqueue dying = queue(first, 0);
            assertTrue(dying.tracksInflight());
            assertTrue(dying.pop(chain)); // a: delivered, completed, published
            dying.addUsed(a, 0);
            dying.flushUsed();
            assertTrue(dying.pop(chain)); // b: delivered, completed, not yet published when the process dies
            dying.addUsed(b, 0);
            assertTrue(dying.peek(chain)); // c: 600 of its 1000 bytes delivered
            assertEquals(c, chain.head());
            dying.noteDelivered(c, 600);
            // kill -9: nothing more runs
        }
        assertEquals(1, ring.usedIdx(), "only a's completion reached the guest");

        try (InflightRegion second = handBack()) {
            final SplitVirtqueue next = queue(second, ring.usedIdx());
            assertTrue(next.peek(chain));
            assertEquals(c, chain.head(), "b was delivered: completed at start, not presented again");
            assertEquals(600, next.resumeOffset(c), "c resumes after its delivered bytes");
            assertEquals(0, next.resumeOffset(c), "the resume offset is given once");
            assertEquals(List.of(new TestRing.Used(a, 0), new TestRing.Used(b, 0)), ring.collectUsed());
            next.advance();
            next.addUsed(c, 0);
            assertTrue(next.pop(chain));
            assertEquals(d, chain.head());
            assertEquals(0, next.resumeOffset(d));
            next.addUsed(d, 0);
            next.flushUsed();
            assertEquals(4, ring.usedIdx());
        }
    }

    @Test
    void aBatchPublishedButNotYetClearedIsNotCompletedTwice() throws IOException {
        final long buf = mem.alloc(4096, 8);
        final int a = ring.post(readable(buf, 100));
        final int b = ring.post(readable(buf, 100));
        try (InflightRegion first = handBack()) {
            final SplitVirtqueue dying = queue(first, 0);
            assertTrue(dying.pop(chain));
            dying.addUsed(a, 0);
            dying.flushUsed();
            // As if the process died after used.idx was stored, before the buffer's heads were cleared: a is
            // marked in flight again and the buffer's used_idx is behind the ring's.
            final InflightRegion.Queue state = first.queue(1);
            state.setInflight(a, 42);
            state.setUsedIdx(0);
        }
        try (InflightRegion second = handBack()) {
            final SplitVirtqueue next = queue(second, ring.usedIdx());
            assertTrue(next.pop(chain));
            assertEquals(b, chain.head(), "a was completed by the dead process; b is next");
            assertEquals(1, ring.collectUsed().size());
            assertEquals(1, second.queue(1).usedIdx(), "the buffer agrees with the ring again");
            assertFalse(second.queue(1).isInflight(a));
        }
    }

    @Test
    void aDeviceResetForgetsTheBuffer() throws IOException {
        final long buf = mem.alloc(4096, 8);
        final int a = ring.post(readable(buf, 100));
        try (InflightRegion first = handBack()) {
            final SplitVirtqueue q = queue(first, 0);
            assertTrue(q.pop(chain));
            q.addUsed(a, 0);
            q.noteDelivered(a, 50);
            q.forgetInflight(); // RESET_DEVICE: the rings start over
        }
        try (InflightRegion second = handBack()) {
            assertFalse(second.queue(1).describes(SIZE, queue(second, 0).ringIdentity()), "a blank buffer after the reset");
        }
    }

    @Test
    void aBufferThatDoesNotHoldItsLayoutIsRefusedBeforeItIsMapped() throws IOException {
        final long needed = InflightRegion.sizeFor(QUEUES, SIZE);
        assertThrows(IOException.class, () -> InflightRegion.open(Sys.dup(created.fd()), needed - 1, 0, QUEUES, SIZE,
            QUEUES, 256), "smaller than the layout");
        assertThrows(IOException.class, () -> InflightRegion.open(Sys.dup(created.fd()), needed, 4096, QUEUES, SIZE,
            QUEUES, 256), "past the end of the file");
        assertThrows(IOException.class, () -> InflightRegion.open(Sys.dup(created.fd()), needed, 0, QUEUES + 1, SIZE,
            QUEUES, 256), "more queues than the device has");
        assertThrows(IOException.class, () -> InflightRegion.create("x", 1, 0, QUEUES, 256), "queue size 0");
        assertThrows(IOException.class, () -> InflightRegion.open(Sys.dup(created.fd()), needed, 8, QUEUES, SIZE,
            QUEUES, 256), "an offset off the 64-byte alignment");
        final int unsealed = SharedMemory.memfdCreate("unsealed", needed);
        assertThrows(IOException.class, () -> InflightRegion.open(unsealed, needed, 0, QUEUES, SIZE, QUEUES, 256),
            "a file that could be truncated under the mapping");
    }
}
