package org.vsbridge.vhost.queue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestPackedRing.Desc;
import org.vsbridge.vhost.testing.TestPackedRing.UsedDesc;
import org.vsbridge.vhost.testing.TestPackedRing;
import org.vsbridge.vhost.testing.TestRing;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;
import static org.vsbridge.vhost.testing.TestRing.Buffer.writable;

/** The packed queue on its own, over real memfd memory mapped twice (driver view and device view). */
class PackedVirtqueueTest {

    private static final int F_NEXT = TestPackedRing.F_NEXT;
    private static final int F_WRITE = TestPackedRing.F_WRITE;
    private static final int F_INDIRECT = TestPackedRing.F_INDIRECT;

    private TestGuestMemory mem;
    private MemoryRegion region;
    private GuestMemory table;
    private LogCapture log;
    private final List<AutoCloseable> rings = new ArrayList<>();
    private final QueueCounters counters = new QueueCounters(1);
    private final DescriptorChain chain = new DescriptorChain();
    private TestPackedRing ring;
    private PackedVirtqueue q;

    @BeforeEach
    void setUp() throws IOException {
        log = LogCapture.of("org.vsbridge.vhost");
        mem = new TestGuestMemory(4 << 20, 0x4000_0000L);
        region = MemoryRegion.map(mem.fd(), mem.gpaBase(), mem.size(), mem.uvaBase(), 0);
        table = GuestMemory.of(List.of(region));
        open(8, false, true);
    }

    @AfterEach
    void tearDown() throws Exception {
        q.replaceCallFd(-1);
        for (final AutoCloseable r : rings) {
            r.close();
        }
        region.unmap();
        mem.close();
        log.close();
    }

    /** A fresh driver ring of {@code size} and a started queue over it. */
    private void open(final int size, final boolean eventIdx, final boolean indirect) throws IOException {
        if (q != null) {
            q.replaceCallFd(-1);
        }
        ring = new TestPackedRing(mem, 0, size);
        rings.add(ring);
        ring.useEventIdx(eventIdx);
        q = new PackedVirtqueue("test", 0, 1 << 15, counters);
        attach(q, ring);
        q.setFeatures(eventIdx, indirect);
        q.setEnabled(true);
        q.start(false);
        assertTrue(q.isReady(), q.toString());
    }

    private void attach(final PackedVirtqueue queue, final TestPackedRing r) {
        queue.setMemory(table);
        queue.setSize(r.size());
        queue.setAddresses(mem.uva(r.descGpa()), mem.uva(r.availGpa()), mem.uva(r.usedGpa()));
        queue.replaceCallFd(r.callFd());
    }

    private long host(final long gpa) {
        return region.hostAddress() + (gpa - mem.gpaBase());
    }

    private void assertBroken(final String... words) throws InterruptedException {
        assertFalse(q.peek(chain), "no chain from a broken queue");
        assertTrue(q.isBroken(), "queue should be broken: " + q);
        assertFalse(q.isReady());
        for (final String w : words) {
            assertTrue(q.brokenReason().contains(w), "'" + w + "' not in: " + q.brokenReason());
        }
        final String[] needles = new String[words.length + 1];
        needles[0] = "test queue 0 broken: ";
        System.arraycopy(words, 0, needles, 1, words.length);
        log.await(needles);
    }

