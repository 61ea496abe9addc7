package org.vsbridge.vhost.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.TestStreams;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.VhostUserClient.*;

/**
 * The message orders and memory models of the frontend families the bridge serves, other than QEMU's (which
 * {@link VhostUserServerTest} covers): cloud-hypervisor / rust-vmm, the virtio-loopback adapter, frontends that
 * listen (client mode), the backend request channel, and queue indexes above 255. Real sockets, memfd, eventfds.
 */
class FrontendFamiliesTest {

    private static final long FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;
    private static final long P_BACKEND_REQ = 1L << 5;
    private static final long MIB = 1L << 20;

    private Path dir;
    private final List<AutoCloseable> closeLater = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory("vhost-families");
    }

    @AfterEach
    void stop() throws Exception {
        for (int i = closeLater.size() - 1; i >= 0; i--) {
            closeLater.get(i).close();
        }
        try (var files = Files.list(dir)) {
            for (final Path p : files.toList()) {
                Files.deleteIfExists(p);
            }
        }
        Files.deleteIfExists(dir);
    }

    private <T extends AutoCloseable> T later(final T c) {
        closeLater.add(c);
        return c;
    }

    private VhostUserServer listening(final LoopbackDevice device) throws IOException {
        final VhostUserServer server = later(new VhostUserServer("f", dir.resolve("b.sock"), device));
        server.start();
        return server;
    }

    private static void awaitEvent(final LoopbackDevice device, final String event) {
        await().atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(1))
            .untilAsserted(() -> assertTrue(device.events().contains(event), "no '" + event + "' in "
                + device.events()));
    }

    /** cloud-hypervisor: per queue NUM, ADDR, BASE, CALL, KICK, ENABLE; no REPLY_ACK on most requests. */
    private static void setUpLikeCloudHypervisor(final VhostUserClient c, final TestGuestMemory mem,
                                                 final TestRing... rings) throws IOException {
        for (final TestRing r : rings) {
            assertEquals(0, c.setVringNum(r.index(), r.size()));
            assertEquals(0, c.setVringAddr(mem, r));
            assertEquals(0, c.setVringBase(r.index(), r.availIdx()));
            assertEquals(0, c.setVringCall(r.index(), r.callFd()));
            assertEquals(0, c.setVringKick(r.index(), r.kickFd()));
            assertEquals(0, c.setVringEnable(r.index(), true));
        }
    }

    @Test
    void cloudHypervisorOrderWithResetOwnerAsReset() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(4, 256, FEATURES, 12);
        final VhostUserServer server = listening(device);
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("b.sock")));
        final TestGuestMemory mem = later(new TestGuestMemory(4 * MIB));
        final long offered = c.getFeatures();
        c.getProtocolFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_CONFIG);
        c.setOwner();
        assertEquals(4, c.getQueueNum(), "GET_QUEUE_NUM answers the queues really served");
        c.setFeatures((offered & FEATURES) | F_PROTOCOL_FEATURES);
        assertEquals(0, c.setMemTable(mem));
        final TestRing[] r = {later(new TestRing(mem, 0, 64)), later(new TestRing(mem, 1, 64))};
        r[0].useEventIdx(true);
        r[1].useEventIdx(true);
        setUpLikeCloudHypervisor(c, mem, r);
        final byte[] data = TestStreams.randomBytes(21, 50_000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 900, true));

        // Older cloud-hypervisor: ENABLE(0), GET_VRING_BASE, then RESET_OWNER instead of RESET_DEVICE.
        c.setVringEnable(0, false);
        c.setVringEnable(1, false);
        assertEquals(r[1].availIdx(), c.getVringBase(1));
        c.getVringBase(0);
        c.request(RESET_OWNER, new byte[0]);
        awaitEvent(device, "reset");
        assertTrue(server.describeQueue(1).contains("size=0"), server.describeQueue(1));

        // And it starts again on the same connection with fresh rings.
        c.setFeatures((offered & FEATURES) | F_PROTOCOL_FEATURES);
        final TestRing[] r2 = {later(new TestRing(mem, 0, 64)), later(new TestRing(mem, 1, 64))};
        r2[0].useEventIdx(true);
        r2[1].useEventIdx(true);
        setUpLikeCloudHypervisor(c, mem, r2);
        final byte[] again = TestStreams.randomBytes(22, 20_000);
        assertArrayEquals(again, TestStreams.loop(mem, r2[0], r2[1], again, 700, false));
    }

    @Test
    void virtioLoopbackOneFdManyUnalignedRegionsAndItsPrivateRequest39() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(4, 256, FEATURES, 12);
        listening(device);
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("b.sock")));
        // Guest RAM is one file; every region is a window of it with userspace_addr == guest_phys_addr.
        final TestGuestMemory mem = later(new TestGuestMemory(16 * MIB));
        c.getFeatures();
        c.getProtocolFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_CONFIG | P_CONFIGURE_MEM_SLOTS);
        c.getQueueNum();
        assertTrue(c.getMaxMemSlots() >= 12, "more than the 8 regions SET_MEM_TABLE can carry");
        c.setOwner();
        c.getFeatures();
        for (int i = 0; i < 4; i++) {
            c.setVringCall(i, -1);
        }
        // GET_CONFIG at realize, before any feature is set (the adapter requires F_CONFIG).
        assertEquals(24, c.getConfig(0, 12).payload().length);
        // The old adapter's private SHARE_LOOPBACK_FD: id 39 with an fd, STATUS not negotiated: closed and acked.
        final int[] pair = Sockets.socketpair();
        try {
            c.send(39, FLAGS | NEED_REPLY, u64(((long) 77 << 32) | pair[0]), pair[0]);
            assertEquals(0, c.readReply().u64());
            Sys.close(pair[0]);
            assertEquals(1, Sys.pollReadable(new int[] {pair[1]}, 10_000), "its fd was closed");
        } finally {
            Sys.closeQuietly(pair[1]);
        }
        c.setFeatures(FEATURES | F_PROTOCOL_FEATURES);
        c.setNeedReply(true); // the newer adapter asks for acks on ADD_MEM_REG
        // 12 contiguous regions; all but the first start 0x100 past a page boundary (old adapters' unaligned
        // mmap_offset), so guest buffers cross region boundaries and unaligned mappings.
        long gpa = 0;
        for (int i = 0; i < 12; i++) {
            final long end = (i + 1) * MIB + 0x100;
            assertEquals(0, c.request(ADD_MEM_REG, singleRegion(gpa, end - gpa, gpa, gpa), mem.fd()),
                "region " + i);
            gpa = end;
        }
        // Rings carry guest-physical addresses (== userspace_addr here); queue size 64 as the adapter's.
        final TestRing[] r = {later(new TestRing(mem, 0, 64)), later(new TestRing(mem, 1, 64))};
        for (final TestRing ring : r) {
            ring.useEventIdx(true);
            c.requestOk(SET_VRING_NUM, state(ring.index(), 64));
            c.requestOk(SET_VRING_BASE, state(ring.index(), 0));
            assertEquals(0, c.setVringAddr(ring.index(), ring.descGpa(), ring.usedGpa(), ring.availGpa()));
            assertEquals(0, c.setVringKick(ring.index(), ring.kickFd()));
            assertEquals(0, c.setVringCall(ring.index(), ring.callFd()));
            assertEquals(0, c.setVringEnable(ring.index(), true));
        }
        final byte[] data = TestStreams.randomBytes(23, 3 * (int) MIB);
        assertEquals(TestStreams.crc(data), TestStreams.crc(TestStreams.loop(mem, r[0], r[1], data, 4000, true)));
        assertEquals(data.length, device.bytesLooped());
    }

    @Test
    void clientModeConnectsToAListeningFrontendAndReconnects() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(2, 256, FEATURES, 12);
        final Path path = dir.resolve("frontend.sock");
        // The bridge starts first: nobody listens yet, it retries.
        final VhostUserServer server = later(VhostUserServer.connecting("c", path, 20, device));
        server.start();
        final int listen = Sockets.unixListen(path, 1);
        later(() -> Sys.closeQuietly(listen));
        for (int round = 1; round <= 2; round++) {
            assertEquals(1, Sys.pollReadable(new int[] {listen}, 10_000), "the bridge connects");
            final VhostUserClient c = VhostUserClient.of(Sockets.accept(listen));
            final TestGuestMemory mem = later(new TestGuestMemory(4 * MIB));
            final TestRing[] r = {later(new TestRing(mem, 0, 16)), later(new TestRing(mem, 1, 16))};
            c.negotiateLikeQemu(mem, FEATURES, 2, r);
            final byte[] data = TestStreams.randomBytes(30 + round, 10_000);
            assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 500, false));
            c.close(); // the frontend goes away; the bridge comes back after its reconnect interval
        }
        assertEquals(2, server.connectionCount());
        assertTrue(Files.exists(path), "client mode never touches the frontend's socket file");
    }

    @Test
    void backendRequestChannelCarriesConfigChangeWithReplyAck() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(2, 256, FEATURES, 12);
        listening(device);
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("b.sock")));
        assertNotEquals(0, c.getProtocolFeatures() & P_BACKEND_REQ, "BACKEND_REQ offered");
        final int[] pair = Sockets.socketpair();
        later(() -> Sys.closeQuietly(pair[0]));
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        c.setNeedReply(true);
        final int[] other = Sockets.socketpair();
        try {
            assertNotEquals(0, c.request(21, new byte[0], other[1]), "BACKEND_REQ not negotiated: refused");
        } finally {
            Sys.closeQuietly(other[0]);
            Sys.closeQuietly(other[1]);
        }
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_BACKEND_REQ);
        assertEquals(0, c.request(21, new byte[0], pair[1]), "SET_BACKEND_REQ_FD acked");
        Sys.close(pair[1]);
        awaitEvent(device, "attach");
        for (int round = 0; round < 2; round++) {
            assertTrue(device.context().configChanged());
            final VhostUserClient frontendSide = VhostUserClient.of(pair[0]);
            final byte[] header = new byte[12];
            int got = 0;
            while (got < 12) {
                assertEquals(1, Sys.pollReadable(new int[] {pair[0]}, 10_000), "CONFIG_CHANGE_MSG arrives");
                got += Sockets.recvMsg(pair[0], header, got, 12 - got, new org.vsbridge.libc.FdList());
            }
            final ByteBuffer h = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
            assertEquals(2, h.getInt(0), "VHOST_USER_BACKEND_CONFIG_CHANGE_MSG");
            assertEquals(0x9, h.getInt(4), "version 1 + NEED_REPLY (REPLY_ACK negotiated)");
            assertEquals(0, h.getInt(8));
            // The frontend acks; the channel is ready for the next one.
            frontendSide.send(2, REPLY_FLAGS, u64(0));
        }
        c.close();
        awaitEvent(device, "reset");
        await("the channel goes with its connection").atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(1))
            .until(() -> !device.context().configChanged());
    }

    @Test
    void queuesOf32768Descriptors() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(2, 32768, FEATURES, 12);
        listening(device);
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("b.sock")));
        final TestGuestMemory mem = later(new TestGuestMemory(128 * MIB));
        final TestRing[] r = {later(new TestRing(mem, 0, 32768)), later(new TestRing(mem, 1, 32768))};
        c.negotiateLikeQemu(mem, FEATURES, 2, r);
        final byte[] data = TestStreams.randomBytes(50, 4 * (int) MIB);
        assertEquals(TestStreams.crc(data), TestStreams.crc(TestStreams.loop(mem, r[0], r[1], data, 512, true)));
        assertNotEquals(0, c.request(SET_VRING_NUM, state(0, 65536)), "beyond the device's maximum");
    }

    @Test
    void queueIndexesAbove255UseTheHighIndexBits() throws Exception {
        final LoopbackDevice device = new LoopbackDevice(1024, 256, FEATURES, 12);
        listening(device);
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("b.sock")));
        final TestGuestMemory mem = later(new TestGuestMemory(8 * MIB));
        final TestRing[] r = {later(new TestRing(mem, 1022, 32)), later(new TestRing(mem, 1023, 32)),
            later(new TestRing(mem, 300, 32)), later(new TestRing(mem, 301, 32))};
        c.negotiateLikeQemu(mem, FEATURES, 1024, r);
        assertEquals(1024, c.getQueueNum());
        final byte[] a = TestStreams.randomBytes(40, 30_000);
        final byte[] b = TestStreams.randomBytes(41, 30_000);
        assertArrayEquals(a, TestStreams.loop(mem, r[0], r[1], a, 600, true));
        assertArrayEquals(b, TestStreams.loop(mem, r[2], r[3], b, 600, false));
        // Reserved bits (9-15, 32-63) are refused, not silently masked.
        assertNotEquals(0, c.request(SET_VRING_CALL, u64(0x200 | 0x100)));
        assertNotEquals(0, c.request(SET_VRING_CALL, u64((1L << 40) | 0x100)));
        // Index 1024 is beyond the device: refused.
        assertNotEquals(0, c.request(SET_VRING_CALL, u64(vringFd(1024, true))));
    }
}
