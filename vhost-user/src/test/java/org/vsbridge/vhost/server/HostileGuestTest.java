package org.vsbridge.vhost.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.TestStreams;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;
import static org.vsbridge.vhost.testing.TestRing.Buffer.writable;
import static org.vsbridge.vhost.testing.VhostUserClient.*;

/**
 * A hostile guest through the whole engine (real socket, memfd, eventfds): every bad number it can put in a ring
 * is logged with its reason, breaks only its own queue, sets NEEDS_RESET in GET_STATUS when STATUS was
 * negotiated, and leaves the other queues and the connection working.
 */
class HostileGuestTest {

    private static final int QUEUES = 4;
    private static final int RING = 16;
    private static final long FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;
    private static final long PROTOCOL = P_MQ | P_REPLY_ACK | P_CONFIG | P_RESET_DEVICE | P_CONFIGURE_MEM_SLOTS
        | P_STATUS;

    private Path dir;
    private LoopbackDevice device;
    private VhostUserServer server;
    private LogCapture log;
    private final List<AutoCloseable> closeLater = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        log = LogCapture.of("org.vsbridge.vhost");
        dir = Files.createTempDirectory("hostile");
        device = new LoopbackDevice(QUEUES, 256, FEATURES, 12);
        server = new VhostUserServer("h", dir.resolve("b.sock"), device);
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (int i = closeLater.size() - 1; i >= 0; i--) {
            closeLater.get(i).close();
        }
        server.close();
        log.close();
        Files.deleteIfExists(dir);
    }

    private <T extends AutoCloseable> T later(final T c) {
        closeLater.add(c);
        return c;
    }

    /** A connected, negotiated frontend with STATUS and DRIVER_OK set, rings 0..3 running. */
    private final class Guest {
        final VhostUserClient c;
        final TestGuestMemory mem;
        final TestRing[] r = new TestRing[QUEUES];

        Guest(final TestGuestMemory... extra) throws IOException {
            c = later(VhostUserClient.connect(dir.resolve("b.sock")));
            mem = later(new TestGuestMemory(1 << 20));
            for (int i = 0; i < QUEUES; i++) {
                r[i] = later(new TestRing(mem, i, RING));
            }
            c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
            assertEquals(0, c.setProtocolFeatures(PROTOCOL));
            if (extra.length > 0) {
                final TestGuestMemory[] all = new TestGuestMemory[extra.length + 1];
                all[0] = mem;
                System.arraycopy(extra, 0, all, 1, extra.length);
                assertEquals(0, c.setMemTable(all));
            }
            assertEquals(0, c.request(SET_STATUS, u64(0xf)));
        }

        long status() throws IOException {
            return c.call(GET_STATUS, new byte[0]).u64();
        }

        void awaitBroken(final int queue) throws InterruptedException {
            LogCapture.awaitTrue(() -> {
                try {
                    return server.isQueueBroken(queue);
                } catch (final IOException e) {
                    throw new IllegalStateException(e);
                }
            }, "queue " + queue + " never broke");
        }

        /** Pair 2/3 still loops data; the connection still answers. */
        void othersStillWork(final long seed) throws IOException {
            final byte[] data = TestStreams.randomBytes(seed, 12_000);
            assertArrayEquals(data, TestStreams.loop(mem, r[2], r[3], data, 700, true), "other queues unaffected");
            assertEquals(QUEUES, c.getQueueNum(), "connection unaffected");
        }
    }

    /** Puts a bad chain on tx queue 1 and checks the log line, NEEDS_RESET, the other queues, and the reset. */
    private void breaksQueueOne(final BiConsumer<TestGuestMemory, TestRing> breaker, final String... logWords)
        throws Exception {
        final Guest g = new Guest();
        assertEquals(0xf, g.status(), "no NEEDS_RESET before anything broke");
        breaker.accept(g.mem, g.r[1]);
        g.r[1].kick();
        g.awaitBroken(1);
        final String[] needles = new String[logWords.length + 1];
        needles[0] = "h queue 1 broken: ";
        System.arraycopy(logWords, 0, needles, 1, logWords.length);
        log.await(needles);
        assertEquals(0xf | FrontendConnection.VIRTIO_CONFIG_S_NEEDS_RESET, g.status(), "NEEDS_RESET reported");
        assertFalse(server.isQueueBroken(0));
        g.othersStillWork(1);
        // The frontend resets the device: NEEDS_RESET goes, and a fresh start works again.
        assertEquals(0, g.c.request(RESET_DEVICE, new byte[0]));
        assertEquals(0, g.status() & FrontendConnection.VIRTIO_CONFIG_S_NEEDS_RESET, "cleared by the reset");
        assertFalse(server.isQueueBroken(1));
    }

    @Test
    void descriptorLoopThroughNext() throws Exception {
        breaksQueueOne((mem, ring) -> {
            final long buf = mem.alloc(16, 8);
            ring.writeDescriptor(5, buf, 16, TestRing.F_NEXT, 6);
            ring.writeDescriptor(6, buf, 16, TestRing.F_NEXT, 5);
            ring.publishHead(5);
        }, "loop");
    }

    @Test
    void loopInsideAnIndirectTable() throws Exception {
        breaksQueueOne((mem, ring) -> {
            final long buf = mem.alloc(16, 8);
            final long table = mem.alloc(32, 16);
            mem.putLong(table, buf);
            mem.putInt(table + 8, 16);
            mem.putShort(table + 12, TestRing.F_NEXT);
            mem.putShort(table + 14, 1);
            mem.putLong(table + 16, buf);
            mem.putInt(table + 24, 16);
            mem.putShort(table + 28, TestRing.F_NEXT);
            mem.putShort(table + 30, 0);
            ring.writeDescriptor(2, table, 32, TestRing.F_INDIRECT, 0);
            ring.publishHead(2);
        }, "loop");
    }

    @Test
    void hugeDescriptorLength() throws Exception {
        breaksQueueOne((mem, ring) -> {
            ring.writeDescriptor(4, mem.alloc(16, 8), 0xffff_ffff, 0, 0);
            ring.publishHead(4);
        }, "outside guest memory");
    }

    @Test
    void descriptorPastTheEndOfItsRegion() throws Exception {
        breaksQueueOne((mem, ring) -> ring.post(readable(mem.gpaBase() + mem.size() - 100, 200)),
            "outside guest memory");
    }

    @Test
    void descriptorAtAWrappingAddress() throws Exception {
        breaksQueueOne((mem, ring) -> ring.post(readable(-16L, 64)), "outside guest memory");
    }

    @Test
    void indirectTableInsideAnIndirectTable() throws Exception {
        breaksQueueOne((mem, ring) -> {
            final long inner = mem.alloc(16, 16);
            mem.putLong(inner, mem.alloc(16, 8));
            mem.putInt(inner + 8, 16);
            final long outer = mem.alloc(16, 16);
            mem.putLong(outer, inner);
            mem.putInt(outer + 8, 16);
            mem.putShort(outer + 12, TestRing.F_INDIRECT);
            ring.writeDescriptor(1, outer, 16, TestRing.F_INDIRECT, 0);
            ring.publishHead(1);
        }, "nested indirect");
    }

    @Test
    void indirectTableOutsideMemory() throws Exception {
        breaksQueueOne((mem, ring) -> {
            ring.writeDescriptor(1, mem.gpaBase() + mem.size() - 16, 64, TestRing.F_INDIRECT, 0);
            ring.publishHead(1);
        }, "indirect table", "not inside one memory region");
    }

    @Test
    void readableDescriptorAfterAWritableOne() throws Exception {
        breaksQueueOne((mem, ring) -> {
            final long a = mem.alloc(32, 8);
            ring.post(writable(a, 16), readable(a + 16, 16));
        }, "readable descriptor after a writable one");
    }

    @Test
    void nextIndexBeyondTheQueue() throws Exception {
        breaksQueueOne((mem, ring) -> {
            ring.writeDescriptor(0, mem.alloc(16, 8), 16, TestRing.F_NEXT, RING + 7);
            ring.publishHead(0);
        }, "next " + (RING + 7));
    }

    @Test
    void availIdxJumpsByMoreThanTheQueueSize() throws Exception {
        breaksQueueOne((mem, ring) -> ring.setAvailIdx(RING + 1), "more than the queue size");
    }

    @Test
    void availRingNamesAHeadBeyondTheQueue() throws Exception {
        breaksQueueOne((mem, ring) -> ring.publishHead(RING + 3), "head " + (RING + 3));
    }

    @Test
    void zeroLengthDescriptorsAreServedNotFatal() throws Exception {
        final Guest g = new Guest();
        final long a = g.mem.alloc(16, 8);
        final int before = g.r[1].usedIdx();
        g.r[1].post(readable(a, 0));
        g.r[1].post(readable(a, 0), readable(a, 0));
        g.r[1].kick();
        assertTrue(g.r[1].awaitUsedIdx(before + 2, 10_000), "empty chains returned");
        for (final TestRing.Used u : g.r[1].collectUsed()) {
            assertEquals(0, u.len());
        }
        assertFalse(server.isQueueBroken(1));
        assertEquals(0xf, g.status());
        final byte[] data = TestStreams.randomBytes(2, 3000);
        assertArrayEquals(data, TestStreams.loop(g.mem, g.r[0], g.r[1], data, 500, false));
    }

    @Test
    void bufferStraddlingTwoAdjacentRegionsIsSplitAndServed() throws Exception {
        // Guest RAM in two memfds, back to back in guest-physical space: a buffer may cross the seam (QEMU's
        // RAM is often split like this), and the engine must split it rather than refuse or overrun.
        final TestGuestMemory high = later(new TestGuestMemory(1 << 20, 1 << 20));
        final Guest g = new Guest(high);
        final byte[] msg = TestStreams.randomBytes(3, 300);
        final long start = (1 << 20) - 100; // last 100 bytes of region 0, first 200 of region 1
        g.mem.write(start, msg, 0, 100);
        high.write(1 << 20, msg, 100, 200);
        final long rxBuf = g.mem.alloc(512, 8);
        final int used0 = g.r[0].usedIdx();
        g.r[0].post(writable(rxBuf, 512));
        g.r[1].post(readable(start, 300));
        g.r[0].kick();
        g.r[1].kick();
        assertTrue(g.r[0].awaitUsedIdx(used0 + 1, 10_000));
        assertArrayEquals(msg, g.mem.read(rxBuf, 300));
        assertFalse(server.isQueueBroken(1));
        // The same kind of buffer running off the end of the second region into nothing breaks the queue.
        g.r[1].post(readable((2 << 20) - 100, 200));
        g.r[1].kick();
        g.awaitBroken(1);
        log.await("h queue 1 broken: ", "outside guest memory");
    }

    @Test
    void usedRingOutsideMemoryKeepsTheQueueStoppedAndLogged() throws Exception {
        final Guest g = new Guest();
        assertEquals(0, g.c.setVringEnable(1, false));
        g.c.getVringBase(1);
        final TestRing r1 = g.r[1];
        assertEquals(0, g.c.setVringAddr(1, g.mem.uva(r1.descGpa()), g.mem.uvaBase() + g.mem.size() - 8,
            g.mem.uva(r1.availGpa())));
        log.await("h queue 1: ring not inside mapped memory", "used=0x", "bad");
        assertEquals(0, g.c.setVringEnable(1, true));
        r1.post(readable(g.mem.alloc(16, 8), 16));
        r1.kick();
        assertTrue(server.describeQueue(1).contains("translated=false"), server.describeQueue(1));
        assertEquals(0, r1.usedIdx(), "nothing written anywhere for a ring that is not in memory");
        g.othersStillWork(4);
        // A used ring address in no region at all (not even the frontend's address space).
        assertEquals(0, g.c.setVringAddr(1, g.mem.uva(r1.descGpa()), 0x10, g.mem.uva(r1.availGpa())));
        assertTrue(server.describeQueue(1).contains("translated=false"));
        g.othersStillWork(5);
    }

    @Test
    void writableDescriptorsOnATransmitQueueAreNeitherWrittenNorFatal() throws Exception {
        // The loopback device reads only the readable part of a tx chain: a writable-only chain moves nothing
        // and is returned; the memory behind it is untouched.
        final Guest g = new Guest();
        final long buf = g.mem.alloc(64, 8);
        g.mem.write(buf, new byte[64]);
        final int before = g.r[1].usedIdx();
        g.r[1].post(writable(buf, 64));
        g.r[1].kick();
        assertTrue(g.r[1].awaitUsedIdx(before + 1, 10_000));
        assertArrayEquals(new byte[64], g.mem.read(buf, 64));
        assertFalse(server.isQueueBroken(1));
        g.othersStillWork(6);
    }

    @Test
    void needsResetIsNotReportedWithoutTheStatusFeature() throws Exception {
        final Guest g = new Guest();
        assertEquals(0, g.c.setProtocolFeatures(PROTOCOL & ~P_STATUS));
        g.r[1].setAvailIdx(RING * 2);
        g.r[1].kick();
        g.awaitBroken(1);
        g.c.send(GET_STATUS, FLAGS, new byte[0]);
        assertEquals(1, g.c.readReply().u64(), "GET_STATUS without STATUS: error reply");
        g.othersStillWork(7);
    }
}
