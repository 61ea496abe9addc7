package org.vsbridge.nativetest.realguest;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * The real-guest checks with the bridge offering VIRTIO_F_RING_PACKED ({@code --packed-ring}): QEMU's generic
 * vhost-user device passes the backend's features through, so Linux's virtio_ring drives every queue as a
 * packed ring and QEMU hands the bridge packed ring addresses and bases.
 */
class RealGuestPackedTest extends RealGuestSuite {

    @Override
    Backend backend() {
        return Backend.BRIDGE_PACKED;
    }

    @Test
    @Order(30)
    void theGuestAckedPackedRings() {
        final String log = harness.bridge().log();
        assertTrue(log.contains("rings)") && log.contains("(packed rings)") && !log.contains("(split rings)"),
            () -> "the bridge log shows which rings the guest acked; expected packed only:\n" + log);
    }
}
