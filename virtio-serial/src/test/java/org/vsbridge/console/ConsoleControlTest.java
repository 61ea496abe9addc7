package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.console.ConsoleHarness.Msg;
import org.vsbridge.vhost.testing.VhostUserClient;

/** The control protocol end to end: engine, real socket, memfd guest memory, eventfds; the test is the driver. */
class ConsoleControlTest {

    private static final List<PortSpec> PORTS = List.of(
        new PortSpec(0, "con0", null, true),
        new PortSpec(1, "ch1", "org.example.1", false),
        new PortSpec(3, "ch3", null, false));

    @TempDir
    Path dir;

    private ConsoleHarness harness() throws Exception {
        return new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES);
    }

    @Test
    void frontendSeesConfigFeaturesAndQueueCount() throws Exception {
        try (ConsoleHarness h = harness()) {
            assertEquals(ConsoleHarness.LINUX_FEATURES | VhostUserClient.F_PROTOCOL_FEATURES, h.acked);
            final VhostUserClient.Reply config = h.client.getConfig(0, 12);
            final ByteBuffer b = config.buffer();
            assertEquals(24, config.payload().length);
            assertEquals(0, b.getShort(12), "cols");
            assertEquals(0, b.getShort(14), "rows");
            assertEquals(4, b.getInt(16), "max_nr_ports");
            assertEquals(0, b.getInt(20), "emerg_wr");
            assertEquals(10, h.client.getQueueNum());
        }
    }

    @Test
    void deviceReadyAddsEveryConfiguredPortOneMessagePerBuffer() throws Exception {
        try (ConsoleHarness h = harness()) {
            final List<Msg> added = h.probe(16);
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1), PORT_ADD(3,1)]", added.toString());
            for (final Msg m : added) {
                assertEquals(8, m.usedLength(), "one message per buffer at offset 0, not packed");
            }
        }
    }

    @Test
    void portReadyAnswersConsoleNameAndHostOpen() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.device.hostConnected(1, true);
            h.probe(16);
            h.sendControl(0, ControlMessage.PORT_READY, 1);
            assertEquals("[CONSOLE_PORT(0,1)]", h.readControl(1).toString());
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            final List<Msg> port1 = h.readControl(2);
            assertEquals(ControlMessage.PORT_NAME, port1.get(0).event());
            assertEquals(1, port1.get(0).id());
            // UTF-8 name followed by a NUL, as QEMU sends it.
            assertArrayEquals("org.example.1\0".getBytes(StandardCharsets.UTF_8), port1.get(0).payload());
            assertEquals("PORT_OPEN(1,1)", port1.get(1).toString());
            // Port 3: generic, no name, host side not connected: nothing. Then a port id the device does not
            // have is ignored. The next message proves nothing was sent in between.
            h.sendControl(3, ControlMessage.PORT_READY, 1);
            h.sendControl(9, ControlMessage.PORT_READY, 1);
            h.sendControl(2, ControlMessage.PORT_READY, 1);
            h.device.hostConnected(3, true);
            assertEquals("[PORT_OPEN(3,1)]", h.readControl(1).toString());
            h.device.hostConnected(3, false);
            assertEquals("[PORT_OPEN(3,0)]", h.readControl(1).toString());
        }
    }

    @Test
    void hostOpenBeforePortReadyIsRememberedNotSent() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            // Port 3 is added but not ready yet: the host side's open is remembered for PORT_READY.
            h.device.hostConnected(3, true);
            h.barrier();
            assertEquals(0, h.collect(QueueLayout.CONTROL_RX).size(), "no PORT_OPEN before PORT_READY");
            h.sendControl(3, ControlMessage.PORT_READY, 1);
            assertEquals("[PORT_OPEN(3,1)]", h.readControl(1).toString());
        }
    }

    @Test
    void guestPortOpenIsReportedOnChangeOnly() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            h.readControl(1); // PORT_NAME
            assertFalse(h.device.guestConnected(1));
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            assertEquals("1 open", h.nextEvent());
            assertTrue(h.device.guestConnected(1));
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            h.sendControl(1, ControlMessage.PORT_OPEN, 0);
            assertEquals("1 closed", h.nextEvent(), "a repeated PORT_OPEN(1) is no change");
            assertFalse(h.device.guestConnected(1));
            h.sendControl(0, ControlMessage.PORT_OPEN, 1);
            assertEquals("0 open", h.nextEvent());
            h.barrier();
            assertTrue(h.events.isEmpty(), "unexpected events " + h.events);
        }
    }

    @Test
    void controlMessagesWaitForReceiveBuffers() throws Exception {
        try (ConsoleHarness h = harness()) {
            // No control receive buffer yet: DEVICE_READY is still used at once (the driver spins on it).
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 1);
            h.barrier();
            assertEquals(0, h.rings[QueueLayout.CONTROL_RX].usedIdx());
            h.postWritable(QueueLayout.CONTROL_RX, 1);
            assertEquals("[PORT_ADD(0,1)]", h.readControl(1).toString());
            h.postWritable(QueueLayout.CONTROL_RX, 2);
            assertEquals("[PORT_ADD(1,1), PORT_ADD(3,1)]", h.readControl(2).toString());
            h.barrier();
            assertEquals(0, h.collect(QueueLayout.CONTROL_RX).size(), "no extra messages");
            assertEquals(0, h.inFlight(QueueLayout.CONTROL_RX), "every posted buffer carried one message");
        }
    }

    @Test
    void resetClosesOpenPortsAndStartsOver() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.device.hostConnected(1, true);
            h.probe(16);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            h.sendControl(3, ControlMessage.PORT_OPEN, 1);
            assertEquals("1 open", h.nextEvent());
            assertEquals("3 open", h.nextEvent());
            // The frontend goes away: the device is reset and every open port is closed, once.
            h.client.close();
            assertEquals("1 closed", h.nextEvent());
            assertEquals("3 closed", h.nextEvent());
            assertFalse(h.device.guestConnected(1));
            assertFalse(h.device.guestConnected(3));
            // The next frontend starts over from DEVICE_READY; the host side is still connected.
            h.reconnect();
            assertEquals(3, h.probe(4).size());
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            // One buffer was left after the three PORT_ADDs: PORT_OPEN waits for the next one.
            assertEquals("[PORT_NAME(1,1)+14B]", h.readControl(1).toString());
            h.postWritable(QueueLayout.CONTROL_RX, 1);
            assertEquals("[PORT_OPEN(1,1)]", h.readControl(1).toString());
            h.barrier();
            assertTrue(h.events.isEmpty(), "unexpected events " + h.events);
        }
    }

    @Test
    void resetDeviceDropsPendingControlMessagesAndWaitsForDeviceReady() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.sendControl(0, ControlMessage.PORT_OPEN, 1);
            assertEquals("0 open", h.nextEvent());
            // DEVICE_READY with no control receive buffer: three PORT_ADDs wait in the device.
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 1);
            h.resetDevice();
            assertEquals("0 closed", h.nextEvent());
            // After the reset those messages are gone: buffers posted now stay empty until DEVICE_READY.
            h.postWritable(QueueLayout.CONTROL_RX, 8);
            h.barrier();
            assertEquals(0, h.rings[QueueLayout.CONTROL_RX].usedIdx());
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1), PORT_ADD(3,1)]", h.probe(0).toString());
        }
    }

    @Test
    void malformedControlMessagesAreUsedAndIgnored() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            // Shorter than a header, an unknown event, and a device-to-driver event sent by the driver.
            final byte[] shortMsg = ByteBuffer.allocate(5).order(ByteOrder.LITTLE_ENDIAN).putInt(1).array();
            h.postReadable(QueueLayout.CONTROL_TX, shortMsg, 0, shortMsg.length, true);
            assertEquals(1, h.awaitAllUsed(QueueLayout.CONTROL_TX).size());
            h.sendControl(1, 77, 1);
            h.sendControl(1, ControlMessage.PORT_ADD, 1);
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 0);
            // Still serving: a real PORT_READY gets its answer.
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            assertEquals("[PORT_NAME(1,1)+14B]", h.readControl(1).toString());
        }
    }
}
