package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.console.ConsoleHarness.Msg;
import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.testing.VhostUserClient;

/**
 * Hot-plug, console size, emergency write, the hold policy and reset, end to end over the real engine with
 * the test playing QEMU and the Linux driver.
 */
class ConsoleHotplugTest {

    private static final List<PortSpec> PORTS = List.of(
        new PortSpec(0, "con0", null, true),
        new PortSpec(1, "ch1", "org.example.1", false));
    private static final long P_STATUS = 1L << 16;
    private static final long P_BACKEND_REQ = 1L << 5;

    @TempDir
    Path dir;

    private ConsoleHarness harness() throws Exception {
        return new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES);
    }

    private static String error(final ConsoleHarness h, final PortSpec spec) {
        return assertThrows(IllegalArgumentException.class, () -> h.hotAdd(spec)).getMessage();
    }

    @Test
    void portsAreAddedAndRemovedWhileTheGuestRuns() throws Exception {
        try (ConsoleHarness h = harness()) {
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1)]", h.probe(16).toString());
            // QEMU's wording for every refusal.
            assertEquals("virtio-serial-bus: A port already exists at id 1",
                error(h, new PortSpec(1, "x", null, false)));
            assertEquals("virtio-serial-bus: A port already exists by name org.example.1",
                error(h, new PortSpec(-1, "x", "org.example.1", false)));
            assertEquals("virtio-serial-bus: Port number 0 on virtio-serial devices reserved for virtconsole "
                + "devices for backward compatibility", error(h, new PortSpec(0, "x", null, false)));
            assertEquals("virtio-serial-bus: Out-of-range port id specified, max. allowed: 3",
                error(h, new PortSpec(4, "x", null, false)));

            final PortSpec hot = h.hotAdd(new PortSpec(-1, "hot", "org.hot", false));
            assertEquals(2, hot.nr(), "lowest free number");
            assertEquals("[PORT_ADD(2,1)]", h.readControl(1).toString());
            h.sendControl(2, ControlMessage.PORT_READY, 1);
            final Msg name = h.readControl(1).get(0);
            assertEquals("PORT_NAME(2,1)+8B", name.toString());
            assertArrayEquals("org.hot\0".getBytes(StandardCharsets.UTF_8), name.payload());
            h.device.hostConnected(2, true);
            assertEquals("[PORT_OPEN(2,1)]", h.readControl(1).toString());
            h.sendControl(2, ControlMessage.PORT_OPEN, 1);
            assertEquals("2 open", h.nextEvent());
            // Its queues were set up by the guest at probe: data flows at once.
            final byte[] hello = "hello from a hot-added port".getBytes(StandardCharsets.UTF_8);
            h.write(2, hello, 10);
            h.awaitAllUsed(QueueLayout.txQueue(2));
            ConsoleHarness.await(() -> h.channels[2].toHostCount() == hello.length, "bytes on port 2");
            assertArrayEquals(hello, h.channels[2].hostRead(100));

            assertEquals(3, h.hotAdd(new PortSpec(-1, "hot3", null, false)).nr());
            assertEquals("[PORT_ADD(3,1)]", h.readControl(1).toString());
            assertEquals("virtio-serial-bus: Maximum port limit for this device reached",
                error(h, new PortSpec(-1, "x", null, false)));

            // Unplug: PORT_REMOVE, no VSERPORT_CHANGE (QEMU emits none for an unplugged port), number free again.
            assertEquals(hot, h.device.removePort(2).get(10, TimeUnit.SECONDS));
            assertEquals("[PORT_REMOVE(2,1)]", h.readControl(1).toString());
            assertEquals(List.of(0, 1, 3), h.device.ports().stream().map(PortSpec::nr).toList());
            assertThrows(IllegalArgumentException.class, () -> h.device.guestConnected(2));
            h.sendControl(2, ControlMessage.PORT_OPEN, 0); // the driver's late close: logged, ignored
            h.barrier();
            assertTrue(h.events.isEmpty(), "unexpected events " + h.events);
            assertEquals(2, h.hotAdd(new PortSpec(2, "again", "org.hot", false)).nr(), "name and number reusable");
            assertEquals("[PORT_ADD(2,1)]", h.readControl(1).toString());
            assertThrows(IllegalArgumentException.class, () -> h.device.removePort(9));
        }
    }

    @Test
    void portsAddedBeforeTheDriverIsReadyArriveWithDeviceReady() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.hotAdd(new PortSpec(3, "late", null, false));
            h.postWritable(QueueLayout.CONTROL_RX, 3); // exactly the PORT_ADDs: nothing left for later messages
            h.barrier();
            assertEquals(0, h.collect(QueueLayout.CONTROL_RX).size(), "no PORT_ADD before DEVICE_READY");
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 1);
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1), PORT_ADD(3,1)]", h.readControl(3).toString());
            // A port removed before its PORT_NAME went out (no control buffer posted): the stale message is
            // skipped, never sent without its name.
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            h.device.removePort(1).get(10, TimeUnit.SECONDS);
            h.barrier();
            h.postWritable(QueueLayout.CONTROL_RX, 4);
            assertEquals("[PORT_REMOVE(1,1)]", h.readControl(1).toString());
            h.barrier();
            assertEquals(0, h.collect(QueueLayout.CONTROL_RX).size(), "nothing else");
        }
    }

    @Test
    void holdPolicyKeepsGuestOutputUntilAPeerConnects() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            h.readControl(1);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            assertEquals(OutputPolicy.DROP, h.device.outputPolicy(1), "QEMU's behaviour by default");
            h.device.setOutputPolicy(1, OutputPolicy.HOLD);
            final byte[] data = new byte[3000];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i * 7);
            }
            final int tx = QueueLayout.txQueue(1);
            h.write(1, data, 1000);
            h.barrier();
            assertEquals(0, h.rings[tx].usedIdx(), "held in the ring, not used");
            assertEquals(0, h.device.counters(1).bytesDropped());
            h.device.hostConnected(1, true);
            h.awaitAllUsed(QueueLayout.txQueue(1));
            ConsoleHarness.await(() -> h.channels[1].toHostCount() == data.length, "held bytes delivered");
            assertArrayEquals(data, h.channels[1].hostRead(data.length));
            assertEquals(0, h.device.counters(1).bytesDropped());
            assertEquals(data.length, h.device.counters(1).bytesToHost());

            // Peer gone again, output held; switching to drop lets it go, counted.
            h.device.hostConnected(1, false);
            h.barrier();
            final int usedBefore = h.rings[tx].usedIdx();
            h.write(1, data, 1500);
            h.barrier();
            assertEquals(usedBefore, h.rings[tx].usedIdx(), "held again");
            h.device.setOutputPolicy(1, OutputPolicy.DROP);
            h.awaitAllUsed(QueueLayout.txQueue(1));
            ConsoleHarness.await(() -> h.device.counters(1).bytesDropped() == data.length, "dropped counted");
        }
    }

    @Test
    void unplugDiscardsHeldGuestOutputCounted() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            h.device.setOutputPolicy(1, OutputPolicy.HOLD);
            final PortCounters counters = h.device.counters(1);
            h.write(1, new byte[2500], 1000);
            h.barrier();
            assertEquals(0, h.rings[QueueLayout.txQueue(1)].usedIdx(), "held");
            h.device.removePort(1).get(10, TimeUnit.SECONDS);
            h.awaitAllUsed(QueueLayout.txQueue(1));
            assertEquals(2500, counters.bytesDropped());
        }
    }

    private static short[] resizePayload(final Msg m) {
        final ByteBuffer b = ByteBuffer.wrap(m.payload()).order(ByteOrder.LITTLE_ENDIAN);
        return new short[] {b.getShort(0), b.getShort(2)};
    }

    @Test
    void consoleSizeIsSentAsResizeRowsFirstOrAsConfigured() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.device.resize(0, 80, 25);
            assertThrows(IllegalArgumentException.class, () -> h.device.resize(1, 80, 25), "not a console");
            h.probe(16);
            h.sendControl(0, ControlMessage.PORT_READY, 1);
            final List<Msg> ready = h.readControl(2);
            assertEquals("[CONSOLE_PORT(0,1), RESIZE(0,1)+4B]", ready.toString());
            assertArrayEquals(new short[] {25, 80}, resizePayload(ready.get(1)), "rows, cols: what Linux reads");
            h.device.resize(0, 132, 43);
            assertArrayEquals(new short[] {43, 132}, resizePayload(h.readControl(1).get(0)));
            h.device.setResizeOrder(ResizeOrder.COLS_ROWS);
            h.device.resize(0, 100, 50);
            assertArrayEquals(new short[] {100, 50}, resizePayload(h.readControl(1).get(0)), "spec order");
            final ByteBuffer config = h.client.getConfig(0, 12).buffer();
            assertEquals(100, config.getShort(12), "cols in config space");
            assertEquals(50, config.getShort(14), "rows in config space");
        }
    }

    @Test
    void withoutMultiportPortZeroSizeIsAConfigChangeOnTheBackendChannel() throws Exception {
        final long features = ConsoleHarness.LINUX_FEATURES & ~ConsoleHarness.F_MULTIPORT;
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, features, 2)) {
            final VhostUserClient c = h.client;
            c.requestOk(VhostUserClient.SET_PROTOCOL_FEATURES, VhostUserClient.u64(VhostUserClient.P_MQ
                | VhostUserClient.P_REPLY_ACK | VhostUserClient.P_CONFIG | P_BACKEND_REQ));
            final int[] pair = Sockets.socketpair();
            try {
                c.requestOk(21, new byte[0], pair[1]);
                Sys.close(pair[1]);
                h.device.resize(0, 120, 40);
                final byte[] header = new byte[12];
                int got = 0;
                while (got < 12) {
                    assertEquals(1, Sys.pollReadable(new int[] {pair[0]}, 10_000), "CONFIG_CHANGE_MSG arrives");
                    got += Sockets.recvMsg(pair[0], header, got, 12 - got, new FdList());
                }
                final ByteBuffer msg = ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN);
                assertEquals(2, msg.getInt(0));
                assertEquals(0x9, msg.getInt(4));
                VhostUserClient.of(pair[0]).send(2, VhostUserClient.REPLY_FLAGS, VhostUserClient.u64(0));
                // What the driver then reads.
                final ByteBuffer config = c.getConfig(0, 4).buffer();
                assertEquals(120, config.getShort(12));
                assertEquals(40, config.getShort(14));
                assertEquals(0, h.rings[0].usedIdx(), "and nothing on the data queues");
            } finally {
                Sys.closeQuietly(pair[0]);
            }
        }
    }

    @Test
    void emergencyWritesGoToTheConsolePortOrTheChosenOne() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.client.setConfig(8, new byte[] {'!', 0, 0, 0});
            h.client.setConfig(8, new byte[] {'?', 0, 0, 0});
            ConsoleHarness.await(() -> h.channels[0].toHostCount() == 2, "emergency bytes on port 0");
            assertArrayEquals("!?".getBytes(StandardCharsets.US_ASCII), h.channels[0].hostRead(10));
            assertEquals(2, h.device.counters(0).bytesToHost());
            h.device.setEmergencyPort(1);
            h.client.setConfig(8, new byte[] {'x', 0, 0, 0});
            ConsoleHarness.await(() -> h.channels[1].toHostCount() == 1, "emergency byte on port 1");
            assertArrayEquals(new byte[] {'x'}, h.channels[1].hostRead(10));
            assertEquals(0, h.client.getConfig(8, 4).buffer().getInt(12), "emerg_wr reads 0");
        }
    }

    @Test
    void statusZeroClosesOpenPortsAndARebootStartsOverWithHotAddedPorts() throws Exception {
        try (ConsoleHarness h = harness()) {
            h.probe(16);
            h.hotAdd(new PortSpec(-1, "hot", null, false));
            h.readControl(1);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            h.sendControl(2, ControlMessage.PORT_OPEN, 1);
            assertEquals("1 open", h.nextEvent());
            assertEquals("2 open", h.nextEvent());
            // Guest reset as QEMU 10.2 signals it with STATUS: SET_STATUS(0).
            h.client.requestOk(VhostUserClient.SET_PROTOCOL_FEATURES, VhostUserClient.u64(VhostUserClient.P_MQ
                | VhostUserClient.P_REPLY_ACK | VhostUserClient.P_CONFIG | P_STATUS));
            h.client.requestOk(VhostUserClient.SET_STATUS, VhostUserClient.u64(0));
            assertEquals("1 closed", h.nextEvent());
            assertEquals("2 closed", h.nextEvent());
            assertFalse(h.device.guestConnected(2));
            // Reboot: rings from scratch, the driver probes again and sees every port, the hot-added one too.
            h.resetDevice();
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1), PORT_ADD(2,1)]", h.probe(16).toString());
            h.barrier();
            assertTrue(h.events.isEmpty(), "unexpected events " + h.events);
        }
    }
}
