package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.console.ConsoleHarness.Msg;

/**
 * The largest device the spec allows: 511 ports on 1024 queues (kick and call fds for queues above 255 use the
 * bridge's high-index bits), every port added, opened and carrying distinct data both ways.
 */
class ConsoleManyPortsTest {

    private static final int PORTS = QueueLayout.MAX_PORTS;
    private static final int BYTES = 16 * 1024;

    @TempDir
    Path dir;

    private static byte[] data(final int nr, final int direction) {
        final byte[] b = new byte[BYTES];
        new Random(nr * 2L + direction).nextBytes(b);
        return b;
    }

    @Test
    void fiveHundredElevenPortsAllCarryDataBothWays() throws Exception {
        final List<PortSpec> ports = new ArrayList<>();
        ports.add(new PortSpec(0, "con0", null, true));
        for (int nr = 1; nr < PORTS; nr++) {
            ports.add(new PortSpec(nr, "p" + nr, "org.example." + nr, false));
        }
        try (ConsoleHarness h = new ConsoleHarness(dir, PORTS, ports, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            assertEquals(1024, h.device.queueCount());
            assertEquals(1024, h.client.getQueueNum());
            // DEVICE_READY: 511 PORT_ADDs through a 64-entry control receiveq, refilled as Linux does.
            h.postWritable(QueueLayout.CONTROL_RX, 64);
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 1);
            int expected = 0;
            while (expected < PORTS) {
                final int batch = Math.min(64, PORTS - expected);
                for (final Msg m : h.readControl(batch)) {
                    assertEquals("PORT_ADD(" + expected + ",1)", m.toString());
                    expected++;
                }
                h.postWritable(QueueLayout.CONTROL_RX, batch);
            }
            for (int nr = 0; nr < PORTS; nr++) {
                h.device.hostConnected(nr, true);
                h.sendControl(nr, ControlMessage.PORT_READY, 1);
                final List<Msg> answer = h.readControl(2);
                assertEquals(nr == 0 ? "CONSOLE_PORT(0,1)" : "PORT_NAME(" + nr + ",1)+" + (13 + digits(nr)) + "B",
                    answer.get(0).toString());
                assertEquals("PORT_OPEN(" + nr + ",1)", answer.get(1).toString());
                h.postWritable(QueueLayout.CONTROL_RX, 2);
                h.sendControl(nr, ControlMessage.PORT_OPEN, 1);
                assertEquals(nr + " open", h.nextEvent());
            }
            // Every port at once: guest writes, host writes, guest posts receive buffers.
            for (int nr = 0; nr < PORTS; nr++) {
                h.write(nr, data(nr, 0), 4096);
                h.channels[nr].hostWrite(data(nr, 1));
                h.device.hostDataAvailable(nr);
                h.postWritable(QueueLayout.rxQueue(nr), BYTES / ConsoleHarness.PAGE);
            }
            for (int nr = 0; nr < PORTS; nr++) {
                h.awaitAllUsed(QueueLayout.txQueue(nr));
                final int port = nr;
                ConsoleHarness.await(() -> h.channels[port].toHostCount() == BYTES, "guest output of port " + nr);
                assertArrayEquals(data(nr, 0), h.channels[nr].hostRead(BYTES), "guest to host, port " + nr);
                final ByteArrayOutputStream got = new ByteArrayOutputStream();
                for (final byte[] b : h.awaitAllUsed(QueueLayout.rxQueue(nr))) {
                    got.write(b);
                }
                assertArrayEquals(data(nr, 1), got.toByteArray(), "host to guest, port " + nr);
                assertEquals(BYTES, h.device.counters(nr).bytesToHost());
                assertEquals(BYTES, h.device.counters(nr).bytesFromHost());
            }
        }
    }

    private static int digits(final int n) {
        return Integer.toString(n).length();
    }
}
