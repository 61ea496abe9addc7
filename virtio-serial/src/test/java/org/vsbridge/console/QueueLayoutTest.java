package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class QueueLayoutTest {

    @Test
    void port0AndControlUseTheFirstFourQueues() {
        assertEquals(0, QueueLayout.rxQueue(0));
        assertEquals(1, QueueLayout.txQueue(0));
        assertEquals(QueueLayout.NO_PORT, QueueLayout.portOf(QueueLayout.CONTROL_RX));
        assertEquals(QueueLayout.NO_PORT, QueueLayout.portOf(QueueLayout.CONTROL_TX));
        assertTrue(QueueLayout.isControl(2));
        assertTrue(QueueLayout.isControl(3));
        assertFalse(QueueLayout.isControl(4));
    }

    @Test
    void portNAtTwoNPlusTwoAndThree() {
        assertEquals(4, QueueLayout.rxQueue(1));
        assertEquals(5, QueueLayout.txQueue(1));
        assertEquals(64, QueueLayout.rxQueue(31));
        assertEquals(65, QueueLayout.txQueue(31));
        assertEquals(1024, QueueLayout.rxQueue(511));
        assertEquals(1025, QueueLayout.txQueue(511));
    }

    @Test
    void everyQueueMapsBackToItsPortAndDirection() {
        final int maxPorts = QueueLayout.MAX_PORTS;
        final Set<Integer> seen = new HashSet<>();
        for (int nr = 0; nr < maxPorts; nr++) {
            final int rx = QueueLayout.rxQueue(nr);
            final int tx = QueueLayout.txQueue(nr);
            assertEquals(nr, QueueLayout.portOf(rx));
            assertEquals(nr, QueueLayout.portOf(tx));
            assertTrue(QueueLayout.isRx(rx), "rx queue " + rx);
            assertFalse(QueueLayout.isRx(tx), "tx queue " + tx);
            assertTrue(seen.add(rx));
            assertTrue(seen.add(tx));
            assertTrue(tx < QueueLayout.queueCount(maxPorts));
        }
        seen.add(QueueLayout.CONTROL_RX);
        seen.add(QueueLayout.CONTROL_TX);
        // Every queue of a full device belongs to exactly one port or the control pair.
        assertEquals(QueueLayout.queueCount(maxPorts), seen.size());
        assertEquals(1024, QueueLayout.queueCount(maxPorts));
        assertEquals(QueueLayout.NO_PORT, QueueLayout.portOf(-1));
    }
}
