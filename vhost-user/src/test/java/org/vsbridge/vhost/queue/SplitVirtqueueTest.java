package org.vsbridge.vhost.queue;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;
import static org.vsbridge.vhost.testing.TestRing.Buffer.writable;

/** The queue on its own, over real memfd memory mapped twice (driver view and device view). */
class SplitVirtqueueTest {

    private static final int SIZE = 8;

    private TestGuestMemory mem;
    private TestRing ring;
    private MemoryRegion region;
    private SplitVirtqueue q;
    private final DescriptorChain chain = new DescriptorChain();
    private final QueueCounters counters = new QueueCounters(1);

    @BeforeEach
    void setUp() throws IOException {
        mem = new TestGuestMemory(1 << 20, 0x4000_0000L);
        ring = new TestRing(mem, 0, SIZE);
        region = MemoryRegion.map(mem.fd(), mem.gpaBase(), mem.size(), mem.uvaBase(), 0);
        q = new SplitVirtqueue("test", 0, 256, counters);
        q.setMemory(GuestMemory.of(List.of(region)));
        q.setSize(SIZE);
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        q.setFeatures(false, true);
        q.replaceCallFd(ring.callFd());
        q.setEnabled(true);
        q.start(false);
        assertTrue(q.isReady());
    }

    @AfterEach
    void tearDown() throws IOException {
        q.replaceCallFd(-1);
        ring.close();
        region.unmap();
        mem.close();
    }

    @Test
    void walksDirectAndIndirectChainsAndPublishesUsed() {
        final long a = mem.alloc(100, 8);
        final long b = mem.alloc(200, 8);
        final long c = mem.alloc(300, 8);
        final int h1 = ring.post(readable(a, 100), writable(b, 200));
        final int h2 = ring.postIndirect(readable(a, 10), readable(b, 20), writable(c, 300));
        assertEquals(2, q.available());

        assertTrue(q.pop(chain));
        assertEquals(h1, chain.head());
        assertEquals(100, chain.readableLength());
        assertEquals(200, chain.writableLength());
        assertEquals(region.hostAddress() + (a - mem.gpaBase()), chain.address(0));

        assertTrue(q.pop(chain));
        assertEquals(h2, chain.head());
        assertEquals(3, chain.segmentCount());
        assertEquals(30, chain.readableLength());
        assertTrue(chain.isWritable(2));
        assertFalse(q.peek(chain));

        q.addUsed(h1, 7);
        q.addUsed(h2, 9);
        q.flushUsed();
        assertEquals(2, ring.usedIdx());
        assertEquals(List.of(new TestRing.Used(h1, 7), new TestRing.Used(h2, 9)), ring.collectUsed());
        assertEquals(1, ring.drainCalls(), "one call per flush");
        assertEquals(1, counters.calls(0));
        assertEquals(2, counters.usedChains(0));
    }

    @Test
    void bufferOutsideGuestMemoryBreaksTheQueue() {
        ring.post(readable(mem.gpaBase() + mem.size() - 8, 16));
        assertFalse(q.peek(chain));
        assertTrue(q.isBroken());
        assertFalse(q.isReady());
        assertTrue(q.brokenReason().contains("outside guest memory"), q.brokenReason());
    }

    @Test
    void descriptorLoopIsStoppedByTheHopLimit() {
        final long a = mem.alloc(16, 8);
        ring.writeDescriptor(0, a, 16, TestRing.F_NEXT, 1);
        ring.writeDescriptor(1, a, 16, TestRing.F_NEXT, 0);
        ring.publishHead(0);
        assertFalse(q.peek(chain));
        assertTrue(q.brokenReason().contains("loop"), q.brokenReason());
    }

    @Test
    void readableAfterWritableIsRefused() {
        final long a = mem.alloc(16, 8);
        ring.post(writable(a, 8), readable(a, 8));
        assertFalse(q.peek(chain));
        assertTrue(q.brokenReason().contains("readable descriptor after a writable"), q.brokenReason());
    }

    @Test
    void badIndirectTablesAreRefused() {
        final long a = mem.alloc(64, 16);
        ring.writeDescriptor(0, a, 24, TestRing.F_INDIRECT, 0); // not a multiple of 16
        ring.publishHead(0);
        assertFalse(q.peek(chain));
        assertTrue(q.brokenReason().contains("bad length"), q.brokenReason());
    }

