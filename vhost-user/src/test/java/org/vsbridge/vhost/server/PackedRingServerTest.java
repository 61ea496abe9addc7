package org.vsbridge.vhost.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestPackedRing;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.TestStreams;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.VhostUserClient.*;

/**
 * Packed rings through the whole engine (real socket with fd passing, memfd memory, eventfds): a frontend that
 * acks VIRTIO_F_RING_PACKED gets packed queues, moves data both ways, stops them with GET_VRING_BASE (both
 * positions and wrap counters in the answer) and resumes them with SET_VRING_BASE; bad packed chains break only
 * their queue.
 */
class PackedRingServerTest {

    private static final long SPLIT_FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;
    private static final long FEATURES = SPLIT_FEATURES | F_RING_PACKED;

    private Path dir;
    private LoopbackDevice device;
    private VhostUserServer server;
    private LogCapture log;
    private final List<AutoCloseable> closeLater = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        log = LogCapture.of("org.vsbridge.vhost");
        dir = Files.createTempDirectory("vhost-packed");
        device = new LoopbackDevice(4, 256, FEATURES, 12);
        server = new VhostUserServer("p", dir.resolve("b.sock"), device);
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

    private VhostUserClient connect() throws IOException {
        return later(VhostUserClient.connect(dir.resolve("b.sock")));
    }

    private TestPackedRing[] packedRings(final TestGuestMemory mem, final int count, final int size)
        throws IOException {
        final TestPackedRing[] r = new TestPackedRing[count];
        for (int i = 0; i < count; i++) {
            r[i] = later(new TestPackedRing(mem, i, size));
        }
        return r;
    }

    private void awaitEvent(final String event) throws InterruptedException {
        LogCapture.awaitTrue(() -> device.events().contains(event), "device never saw '" + event + "': "
            + device.events());
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void dataBothWaysOverPackedRings(final boolean eventIdx) throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = later(new TestGuestMemory(8 << 20));
        final TestPackedRing[] r = packedRings(mem, 4, 16);
        final long wanted = eventIdx ? FEATURES : FEATURES & ~F_EVENT_IDX;
        assertEquals(FEATURES | F_PROTOCOL_FEATURES, c.getFeatures(), "the device offers the packed ring");
        final long acked = c.negotiateLikeQemu(mem, wanted, 4, r);
        assertNotEquals(0, acked & F_RING_PACKED);
        for (int i = 0; i < 4; i++) {
            awaitEvent("started " + i);
        }
        assertTrue(device.events().contains("features 0x" + Long.toHexString(wanted)), device.events().toString());
        assertTrue(server.describeQueue(1).contains("packed"), server.describeQueue(1));

        final byte[] a = TestStreams.randomBytes(60, 200_000);
        final byte[] b = TestStreams.randomBytes(61, 50_001);
        assertEquals(TestStreams.crc(a), TestStreams.crc(TestStreams.loop(mem, r[0], r[1], a, 1500, true)));
        assertEquals(TestStreams.crc(b), TestStreams.crc(TestStreams.loop(mem, r[2], r[3], b, 333, false)));
        assertEquals(a.length + b.length, device.bytesLooped());
        assertTrue(server.counters().calls(0) > 0);
        for (int i = 0; i < 4; i++) {
            assertFalse(server.isQueueBroken(i));
        }
    }

    @Test
    void getVringBaseAnswersBothPositionsAndTheRingResumesFromIt() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = later(new TestGuestMemory(8 << 20));
        final TestPackedRing[] r = packedRings(mem, 2, 8);
        c.negotiateLikeQemu(mem, FEATURES, 4, r);
        final byte[] first = TestStreams.randomBytes(62, 20_000);
        assertArrayEquals(first, TestStreams.loop(mem, r[0], r[1], first, 500, true));
        r[1].awaitAllUsed(10_000); // the loopback publishes rx before tx
        assertEquals(0, r[1].inFlightDescriptors(), "every tx chain used");

        c.setVringEnable(0, false);
        c.setVringEnable(1, false);
        final int base1 = c.getVringBase(1);
        final int base0 = c.getVringBase(0);
        assertEquals(r[1].vringBase(), base1, "tx: avail and used both where the driver stands");
        assertEquals(r[0].vringBase() >>> 16, base0 >>> 16, "rx: used where the driver reads next");
        assertEquals(r[0].nextUsed() | (r[0].usedWrap() ? TestPackedRing.WRAP : 0), base0 & 0xffff,
            "rx: next avail is past every chain the device consumed, not those merely posted");
        assertNotEquals(r[0].availIdx(), base0 & 0xffff, "posted but unconsumed rx buffers are not counted");
        awaitEvent("stopped 0");

