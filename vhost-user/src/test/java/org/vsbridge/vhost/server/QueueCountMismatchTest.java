package org.vsbridge.vhost.server;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.vhost.testing.LogCapture;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;
import static org.vsbridge.vhost.testing.VhostUserClient.*;

/**
 * A frontend whose queue count is not the device's gets one warning naming the count the device expects, as
 * soon as its messages show it: QEMU's opening SET_VRING_CALL/SET_VRING_ERR sweep over all its queues.
 */
class QueueCountMismatchTest {

    private static final int RING = 16;
    private static final long FEATURES = F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX;

    @TempDir
    Path dir;

    private final LogCapture log = LogCapture.of("org.vsbridge.vhost");
    private VhostUserServer server;

    private VhostUserServer serve(final int queues) throws Exception {
        server = new VhostUserServer("q", dir.resolve("b.sock"), new LoopbackDevice(queues, 256, FEATURES, 12));
        server.start();
        return server;
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        log.close();
    }

    private long warnings() {
        return log.lines().stream().filter(l -> l.contains("num_vqs=")).count();
    }

    /** Like QEMU's vhost-user-device with num_vqs=4 in front of a device of 8 queues. */
    @Test
    void aFrontendWithFewerQueuesIsToldTheDevicesCountOnce() throws Exception {
        serve(8);
        try (VhostUserClient c = VhostUserClient.connect(dir.resolve("b.sock"));
             TestGuestMemory mem = new TestGuestMemory(1 << 20);
             TestRing r0 = new TestRing(mem, 0, RING);
             TestRing r1 = new TestRing(mem, 1, RING)) {
            c.negotiateLikeQemu(mem, FEATURES, 4, r0, r1);
            final String line = log.await("num_vqs=8");
            assertTrue(line.startsWith("WARNING q: the frontend set up queues 0..3 (4 queues) but this device has 8"
                + " queues"), line);
            assertEquals(0, c.setVringCall(0, -1), "the connection goes on");
        }
        assertEquals(1, warnings(), log.lines().toString());
    }

    /** num_vqs=6 in front of a device of 4: the first queue beyond the device's tells it. */
    @Test
    void aFrontendWithMoreQueuesIsToldTheDevicesCountOnce() throws Exception {
        serve(4);
        try (VhostUserClient c = VhostUserClient.connect(dir.resolve("b.sock"))) {
            c.setProtocolFeatures(c.getProtocolFeatures() & (P_MQ | P_REPLY_ACK | P_CONFIG));
            c.setNeedReply(true);
            assertEquals(4, c.getQueueNum());
            assertEquals(0, c.setOwner());
            for (int i = 0; i < 6; i++) {
                assertEquals(i < 4 ? 0 : 1, c.setVringCall(i, -1), "queue " + i);
                assertEquals(i < 4 ? 0 : 1, c.setVringErr(i, -1), "queue " + i);
            }
            c.getFeatures();
            final String line = log.await("num_vqs=4");
            assertTrue(line.startsWith("WARNING q: the frontend names queue 4 but this device has 4 queues"), line);
        }
        assertEquals(1, warnings(), log.lines().toString());
    }

    @Test
    void aMatchingFrontendOrOneWithoutASweepIsNotWarned() throws Exception {
        serve(4);
        for (final int swept : new int[] {4, 0}) {
            try (VhostUserClient c = VhostUserClient.connect(dir.resolve("b.sock"));
                 TestGuestMemory mem = new TestGuestMemory(1 << 20);
                 TestRing r0 = new TestRing(mem, 0, RING);
                 TestRing r1 = new TestRing(mem, 1, RING)) {
                // With 0, only the two rings in use get their call fds, after the memory table.
                c.negotiateLikeQemu(mem, FEATURES, swept, r0, r1);
                assertEquals(0, c.setVringEnable(0, true));
            }
        }
        assertEquals(0, warnings(), log.lines().toString());
    }
}