    @Test
    void nestedIndirectIsRefused() {
        final long table = mem.alloc(16, 16);
        mem.putLong(table, table);
        mem.putInt(table + 8, 16);
        mem.putShort(table + 12, TestRing.F_INDIRECT);
        ring.writeDescriptor(0, table, 16, TestRing.F_INDIRECT, 0);
        ring.publishHead(0);
        assertFalse(q.peek(chain));
        assertTrue(q.brokenReason().contains("nested"), q.brokenReason());
    }

    @Test
    void indirectNeedsTheFeature() {
        q.setFeatures(false, false);
        ring.postIndirect(readable(mem.alloc(8, 8), 8));
        assertFalse(q.peek(chain));
        assertTrue(q.isBroken());
    }

    @Test
    void availIdxTooFarAheadAndBadHeadsBreakTheQueue() {
        ring.setAvailIdx(SIZE + 1);
        assertEquals(0, q.available());
        assertTrue(q.brokenReason().contains("more than the queue size"), q.brokenReason());

        q.reset();
        q.setSize(SIZE);
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        q.setEnabled(true);
        q.start(false);
        ring.setAvailIdx(0);
        q.setBase(0);
        ring.publishHead(SIZE + 3);
        assertFalse(q.peek(chain));
        assertTrue(q.brokenReason().contains("head"), q.brokenReason());
    }

    @Test
    void eventIdxSuppressesCallsUntilUsedEventIsPassed() {
        q.setFeatures(true, true);
        q.start(false); // signalled state invalid again: first flush always calls
        final long a = mem.alloc(64, 8);
        for (int i = 0; i < 4; i++) {
            ring.post(writable(a, 8));
        }
        ring.setUsedEvent(2); // driver: call me when used idx passes 2 (i.e. reaches 3)
        for (int i = 0; i < 4; i++) {
            assertTrue(q.pop(chain));
        }
        assertEquals(4, ring.availEvent(), "avail_event follows next_avail as chains are consumed");
        q.addUsed(0, 1);
        q.flushUsed(); // first flush after start: calls
        assertEquals(1, ring.drainCalls());
        q.addUsed(1, 1);
        q.flushUsed(); // used idx 2: not past used_event 2
        assertEquals(0, ring.drainCalls());
        q.addUsed(2, 1);
        q.flushUsed(); // used idx 3: passes 2
        assertEquals(1, ring.drainCalls());
        q.addUsed(3, 1);
        q.flushUsed(); // used_event still 2: no call
        assertEquals(0, ring.drainCalls());
    }

    @Test
    void noInterruptFlagSuppressesCallsWithoutEventIdx() {
        final long a = mem.alloc(8, 8);
        ring.post(writable(a, 8));
        ring.setAvailFlags(SplitVirtqueue.VIRTQ_AVAIL_F_NO_INTERRUPT);
        assertTrue(q.pop(chain));
        q.addUsed(chain.head(), 0);
        q.flushUsed();
        assertEquals(1, ring.usedIdx());
        assertEquals(0, ring.drainCalls());
    }

    @Test
    void enableNotificationsReportsBuffersThatArrivedMeanwhile() {
        q.setFeatures(true, true);
        assertFalse(q.enableNotifications());
        ring.post(readable(mem.alloc(8, 8), 8));
        assertTrue(q.enableNotifications());
        assertEquals(1, ring.availEvent());
    }

    @Test
    void usedIndexIsReReadAtSetVringAddr() {
        mem.putShort(ring.usedGpa() + 2, 5);
        q.setAddresses(mem.uva(ring.descGpa()), mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        assertEquals(5, q.nextUsed());
    }

    @Test
    void ringOutsideMemoryIsNotReadyButNotBroken() {
        q.setAddresses(mem.uvaBase() + mem.size() - 16, mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        assertFalse(q.isReady());
        assertFalse(q.isBroken());
        q.setAddresses(mem.uva(ring.descGpa()) + 8, mem.uva(ring.availGpa()), mem.uva(ring.usedGpa()));
        assertFalse(q.isReady(), "misaligned descriptor table");
    }
}