        // Resume as QEMU does after a stop: NUM, BASE (what GET_VRING_BASE said), ADDR, KICK, CALL, ENABLE.
        for (final TestPackedRing ring : r) {
            c.requestOk(SET_VRING_NUM, state(ring.index(), ring.size()));
            c.requestOk(SET_VRING_BASE, state(ring.index(), ring.index() == 0 ? base0 : base1));
            assertEquals(0, c.setVringAddr(mem, ring));
            assertEquals(0, c.setVringKick(ring.index(), ring.kickFd()));
            assertEquals(0, c.setVringCall(ring.index(), ring.callFd()));
            assertEquals(0, c.setVringEnable(ring.index(), true));
        }
        final byte[] second = TestStreams.randomBytes(63, 30_000);
        assertArrayEquals(second, TestStreams.loop(mem, r[0], r[1], second, 700, false),
            "the rx buffers posted before the stop are read first, nothing lost or repeated");
        assertFalse(server.isQueueBroken(0));
        assertFalse(server.isQueueBroken(1));
    }

    @Test
    void packedBaseAndSizeRulesAtTheProtocolLevel() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = later(new TestGuestMemory(4 << 20));
        c.getFeatures();
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        c.setNeedReply(true);
        assertEquals(0, c.setFeatures(SPLIT_FEATURES | F_PROTOCOL_FEATURES));
        assertNotEquals(0, c.request(SET_VRING_BASE, state(0, 0x8000_8000)), "split: the base has 16 bits");
        assertNotEquals(0, c.request(SET_VRING_NUM, state(0, 24)), "split: a power of two");
        assertEquals(0, c.setFeatures(FEATURES | F_PROTOCOL_FEATURES));
        assertEquals(0, c.request(SET_VRING_NUM, state(0, 24)), "packed: any size up to 2^15");
        assertNotEquals(0, c.request(SET_VRING_NUM, state(0, 512)), "still no more than the device's maximum");
        assertEquals(0, c.request(SET_VRING_BASE, state(0, 0x8000_8000)), "packed: all 32 bits");
        assertEquals(0x8000_8000, c.getVringBase(0));
        assertEquals(0, c.request(SET_VRING_BASE, state(0, 0x0017_8003)));
        assertEquals(0x0017_8003, c.getVringBase(0), "used 23 wrap 0, avail 3 wrap 1");
        // A ring of 24 entries (not a power of two) carries data.
        final TestPackedRing[] r = {later(new TestPackedRing(mem, 0, 24)), later(new TestPackedRing(mem, 1, 24))};
        assertEquals(0, c.setMemTable(mem));
        for (final TestPackedRing ring : r) {
            ring.useEventIdx(true);
            c.setUpRing(mem, ring);
            assertEquals(0, c.setVringEnable(ring.index(), true));
        }
        final byte[] data = TestStreams.randomBytes(64, 40_000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 900, true));
        // Back to split on the same connection: the 16-bit rule again.
        assertEquals(0, c.request(RESET_DEVICE, new byte[0]));
        assertEquals(0, c.setFeatures(SPLIT_FEATURES | F_PROTOCOL_FEATURES));
        assertFalse(server.describeQueue(0).contains("packed"), server.describeQueue(0));
        assertNotEquals(0, c.request(SET_VRING_BASE, state(0, 0x8000_8000)));
    }

    @Test
    void aDeviceWithoutThePackedBitNeverOffersIt() throws Exception {
        final LoopbackDevice splitOnly = new LoopbackDevice(2, 256, SPLIT_FEATURES, 12);
        final VhostUserServer other = later(new VhostUserServer("s", dir.resolve("s.sock"), splitOnly));
        other.start();
        final VhostUserClient c = later(VhostUserClient.connect(dir.resolve("s.sock")));
        assertEquals(0, c.getFeatures() & F_RING_PACKED);
        c.setProtocolFeatures(P_MQ | P_REPLY_ACK);
        c.setNeedReply(true);
        assertNotEquals(0, c.setFeatures(FEATURES | F_PROTOCOL_FEATURES), "bit 34 was never offered");
        log.await("s: SET_FEATURES(2) refused", "never offered");
        // And a frontend that leaves the bit out gets split rings from a device that offers it.
        final VhostUserClient d = connect();
        final TestGuestMemory mem = later(new TestGuestMemory(4 << 20));
        final TestRing[] r = {later(new TestRing(mem, 0, 16)), later(new TestRing(mem, 1, 16))};
        d.negotiateLikeQemu(mem, SPLIT_FEATURES, 4, r);
        assertFalse(server.describeQueue(0).contains("packed"), server.describeQueue(0));
        final byte[] data = TestStreams.randomBytes(65, 10_000);
        assertArrayEquals(data, TestStreams.loop(mem, r[0], r[1], data, 600, true));
    }

    @Test
    void aBadPackedChainBreaksOnlyItsQueueAndReportsNeedsReset() throws Exception {
        final VhostUserClient c = connect();
        final TestGuestMemory mem = later(new TestGuestMemory(4 << 20));
        final TestPackedRing[] r = packedRings(mem, 4, 16);
        c.negotiateLikeQemu(mem, FEATURES, 4, r);
        assertEquals(0, c.setProtocolFeatures(P_MQ | P_REPLY_ACK | P_CONFIG | P_RESET_DEVICE
            | P_CONFIGURE_MEM_SLOTS | P_STATUS));
        assertEquals(0, c.request(SET_STATUS, u64(0xf)));
        final long buf = mem.alloc(16, 8);
        // A head made available whose NEXT descriptor is not: the driver published out of order.
        r[1].writeDescriptor(1, buf, 16, 0, 0);
        r[1].writeDescriptor(0, buf, 16, 0, TestPackedRing.F_NEXT | r[1].availBits());
        r[1].kick();
        LogCapture.awaitTrue(() -> {
            try {
                return server.isQueueBroken(1);
            } catch (final IOException e) {
                throw new IllegalStateException(e);
            }
        }, "queue 1 never broke");
        log.await("p queue 1 broken: ", "out of order");
        assertEquals(0xf | FrontendConnection.VIRTIO_CONFIG_S_NEEDS_RESET, c.call(GET_STATUS, new byte[0]).u64());
        final byte[] data = TestStreams.randomBytes(66, 12_000);
        assertArrayEquals(data, TestStreams.loop(mem, r[2], r[3], data, 700, true), "other queues unaffected");
        assertFalse(server.isQueueBroken(0));
    }
}