    // ------------------------------------------------------------------ chains, wrap-around, used descriptors

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4, 256})
    void chainsOfOneToNDescriptorsWrapAroundManyTimes(final int size) throws IOException {
        open(size, false, false);
        final Random random = new Random(size);
        final long pool = mem.alloc(64L * size, 64);
        final Map<Integer, TestRing.Buffer[]> postedById = new HashMap<>();
        int driverLaps = 0;
        int chains = 0;
        for (int round = 0; driverLaps < 12 || round < 20; round++) {
            // Driver: fill what is free with chains of 1..size descriptors (readable, then writable).
            int slot = 0;
            while (ring.freeCount() > 0) {
                final int n = 1 + random.nextInt(Math.min(ring.freeCount(), Math.max(1, size / 2 + 1)));
                final TestRing.Buffer[] bufs = new TestRing.Buffer[n];
                final int readables = random.nextInt(n + 1);
                for (int i = 0; i < n; i++) {
                    final long gpa = pool + 64L * (slot++ % size);
                    bufs[i] = i < readables ? readable(gpa, 1 + i) : writable(gpa, 32 + i);
                }
                final boolean wrapBefore = ring.availWrap();
                postedById.put(ring.post(bufs), bufs);
                if (ring.availWrap() != wrapBefore) {
                    driverLaps++;
                }
            }
            // Device: take every chain, check it, complete them in a shuffled order.
            final List<int[]> taken = new ArrayList<>();
            while (q.peek(chain)) {
                final TestRing.Buffer[] bufs = postedById.get(chain.head());
                assertNotNull(bufs, "chain id " + chain.head() + " was posted");
                assertEquals(bufs.length, chain.segmentCount());
                long writableBytes = 0;
                for (int i = 0; i < bufs.length; i++) {
                    assertEquals(host(bufs[i].gpa()), chain.address(i));
                    assertEquals(bufs[i].len(), chain.length(i));
                    assertEquals(bufs[i].writable(), chain.isWritable(i));
                    writableBytes += bufs[i].writable() ? bufs[i].len() : 0;
                }
                assertEquals(writableBytes, chain.writableLength());
                q.advance();
                taken.add(new int[] {chain.head(), (int) writableBytes});
            }
            assertEquals(0, q.available(), "everything posted was taken");
            Collections.shuffle(taken, random);
            final List<int[]> expected = new ArrayList<>();
            for (int i = 0; i < taken.size(); i++) {
                final int[] t = taken.get(i);
                q.addUsed(t[0], t[1]);
                expected.add(t);
                if (random.nextInt(3) == 0 || i == taken.size() - 1) {
                    q.flushUsed();
                }
            }
            // Driver: the used descriptors come back in completion order, with ids, lengths and wrap flags.
            final List<UsedDesc> used = ring.collectUsedDescriptors();
            assertEquals(expected.size(), used.size(), "round " + round);
            for (int i = 0; i < used.size(); i++) {
                final UsedDesc u = used.get(i);
                assertEquals(expected.get(i)[0], u.id(), "round " + round + " used " + i);
                assertEquals(expected.get(i)[1], u.len());
                assertEquals(u.len() != 0, (u.flags() & F_WRITE) != 0, "WRITE says whether something was written");
                postedById.remove(u.id());
            }
            assertEquals(0, ring.inFlightDescriptors());
            assertEquals(ring.nextAvail(), q.nextUsed(), "all used: the device's used position meets avail");
            assertEquals(ring.availWrap(), q.usedWrapCounter());
            assertEquals(ring.nextUsed(), q.nextAvail());
            chains += used.size();
        }
        assertFalse(q.isBroken(), q.brokenReason());
        assertEquals(chains, counters.usedChains(0));
        assertTrue(driverLaps >= 12, "wrapped " + driverLaps + " times");
    }

    @Test
    void usedDescriptorsCarryTheWrapCounterOfTheirLap() {
        final long a = mem.alloc(64, 8);
        for (int lap = 0; lap < 4; lap++) {
            for (int i = 0; i < 4; i++) {
                ring.post(readable(a, 8), writable(a + 8, 8)); // 4 chains of 2 = one lap of 8
            }
            for (int i = 0; i < 4; i++) {
                assertTrue(q.pop(chain));
                q.addUsed(chain.head(), i); // the first has nothing written
            }
            q.flushUsed();
            final List<UsedDesc> used = ring.collectUsedDescriptors();
            assertEquals(4, used.size());
            final int bits = lap % 2 == 0 ? TestPackedRing.F_AVAIL | TestPackedRing.F_USED : 0;
            for (int i = 0; i < 4; i++) {
                assertEquals(2 * i, used.get(i).position(), "one used descriptor per chain, at its first slot");
                assertEquals(bits | (i == 0 ? 0 : F_WRITE), used.get(i).flags(), "lap " + lap + " used " + i);
                assertEquals(i, used.get(i).len());
            }
            assertEquals(lap % 2 == 1, q.usedWrapCounter());
        }
    }

    @Test
    void theBufferIdIsTheLastDescriptorsAndTheHeadIsPublishedLast() {
        final long a = mem.alloc(64, 8);
        final int id = ring.postWithId(5, readable(a, 4), readable(a + 4, 4), writable(a + 8, 4));
        assertEquals(0xbeef, mem.getShort(ring.descGpa() + 12), "the head's own id field is not the buffer id");
        assertTrue(q.pop(chain));
        assertEquals(5, chain.head());
        q.addUsed(id, 4);
        // Before the flush the driver sees nothing: the batch's first flags are stored last.
        assertTrue(ring.collectUsedDescriptors().isEmpty());
        q.flushUsed();
        assertEquals(List.of(new UsedDesc(0, 5, 4, TestPackedRing.F_AVAIL | TestPackedRing.F_USED | F_WRITE)),
            ring.collectUsedDescriptors());
        assertEquals(3, q.nextUsed(), "next used skips the chain's three descriptors");
    }

    @Test
    void peekDoesNotConsumeAndStopKeepsThePosition() {
        final long a = mem.alloc(16, 8);
        final int id = ring.post(readable(a, 16));
        assertEquals(1, q.available());
        assertTrue(q.peek(chain));
        assertTrue(q.peek(chain), "peek again: the same chain");
        assertEquals(id, chain.head());
        q.stop();
        q.advance();
        assertEquals(0, q.nextAvail(), "advance after stop consumes nothing");
        q.start(false);
        assertTrue(q.pop(chain));
        assertEquals(1, q.nextAvail());
        assertEquals(0, q.available());
    }

    @Test
    void indirectTablesCountAsOneRingDescriptor() {
        final long a = mem.alloc(300, 8);
        final int direct = ring.post(readable(a, 10));
        final int indirect = ring.postIndirect(readable(a, 10), readable(a + 10, 20), writable(a + 100, 200));
        assertTrue(q.pop(chain));
        assertEquals(direct, chain.head());
        assertTrue(q.pop(chain));
        assertEquals(indirect, chain.head());
        assertEquals(3, chain.segmentCount());
        assertEquals(30, chain.readableLength());
        assertEquals(200, chain.writableLength());
        assertEquals(host(a + 100), chain.address(2));
        assertTrue(chain.isWritable(2));
        assertEquals(2, q.nextAvail());
        q.addUsed(indirect, 200);
        q.addUsed(direct, 0);
        q.flushUsed();
        final List<UsedDesc> used = ring.collectUsedDescriptors();
        assertEquals(List.of(indirect, direct), used.stream().map(UsedDesc::id).toList(), "completion order");
        assertEquals(200, used.get(0).len());
        assertEquals(1, used.get(1).position());
    }

    @Test
    void zeroLengthDescriptorsAreServed() {
        final long a = mem.alloc(16, 8);
        final int id = ring.post(readable(a, 0), writable(a, 0));
        assertTrue(q.pop(chain));
        assertEquals(id, chain.head());
        assertEquals(0, chain.segmentCount());
        q.addUsed(id, 0);
        q.flushUsed();
        assertEquals(1, ring.collectUsed().size());
        assertFalse(q.isBroken());
    }

    // ------------------------------------------------------------------ notification suppression

    @Test
    void driverEventFlagsEnableAndDisableCalls() {
        final long a = mem.alloc(16, 8);
        ring.setDriverEvent(TestPackedRing.EVENT_DISABLE, 0);
        ring.post(writable(a, 16));
        assertTrue(q.pop(chain));
        q.addUsed(chain.head(), 1);
        q.flushUsed();
        assertEquals(1, ring.collectUsed().size(), "published");
        assertEquals(0, ring.drainCalls(), "but no call: the driver disabled them");
        ring.setDriverEvent(TestPackedRing.EVENT_ENABLE, 0);
        ring.post(writable(a, 16));
        assertTrue(q.pop(chain));
        q.addUsed(chain.head(), 1);
        q.flushUsed();
        assertEquals(1, ring.drainCalls());
        q.flushUsed();
        assertEquals(0, ring.drainCalls(), "a flush with nothing new does not call");
        assertEquals(1, counters.calls(0));
    }

    @Test
    void eventIdxDescModeCallsOnlyOnceTheNamedDescriptorIsUsed() throws IOException {
        open(4, true, true);
        final long a = mem.alloc(16, 8);
        // Lap 1: four single-descriptor chains; the driver wants a call when position 2 (wrap 1) is used.
        for (int i = 0; i < 4; i++) {
            ring.post(writable(a, 16));
        }
        final int[] ids = new int[4];
        for (int i = 0; i < 4; i++) {
            assertTrue(q.pop(chain));
            ids[i] = chain.head();
        }
        ring.callAt(2, true);
        q.addUsed(ids[0], 1);
        q.flushUsed(); // first flush after start: always calls
        assertEquals(1, ring.drainCalls());
        q.addUsed(ids[1], 1);
        q.flushUsed(); // position 1 used: not 2 yet
        assertEquals(0, ring.drainCalls());
        q.addUsed(ids[2], 1);
        q.flushUsed(); // position 2 used
        assertEquals(1, ring.drainCalls());
        q.addUsed(ids[3], 1);
        q.flushUsed(); // the event is behind: no call
        assertEquals(0, ring.drainCalls());
        assertEquals(0, q.nextUsed());
        assertFalse(q.usedWrapCounter(), "a lap completed");
        assertEquals(4, ring.collectUsedDescriptors().size()); // the driver now asks for position 0, wrap 0
        // Lap 2: a chain of 3 descriptors over positions 0..2, then one; an event inside a chain fires with it.
        ring.post(readable(a, 1), readable(a, 1), writable(a, 1));
        ring.post(writable(a, 1));
        assertTrue(q.pop(chain));
        final int three = chain.head();
        assertTrue(q.pop(chain));
        final int one = chain.head();
        ring.callAt(1, false); // the second descriptor of the three
        q.addUsed(three, 1);
        q.flushUsed();
        assertEquals(1, ring.drainCalls(), "position 1 was skipped over by the chain: passed");
        ring.callAt(0, true); // the next lap's position 0: after the last one of this lap
        q.addUsed(one, 1);
        q.flushUsed();
        assertEquals(0, ring.drainCalls(), "position 3 used, the event is a lap ahead");
        assertEquals(2, ring.collectUsedDescriptors().size());
        ring.post(writable(a, 1));
        assertTrue(q.pop(chain));
        q.addUsed(chain.head(), 1);
        q.flushUsed();
        assertEquals(1, ring.drainCalls(), "position 0 of the next lap used");
    }

    @Test
    void deviceEventIsWrittenByEnableAndDisable() {
        final long a = mem.alloc(16, 8);
        q.disableNotifications();
        assertEquals(TestPackedRing.EVENT_DISABLE, ring.deviceEventFlags());
        final int old = ring.availIdx();
        ring.post(readable(a, 16));
        assertFalse(ring.kickIfNeeded(old), "kicks disabled");
        assertTrue(q.enableNotifications(), "a chain arrived while disabled: process again");
        assertEquals(TestPackedRing.EVENT_ENABLE, ring.deviceEventFlags());
        assertTrue(q.pop(chain));
        assertFalse(q.enableNotifications());
        final int old2 = ring.availIdx();
        ring.post(readable(a, 16));
        assertTrue(ring.kickIfNeeded(old2));
    }

    @Test
    void eventIdxDeviceEventFollowsNextAvail() throws IOException {
        open(4, true, true);
        final long a = mem.alloc(16, 8);
        assertFalse(q.enableNotifications());
        assertEquals(TestPackedRing.EVENT_DESC, ring.deviceEventFlags());
        assertEquals(TestPackedRing.WRAP, ring.deviceEventOffWrap(), "position 0, wrap 1");
        for (int lap = 0; lap < 3; lap++) {
            for (int i = 0; i < 2; i++) {
                final int old = ring.availIdx();
                ring.post(readable(a, 1), readable(a, 1));
                // The device asked for the position it reads next: the first post after consuming kicks.
                assertTrue(ring.kickIfNeeded(old), "lap " + lap + " post " + i);
                final int old2 = ring.availIdx();
                assertTrue(q.pop(chain));
                q.addUsed(chain.head(), 0);
                assertEquals(ring.availIdx(), ring.deviceEventOffWrap(), "off_wrap = next avail after advance");
                ring.kickIfNeeded(old2);
            }
            q.flushUsed();
            ring.collectUsed();
        }
        // Posting two chains without the device consuming: only the first needs a kick.
        final int old = ring.availIdx();
        ring.post(readable(a, 1));
        assertTrue(ring.kickIfNeeded(old));
        final int old2 = ring.availIdx();
        ring.post(readable(a, 1));
        assertFalse(ring.kickIfNeeded(old2), "the device has not reached the event yet");
        q.disableNotifications();
        assertEquals(TestPackedRing.EVENT_DISABLE, ring.deviceEventFlags());
        assertTrue(q.pop(chain));
        assertEquals(TestPackedRing.EVENT_DISABLE, ring.deviceEventFlags(), "advance keeps suppression off");
    }

    // ------------------------------------------------------------------ hostile guest

    @Test
    void descriptorOutsideGuestMemory() throws InterruptedException {
        ring.post(readable(mem.gpaBase() + mem.size() - 8, 16));
        assertBroken("outside guest memory");
    }

    @Test
    void hugeDescriptorLength() throws InterruptedException {
        ring.postRaw(new Desc(mem.alloc(16, 8), 0xffff_ffff, 0, 0));
        assertBroken("outside guest memory");
    }

    @Test
    void descriptorAtAWrappingAddress() throws InterruptedException {
        ring.postRaw(new Desc(-16L, 64, 0, 0));
        assertBroken("outside guest memory");
    }

    @Test
    void bufferIdBeyondTheQueue() throws InterruptedException {
        ring.postRaw(new Desc(mem.alloc(16, 8), 16, 8, 0));
        assertBroken("buffer id 8", ">= queue size 8");
    }

    @Test
    void bufferIdStillInFlight() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        ring.postRaw(new Desc(a, 16, 3, 0));
        assertTrue(q.pop(chain));
        ring.postRaw(new Desc(a, 16, 3, 0));
        assertBroken("buffer id 3", "still in use");
    }

    @Test
    void chainLongerThanTheQueue() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        final Desc[] all = new Desc[8];
        for (int i = 0; i < all.length; i++) {
            all[i] = new Desc(a, 16, 0, F_NEXT); // every descriptor says NEXT: the chain runs round the ring
        }
        ring.postRaw(all);
        assertBroken("longer than the queue size 8");
    }

    @Test
    void headMadeAvailableBeforeTheRestOfItsChain() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        ring.writeDescriptor(1, a, 16, 0, 0); // zero flags: never made available
        ring.writeDescriptor(0, a, 16, 0, F_NEXT | ring.availBits());
        assertBroken("descriptor 1 continues the chain at position 0", "out of order");
    }

    @Test
    void restOfAChainFromThePreviousLap() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        for (int i = 0; i < 7; i++) {
            ring.post(readable(a, 1));
        }
        for (int i = 0; i < 7; i++) {
            assertTrue(q.pop(chain));
            q.addUsed(chain.head(), 0);
        }
        q.flushUsed();
        ring.collectUsed();
        // Position 7 is the last of lap 1; a chain there continues at position 0 of lap 2, which still holds a
        // used descriptor of lap 1: not available with the next lap's wrap counter.
        ring.writeDescriptor(7, a, 1, 0, F_NEXT | ring.availBits());
        assertBroken("descriptor 0 continues the chain at position 7");
    }

    @Test
    void indirectTableLengthNotAMultipleOf16() throws InterruptedException {
        ring.postRaw(new Desc(mem.alloc(64, 16), 24, 0, F_INDIRECT));
        assertBroken("bad length 24");
    }

    @Test
    void emptyIndirectTable() throws InterruptedException {
        ring.postRaw(new Desc(mem.alloc(64, 16), 0, 0, F_INDIRECT));
        assertBroken("bad length 0");
    }

    @Test
    void nestedIndirectTable() throws InterruptedException {
        final long inner = mem.alloc(16, 16);
        mem.putLong(inner, mem.alloc(16, 8));
        mem.putInt(inner + 8, 16);
        final long outer = mem.alloc(16, 16);
        mem.putLong(outer, inner);
        mem.putInt(outer + 8, 16);
        mem.putShort(outer + 14, F_INDIRECT);
        ring.postRaw(new Desc(outer, 16, 0, F_INDIRECT));
        assertBroken("nested indirect");
    }

    @Test
    void indirectTableOutsideMemory() throws InterruptedException {
        ring.postRaw(new Desc(mem.gpaBase() + mem.size() - 16, 64, 0, F_INDIRECT));
        assertBroken("indirect table", "not inside one memory region");
    }

    @Test
    void indirectNeedsTheFeature() throws IOException, InterruptedException {
        open(8, false, false);
        ring.postIndirect(readable(mem.alloc(8, 8), 8));
        assertBroken("VIRTIO_RING_F_INDIRECT_DESC was not acked");
    }

    @Test
    void indirectDescriptorChainedWithNext() throws InterruptedException {
        final long a = mem.alloc(16, 16);
        ring.postRaw(new Desc(a, 16, 0, F_INDIRECT | F_NEXT), new Desc(a, 16, 0, 0));
        assertBroken("chained with NEXT");
    }

    @Test
    void indirectDescriptorInsideAChain() throws InterruptedException {
        final long a = mem.alloc(16, 16);
        ring.postRaw(new Desc(a, 16, 0, F_NEXT), new Desc(a, 16, 0, F_INDIRECT));
        assertBroken("chained with NEXT");
    }

    @Test
    void readableAfterWritable() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        ring.post(writable(a, 8), readable(a, 8));
        assertBroken("readable descriptor after a writable one");
    }

    @Test
    void readableAfterWritableInAnIndirectTable() throws InterruptedException {
        final long a = mem.alloc(16, 8);
        ring.postIndirect(writable(a, 8), readable(a, 8));
        assertBroken("readable descriptor after a writable one in the indirect table");
    }

    @Test
    void deviceCompletingAnIdNotInFlight() throws InterruptedException {
        ring.post(readable(mem.alloc(8, 8), 8));
        q.addUsed(2, 0);
        assertBroken("buffer id 2", "not in flight");
    }

    @Test
    void aBrokenQueueTouchesNothingUntilReset() throws IOException {
        final long a = mem.alloc(16, 8);
        ring.post(readable(a, 8), readable(a, 8));
        ring.writeDescriptor(1, a, 8, 0, 0); // the second descriptor taken back: out of order
        assertFalse(q.peek(chain));
        assertTrue(q.isBroken());
        final byte[] before = mem.read(ring.descGpa(), 16 * 8);
        q.addUsed(0, 1);
        q.flushUsed();
        q.enableNotifications();
        q.advance();
        assertArrayEquals(before, mem.read(ring.descGpa(), 16 * 8), "nothing written to the ring");
        assertEquals(0, ring.drainCalls());
        q.reset();
        assertFalse(q.isBroken());
        assertNull(q.brokenReason());
        assertEquals(1, counters.brokenEvents());
    }

    // ------------------------------------------------------------------ vring base, layout, sizes

    @Test
    void vringBaseCarriesBothPositionsWithTheirWrapCounters() throws IOException {
        open(4, false, true);
        assertEquals(0x8000_8000, q.vringBase(), "fresh: both positions 0 with wrap counters 1");
        final long a = mem.alloc(64, 8);
        // A (2 descriptors, positions 0-1) and B (position 2) taken; A used (written at 0, next used 2); C (2
        // descriptors, positions 3 and 0 of the next lap) taken: next avail 1 with wrap 0, next used 2 wrap 1.
        final int idA = ring.post(readable(a, 1), readable(a, 1));
        ring.post(readable(a, 1));
        assertTrue(q.pop(chain));
        assertEquals(idA, chain.head());
        assertTrue(q.pop(chain));
        q.addUsed(idA, 0);
        q.flushUsed();
        assertEquals(1, ring.collectUsed().size());
        ring.post(readable(a, 1), readable(a, 1));
        assertTrue(q.pop(chain));
        assertEquals(1, q.nextAvail());
        assertFalse(q.availWrapCounter());
        assertEquals(2, q.nextUsed());
        assertTrue(q.usedWrapCounter());
        final int base = q.vringBase();
        assertEquals(0x0001 | (0x8000 | 2) << 16, base, "avail 1 wrap 0 | used 2 wrap 1");
        q.stop();
        assertEquals(base, q.vringBase(), "stop keeps the positions");

        // GET_VRING_BASE then SET_VRING_BASE on a new queue (a restarted backend): it resumes there. B and C are
        // the frontend's business now; the next chain is read at position 1 and used at position 2.
        q.replaceCallFd(-1);
        final PackedVirtqueue resumed = new PackedVirtqueue("test", 0, 1 << 15, counters);
        attach(resumed, ring);
        resumed.setBase(base);
        resumed.setFeatures(false, true);
        resumed.setEnabled(true);
        resumed.start(false);
        assertTrue(resumed.isReady(), resumed.toString());
        assertEquals(base, resumed.vringBase());
        final int idD = ring.post(writable(a, 4));
        assertTrue(resumed.pop(chain));
        assertEquals(idD, chain.head());
        resumed.addUsed(idD, 4);
        resumed.flushUsed();
        assertEquals(List.of(new UsedDesc(2, idD, 4, TestPackedRing.F_AVAIL | TestPackedRing.F_USED | F_WRITE)),
            ring.collectUsedDescriptors());
        assertEquals(2 | (0x8000 | 3) << 16, resumed.vringBase());
        assertFalse(resumed.isBroken());
        resumed.replaceCallFd(-1);
    }

    @Test
    void aBaseBeyondTheQueueSizeKeepsTheQueueStoppedButNotBroken() throws IOException {
        open(4, false, true);
        q.setBase(0x8000_8000 | 5);
        assertFalse(q.isReady());
        assertFalse(q.isBroken());
        log.lines().stream().filter(l -> l.contains("beyond the queue size 4")).findFirst()
            .orElseThrow(() -> new AssertionError("no log line: " + log.lines()));
        q.setBase(0x8000_8000 | 3);
        assertTrue(q.isReady());
    }

    @Test
    void misalignedOrUnmappedAreasAreNotReady() {
        q.setAddresses(mem.uva(ring.descGpa()) + 8, mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        assertFalse(q.isReady());
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()) + 2, mem.uva(ring.usedGpa()));
        assertFalse(q.isReady(), "driver area needs 4-byte alignment");
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uvaBase() + mem.size() - 2);
        assertFalse(q.isReady());
        assertFalse(q.isBroken());
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        assertTrue(q.isReady());
    }

    @Test
    void switchingLayoutKeepsControlStateAndMovesTheFds() throws IOException {
        final int err = Sys.eventfd();
        try {
            final SplitVirtqueue split = new SplitVirtqueue("test", 0, 256, counters);
            split.setMemory(table);
            split.setSize(8);
            split.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
            split.replaceCallFd(ring.callFd());
            split.replaceErrFd(err);
            split.setFeatures(true, true);
            split.setEnabled(true);
            split.start(false);
            final AbstractVirtqueue packed = split.withLayout(true);
            assertTrue(packed instanceof PackedVirtqueue);
            assertSame(packed, packed.withLayout(true));
            assertEquals(-1, split.replaceCallFd(-1), "the fds moved");
            assertTrue(packed.isReady(), packed.toString());
            assertEquals(8, packed.size());
            assertEquals(0x8000_8000, packed.vringBase());
            final AbstractVirtqueue back = packed.withLayout(false);
            assertTrue(back instanceof SplitVirtqueue);
            assertEquals(ring.callFd(), back.replaceCallFd(-1));
            assertEquals(err, back.replaceErrFd(-1));
        } finally {
            Sys.closeQuietly(err);
        }
    }
}
