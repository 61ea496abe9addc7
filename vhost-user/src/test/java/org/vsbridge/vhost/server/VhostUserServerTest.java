package org.vsbridge.vhost.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.TestStreams;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;
import static org.vsbridge.vhost.testing.TestRing.Buffer.writable;
import static org.vsbridge.vhost.testing.VhostUserClient.*;

/** The engine end to end: real socket with fd passing, real memfd guest memory, real eventfds. */
class VhostUserServerTest {

    private static final int QUEUES = 4;
    private static final int RING = 16;
    private static final long FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;

    private Path dir;
    private Path socket;
    private LoopbackDevice device;
    private VhostUserServer server;
    private final List<AutoCloseable> closeLater = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory("vhost");
        socket = dir.resolve("backend.sock");
        device = new LoopbackDevice(QUEUES, 256, FEATURES, 12);
        server = new VhostUserServer("t", socket, device);
        server.start();
    }

    @AfterEach
    void stop() throws Exception {
        for (int i = closeLater.size() - 1; i >= 0; i--) {
            closeLater.get(i).close();
        }
        server.close();
        assertFalse(Files.exists(socket), "close() removes the socket path");
        Files.deleteIfExists(dir);
    }

    private <T extends AutoCloseable> T later(final T c) {
        closeLater.add(c);
        return c;
    }

    private VhostUserClient connect() throws IOException {
        return later(VhostUserClient.connect(socket));
    }

    private TestGuestMemory memory() throws IOException {
        return later(new TestGuestMemory(4 << 20));
    }

    private TestRing[] rings(final TestGuestMemory mem, final int count) throws IOException {
        final TestRing[] r = new TestRing[count];
        for (int i = 0; i < count; i++) {
            r[i] = later(new TestRing(mem, i, RING));
        }
        return r;
    }

    private void awaitEvent(final String event) {
        await().atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(5))
            .untilAsserted(() -> assertTrue(device.events().contains(event), "device never saw '" + event + "': "
                + device.events()));
    }

    private void awaitBroken(final int queue, final String what) {
        await(what).atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(5))
            .until(() -> server.isQueueBroken(queue));
    }

    @Test
    void qemu102MessageOrderWithReplyAcks() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, QUEUES);

        final long offered = c.getFeatures();
        assertEquals(FEATURES | F_PROTOCOL_FEATURES, offered);
        final long protocol = c.getProtocolFeatures();
        assertEquals(P_MQ | P_REPLY_ACK | (1L << 5) | P_CONFIG | (1L << 12) | P_RESET_DEVICE | P_CONFIGURE_MEM_SLOTS
            | P_STATUS, protocol, "BACKEND_REQ (bit 5) and INFLIGHT_SHMFD (bit 12) included");
        assertEquals(509, c.getMaxMemSlots());

        final long acked = c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        assertEquals(FEATURES | F_PROTOCOL_FEATURES, acked);
        assertTrue(c.needReply(), "REPLY_ACK negotiated: every request carried NEED_REPLY and got an ack");
        for (int i = 0; i < QUEUES; i++) {
            awaitEvent("started " + i);
        }
        assertTrue(device.events().contains("features 0x" + Long.toHexString(FEATURES)), device.events().toString());

        // Guest config read as QEMU does it on every access.
        final Reply cfg = c.getConfig(0, 12);
        assertEquals(24, cfg.payload().length, "reply size equals request size");
        assertEquals(1, cfg.payload()[12]);
        assertEquals(12, cfg.payload()[23]);

        final byte[] data = TestStreams.randomBytes(1, 5000);
        assertEquals(TestStreams.crc(data), TestStreams.crc(TestStreams.loop(mem, r[0], r[1], data, 700, false)));

        // Stop: ENABLE(0) per queue, then GET_VRING_BASE per queue.
        for (int i = 0; i < QUEUES; i++) {
            assertEquals(0, c.setVringEnable(i, false));
        }
        assertEquals(r[1].availIdx(), c.getVringBase(1));
        assertEquals(r[0].usedIdx(), c.getVringBase(0), "rx: every chain the device consumed was used");
        assertEquals(0, c.getVringBase(2));
        awaitEvent("stopped 1");
        assertTrue(server.counters().kicks(1) > 0);
        assertTrue(server.counters().calls(0) > 0);
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void dataBothWaysWithIndirectDescriptorsWithAndWithoutEventIdx(final boolean eventIdx) throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, QUEUES);
        final long wanted = eventIdx ? FEATURES : FEATURES & ~F_EVENT_IDX;
        c.negotiateLikeQemu(mem, wanted, QUEUES, r);

        final byte[] a = TestStreams.randomBytes(2, 200_000);
        final byte[] b = TestStreams.randomBytes(3, 70_001);
        assertEquals(TestStreams.crc(a), TestStreams.crc(TestStreams.loop(mem, r[0], r[1], a, 1500, true)));
        assertEquals(TestStreams.crc(b), TestStreams.crc(TestStreams.loop(mem, r[2], r[3], b, 333, true)));
        assertEquals(a.length + b.length, device.bytesLooped());
    }

    @Test
    void getVringBaseStopsWithoutResettingAndTheRingResumes() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        final byte[] first = TestStreams.randomBytes(4, 9000);
        assertArrayEquals(first, TestStreams.loop(mem, r[0], r[1], first, 500, false));
        // The loopback publishes rx before tx: wait until the last tx chains are used too.
        assertTrue(r[1].awaitUsedIdx(r[1].availIdx(), 10_000), "every tx chain used");
        final int txUsed = r[1].usedIdx();
        assertTrue(txUsed > 0);

        c.setVringEnable(0, false);
        c.setVringEnable(1, false);
        final int base1 = c.getVringBase(1);
        final int base0 = c.getVringBase(0);
        assertEquals(r[1].availIdx(), base1, "next_avail, not 0");
        assertEquals(r[0].usedIdx(), base0, "rx next_avail: every chain the device consumed");
        assertTrue(r[0].availIdx() != base0, "posted but unconsumed rx buffers are not counted");
        awaitEvent("stopped 0");
        assertEquals(txUsed, r[1].usedIdx(), "used ring left alone");

        // Resume as QEMU does after a stop: NUM, BASE (what GET_VRING_BASE said), ADDR, KICK, CALL, ENABLE.
        for (final TestRing ring : r) {
            c.requestOk(SET_VRING_NUM, state(ring.index(), ring.size()));
            c.requestOk(SET_VRING_BASE, state(ring.index(), ring.index() == 0 ? base0 : base1));
            assertEquals(0, c.setVringAddr(mem, ring));
            assertEquals(0, c.setVringKick(ring.index(), ring.kickFd()));
            assertEquals(0, c.setVringCall(ring.index(), ring.callFd()));
            assertEquals(0, c.setVringEnable(ring.index(), true));
        }
        final byte[] second = TestStreams.randomBytes(5, 9000);
        assertArrayEquals(second, TestStreams.loop(mem, r[0], r[1], second, 500, false));
        assertTrue(((r[1].usedIdx() - txUsed) & 0xffff) > 0, "used idx continued from where it was");
    }

    @Test
    void kickBeforeEnableIsNotLost() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.getFeatures();
        c.setProtocolFeatures(c.getProtocolFeatures() & (P_MQ | P_REPLY_ACK | P_CONFIG));
        c.setNeedReply(true);
        c.setOwner();
        assertEquals(0, c.setFeatures(FEATURES | F_PROTOCOL_FEATURES));
        assertEquals(0, c.setMemTable(mem));
        for (final TestRing ring : r) {
            ring.useEventIdx(true);
            c.setUpRing(mem, ring);
        }
        final long rxBuf = mem.alloc(64, 8);
        final long txBuf = mem.alloc(64, 8);
        final byte[] msg = "early bytes".getBytes();
        mem.write(txBuf, msg);
        r[0].post(writable(rxBuf, 64));
        r[1].post(readable(txBuf, msg.length));
        r[0].kick();
        r[1].kick();
        // A worker round trip: the kicks were read (the ring is not enabled, so nothing moved).
        assertFalse(server.describeQueue(1).contains("enabled=true"));
        assertEquals(0, device.bytesLooped());
        assertEquals(0, r[0].usedIdx());

        c.setVringEnable(0, true);
        c.setVringEnable(1, true);
        assertTrue(r[0].awaitUsedIdx(1, 10_000), "enable rescans avail: the early buffers are served");
        final List<TestRing.Used> used = r[0].collectUsed();
        assertEquals(msg.length, used.get(0).len());
        assertArrayEquals(msg, mem.read(rxBuf, msg.length));
    }

    @Test
    void featuresWithoutProtocolBitEnableAllRings() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.getFeatures();
        c.setOwner();
        c.setFeatures(FEATURES); // no bit 30: no SET_VRING_ENABLE will come
        c.setMemTable(mem);
        for (final TestRing ring : r) {
            ring.useEventIdx(true);
            c.setUpRing(mem, ring);
        }
        final byte[] data = TestStreams.randomBytes(6, 3000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 400, false));
    }

    @Test
    void getConfigAndSetConfigAreBounded() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        final Reply part = c.getConfig(4, 8);
        assertEquals(20, part.payload().length);
        assertEquals(5, part.payload()[12]);

        assertEquals(0, c.getConfig(8, 8).payload().length, "offset + size beyond config: error reply");
        assertEquals(0, c.getConfig(-4, 8).payload().length, "huge offset: error reply");
        assertEquals(0, c.getConfig(0, 0).payload().length, "size 0: error reply");
        // Size field disagreeing with the header size.
        final byte[] lying = payload(12 + 4).putInt(0).putInt(12).putInt(0).array();
        assertEquals(0, c.call(GET_CONFIG, lying).payload().length);

        c.setNeedReply(true);
        assertEquals(0, c.setConfig(10, new byte[] {(byte) 0xaa, (byte) 0xbb}));
        assertEquals((byte) 0xbb, device.configSnapshot()[11]);
        assertNotEquals(0, c.setConfig(11, new byte[] {1, 2}), "write past the end is refused");
        assertEquals((byte) 0xbb, device.configSnapshot()[11]);
    }

    @Test
    void queueIndexBeyondQueueCountGetsErrorAckAndTheConnectionGoesOn() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        c.setNeedReply(true);
        assertEquals(QUEUES, c.getQueueNum());
        assertNotEquals(0, c.setVringEnable(QUEUES, true));
        assertNotEquals(0, c.setVringNum(QUEUES + 100, 16));
        final int efd = Sys.eventfd();
        try {
            assertNotEquals(0, c.setVringCall(200, efd));
        } finally {
            Sys.close(efd);
        }
        assertEquals(0, c.call(GET_VRING_BASE, state(77, 0)).payload().length, "error reply for an owed reply");
        assertNotEquals(0, c.setVringNum(0, 3), "not a power of two");
        assertNotEquals(0, c.setVringNum(0, 512), "beyond maxQueueSize");
        assertEquals(0, c.setVringEnable(QUEUES - 1, true), "never set up, still accepted (QEMU enables all)");
        assertEquals(FEATURES | F_PROTOCOL_FEATURES, c.getFeatures());
    }

    @Test
    void garbageMessagesGetErrorsAndServingContinues() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        // Unknown id with NEED_REPLY: error ack. Without: silence, and the next request works.
        c.send(99, FLAGS | NEED_REPLY, new byte[] {1, 2, 3});
        Reply r = c.readReply();
        assertEquals(99, r.request());
        assertEquals(REPLY_FLAGS, r.flags());
        assertNotEquals(0, r.u64());
        c.send(0, FLAGS, new byte[0]);
        assertEquals(QUEUES, c.getQueueNum());
        // Known request, wrong payload size.
        c.send(SET_FEATURES, FLAGS | NEED_REPLY, new byte[4]);
        assertNotEquals(0, c.readReply().u64());
        c.send(SET_VRING_NUM, FLAGS | NEED_REPLY, new byte[12]);
        assertNotEquals(0, c.readReply().u64());
        // Features never offered.
        c.setNeedReply(true);
        assertNotEquals(0, c.setFeatures(1L << 60));
        assertNotEquals(0, c.setProtocolFeatures(1L << 1), "LOG_SHMFD is not offered");
        // A request we do not support that carries an fd: refused, fd closed by the backend.
        final int[] pair = Sockets.socketpair();
        try {
            c.send(7 /* SET_LOG_FD */, FLAGS | NEED_REPLY, new byte[0], pair[0]);
            assertNotEquals(0, c.readReply().u64());
            Sys.close(pair[0]);
            assertEquals(0, c.getQueueNum() - QUEUES);
            assertEquals(1, Sys.pollReadable(new int[] {pair[1]}, 10_000), "backend closed its copy: peer hangs up");
        } finally {
            Sys.closeQuietly(pair[1]);
        }
        // An owed reply for a request that cannot be served (INFLIGHT_SHMFD not negotiated): empty reply.
        c.send(31, FLAGS, new byte[24]);
        r = c.readReply();
        assertEquals(31, r.request());
        assertEquals(0, r.payload().length);
        // Stray fd on a request that takes none: closed, request still served.
        final int stray = Sys.eventfd();
        try {
            c.send(GET_QUEUE_NUM, FLAGS, new byte[0], stray);
            assertEquals(QUEUES, c.readReply().u64());
        } finally {
            Sys.close(stray);
        }
        // A header claiming a huge payload: the stream is untrustworthy, the backend hangs up...
        c.sendRaw(payload(12).putInt(GET_FEATURES).putInt(FLAGS).putInt(1 << 20).array());
        assertTrue(c.isClosedByPeer(10_000));
        // ...and serves the next connection.
        final VhostUserClient next = connect();
        assertEquals(FEATURES | F_PROTOCOL_FEATURES, next.getFeatures());
        assertEquals(2, server.connectionCount());
    }

    @Test
    void strayFdsAreAllClosedAndMissingFdsRefused() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        final int[] pair = Sockets.socketpair();
        try {
            final int[] many = new int[Sockets.MAX_FDS_PER_MESSAGE];
            java.util.Arrays.fill(many, pair[0]);
            c.send(GET_QUEUE_NUM, FLAGS, new byte[0], many);
            assertEquals(QUEUES, c.readReply().u64());
            Sys.close(pair[0]);
            assertEquals(1, Sys.pollReadable(new int[] {pair[1]}, 10_000), "all 253 received copies were closed");
        } finally {
            Sys.closeQuietly(pair[1]);
        }
        c.send(SET_VRING_KICK, FLAGS | NEED_REPLY, u64(0)); // no NOFD bit, no fd
        assertNotEquals(0, c.readReply().u64());
        assertEquals(QUEUES, c.getQueueNum());
    }

    @Test
    void workerThreadIsNamedAndWakesForHostWork() throws Exception {
        assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("vsb-worker-t")));
        assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("vsb-vhost-t")));
        await("the device attached").atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(5))
            .until(() -> device.context() != null);
        for (int i = 0; i < 3; i++) {
            final long before = device.doWorkCalls();
            device.context().wakeup(); // from a host thread, as a chardev would
            await("wakeup runs doWork").atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(1))
                .until(() -> device.doWorkCalls() != before);
        }
    }

    @Test
    void workerOnlyContextMethodsRefuseOtherThreads() throws Exception {
        await("the device attached").atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(5))
            .until(() -> device.context() != null);
        final IllegalStateException e = assertThrows(IllegalStateException.class, () -> device.context().queue(0));
        assertTrue(e.getMessage().contains("queue may only run on the worker thread vsb-worker-t"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> device.context().ackedFeatures());
        assertThrows(IllegalStateException.class, () -> device.context().watchOnce(0, 1, 0));
        // wakeup() is for any thread, and the worker still answers it.
        final long before = device.doWorkCalls();
        device.context().wakeup();
        await("wakeup runs doWork").atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(1))
            .until(() -> device.doWorkCalls() != before);
    }

    @Test
    void shortHeaderThenHangUpIsSurvived() throws Exception {
        final VhostUserClient c = connect();
        c.sendRaw(new byte[] {1, 0, 0, 0, 1});
        c.close();
        final VhostUserClient next = connect();
        assertEquals(QUEUES, next.getQueueNum());
    }

    @Test
    void loopbackShareFdRequestIsClosedAndAcked() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK); // no STATUS: 39 is virtio-loopback's SHARE_LOOPBACK_FD
        final int[] pair = Sockets.socketpair();
        try {
            c.send(39, FLAGS | NEED_REPLY, u64(((long) 1234 << 32) | pair[0]), pair[0]);
            assertEquals(0, c.readReply().u64());
            Sys.close(pair[0]);
            assertEquals(1, Sys.pollReadable(new int[] {pair[1]}, 10_000), "its fd was closed");
        } finally {
            Sys.closeQuietly(pair[1]);
        }
        assertEquals(QUEUES, c.getQueueNum());
    }

    @Test
    void statusIsKeptAndZeroResets() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_STATUS);
        c.setNeedReply(true);
        assertEquals(0, c.request(SET_STATUS, u64(0xf)));
        assertEquals(0xf, c.call(GET_STATUS, new byte[0]).u64());
        awaitEvent("status 15");
        assertEquals(0, c.request(SET_STATUS, u64(0)));
        awaitEvent("reset");
    }

    /** Breaks queue pair 0/1 with {@code breaker} and checks the pair 2/3 keeps working. */
    private void breakOnePairOthersLive(final java.util.function.BiConsumer<TestGuestMemory, TestRing> breaker,
                                        final String reason) throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, QUEUES);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        final int errFd = later(new EventFd()).fd;
        assertEquals(0, c.setVringErr(1, errFd));
        r[0].post(writable(mem.alloc(64, 8), 64));
        breaker.accept(mem, r[1]);
        r[1].kick();
        awaitBroken(1, reason + ": queue 1 broken");
        assertEquals(1, Sys.pollReadable(new int[] {errFd}, 10_000), "error eventfd signalled");
        awaitEvent("stopped 1");
        assertFalse(server.isQueueBroken(0));
        final byte[] data = TestStreams.randomBytes(7, 20_000);
        assertArrayEquals(data, TestStreams.loop(mem, r[2], r[3], data, 900, true), "other queues unaffected");
        assertEquals(QUEUES, c.getQueueNum(), "control connection unaffected");
    }

    @Test
    void descriptorOutsideMemoryBreaksOnlyItsQueue() throws Exception {
        breakOnePairOthersLive((mem, ring) -> ring.post(readable(mem.gpaBase() + mem.size() - 4, 64)),
            "address out of range");
    }

    @Test
    void descriptorAtHugeAddressBreaksOnlyItsQueue() throws Exception {
        breakOnePairOthersLive((mem, ring) -> ring.post(readable(-8L, 64)), "wrapping address");
    }

    @Test
    void descriptorLoopBreaksOnlyItsQueue() throws Exception {
        breakOnePairOthersLive((mem, ring) -> {
            final long buf = mem.alloc(16, 8);
            ring.writeDescriptor(3, buf, 16, TestRing.F_NEXT, 4);
            ring.writeDescriptor(4, buf, 16, TestRing.F_NEXT, 3);
            ring.publishHead(3);
        }, "loop");
    }

    @Test
    void badAvailIdxBreaksOnlyItsQueue() throws Exception {
        breakOnePairOthersLive((mem, ring) -> ring.setAvailIdx(RING * 3), "avail idx");
    }

    @Test
    void failingDeviceDoesNotKillTheWorker() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        device.failKicks(true);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        r[1].kick();
        assertNotNull(server.describeQueue(1), "worker answers after the device threw");
        device.failKicks(false);
        final byte[] data = TestStreams.randomBytes(8, 4000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 300, false));
    }

    @Test
    void disconnectThenReconnectStartsFresh() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        final byte[] data = TestStreams.randomBytes(9, 6000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 700, false));
        c.close();
        awaitEvent("reset");
        assertTrue(device.events().indexOf("stopped 1") < device.events().lastIndexOf("reset"),
            "queues stop before the device resets: " + device.events());

        final VhostUserClient c2 = connect();
        final TestGuestMemory mem2 = memory();
        final TestRing[] r2 = rings(mem2, 2);
        // Fresh state: nothing from the first connection survives (rings start at 0, new memory).
        assertTrue(server.describeQueue(0).contains("size=0"), server.describeQueue(0));
        c2.negotiateLikeQemu(mem2, FEATURES & ~F_EVENT_IDX, QUEUES, r2);
        final byte[] data2 = TestStreams.randomBytes(10, 6000);
        assertArrayEquals(data2, TestStreams.loop(mem2, r2[0], r2[1], data2, 700, true));
        assertEquals(2, server.connectionCount());
    }

    @Test
    void memoryTableReplacedWhileTheWorkerRuns() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        for (int round = 0; round < 5; round++) {
            // Same RAM, fresh mapping in the backend; the previous one is unmapped after the worker's ack.
            assertEquals(0, c.setMemTable(mem));
            final byte[] data = TestStreams.randomBytes(100 + round, 5000);
            assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 600, round % 2 == 0));
        }
        // Hot-add a second region and put data buffers there, then remove it again.
        final TestGuestMemory extra = later(new TestGuestMemory(1 << 20, 1L << 32));
        assertEquals(0, c.addMemReg(extra));
        final long txBuf = extra.alloc(128, 8);
        final byte[] msg = TestStreams.randomBytes(11, 100);
        extra.write(txBuf, msg);
        // The last loop may end with every tx descriptor in flight (used, not yet collected) and every rx
        // buffer it posted consumed: settle both before the next chain.
        assertTrue(r[1].awaitUsedIdx(r[1].availIdx(), 10_000), "every tx chain of the loop used");
        r[1].collectUsed();
        final int used0 = r[0].usedIdx();
        r[0].collectUsed();
        if (r[0].freeCount() > 0) {
            r[0].post(writable(mem.alloc(128, 8), 128));
        }
        r[1].post(readable(txBuf, msg.length)); // the device reads it from the hot-added region
        r[1].kick();
        assertTrue(r[0].awaitUsedIdx(used0 + 1, 10_000));
        final java.io.ByteArrayOutputStream got = new java.io.ByteArrayOutputStream();
        for (final TestRing.Used u : r[0].collectUsed()) {
            got.writeBytes(r[0].readWritten(u));
        }
        r[1].collectUsed();
        assertArrayEquals(msg, got.toByteArray());
        assertEquals(0, c.remMemReg(extra));
        assertNotEquals(0, c.remMemReg(extra), "already removed");
        // Buffers in the removed region now break the queue instead of touching unmapped memory.
        r[1].post(readable(txBuf, 16));
        r[1].kick();
        awaitBroken(1, "queue 1 broken");
    }

    @Test
    void overlappingRegionsAndWrongFdCountAreRefused() throws Exception {
        final VhostUserClient c = connect();
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_CONFIGURE_MEM_SLOTS);
        c.setNeedReply(true);
        final TestGuestMemory mem = memory();
        assertEquals(0, c.addMemReg(mem));
        assertNotEquals(0, c.addMemReg(mem), "overlaps the region already there");
        assertNotEquals(0, c.request(SET_MEM_TABLE, payload(8 + 32).putInt(1).putInt(0).putLong(0)
            .putLong(4096).putLong(0x1000).putLong(0).array()), "one region, no fd");
        assertNotEquals(0, c.request(SET_MEM_TABLE, payload(8).putInt(9).putInt(0).array()), "9 regions");
        assertEquals(QUEUES, c.getQueueNum());
    }

    @Test
    void nofdKickPollsTheRing() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = memory();
        final TestRing[] r = rings(mem, 2);
        c.negotiateLikeQemu(mem, FEATURES, QUEUES, r);
        assertEquals(0, c.setVringKick(1, -1));
        final long rxBuf = mem.alloc(64, 8);
        final long txBuf = mem.alloc(64, 8);
        mem.write(txBuf, new byte[] {1, 2, 3});
        final int used0 = r[0].usedIdx();
        r[0].post(writable(rxBuf, 64));
        r[1].post(readable(txBuf, 3)); // no kick at all
        assertTrue(r[0].awaitUsedIdx(used0 + 1, 10_000));
        assertArrayEquals(new byte[] {1, 2, 3}, mem.read(rxBuf, 3));
    }

    @Test
    void staleSocketFileIsReplacedAndInheritedFdWorks() throws Exception {
        server.close();
        Files.deleteIfExists(socket);
        final int stale = Sockets.unixListen(socket, 1);
        Sys.close(stale); // leaves the file behind, like a crashed backend
        assertTrue(Files.exists(socket));
        server = new VhostUserServer("t2", socket, device);
        server.start();
        assertEquals(QUEUES, connect().getQueueNum());

        final Path other = dir.resolve("inherited.sock");
        final int listenFd = Sockets.unixListen(other, 1);
        try (VhostUserServer inherited = new VhostUserServer("t3", listenFd,
            new LoopbackDevice(2, 64, FEATURES, 0))) {
            inherited.start();
            try (VhostUserClient c = VhostUserClient.connect(other)) {
                assertEquals(2, c.getQueueNum());
            }
        }
        Files.deleteIfExists(other);
    }

    @Test
    void refusesToReplaceSomethingThatIsNotASocket() throws Exception {
        final Path file = dir.resolve("not-a-socket");
        Files.writeString(file, "keep me");
        final VhostUserServer s = new VhostUserServer("t4", file, device);
        assertThrows(IOException.class, s::start);
        assertEquals("keep me", Files.readString(file));
        s.close();
        Files.delete(file);
    }

    /** An eventfd closed at the end of the test. */
    private static final class EventFd implements AutoCloseable {
        final int fd;

        EventFd() throws IOException {
            fd = Sys.eventfd();
        }

        @Override
        public void close() {
            Sys.closeQuietly(fd);
        }
    }
}
