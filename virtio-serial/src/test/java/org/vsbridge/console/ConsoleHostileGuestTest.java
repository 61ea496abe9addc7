package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.vhost.testing.LogCapture;

/**
 * Descriptors pointing the wrong way on the console's queues: writable buffers on a transmitq and readable-only
 * buffers on a receiveq. Each is logged once with its reason, returned empty, and the port keeps working.
 */
class ConsoleHostileGuestTest {

    private static final List<PortSpec> PORTS = List.of(
        new PortSpec(0, "con0", null, true),
        new PortSpec(1, "ch1", "org.example.1", false));

    @TempDir
    Path dir;

    @Test
    void wrongWayDescriptorsAreLoggedOnceAndThePortGoesOn() throws Exception {
        try (LogCapture log = LogCapture.of("org.vsbridge.console");
             ConsoleHarness h = new ConsoleHarness(dir, 2, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(1, true);
            h.probe(8);
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            final int tx = QueueLayout.txQueue(1);
            final int rx = QueueLayout.rxQueue(1);

            // Transmitq: device-writable buffers where the device may only read.
            h.postWritable(tx, 3);
            for (final byte[] used : h.awaitAllUsed(tx)) {
                assertEquals(0, used.length);
            }
            log.await("WARNING", "transmit buffer", "writable bytes", "only reads a transmitq");
            assertEquals(1, log.lines().stream().filter(l -> l.contains("only reads a transmitq")).count(),
                "logged once per port, not per buffer");

            // Receiveq: a device-readable buffer where the device must write.
            h.postReadable(rx, new byte[16], 0, 16, true);
            h.channels[1].hostWrite("xy".getBytes());
            h.device.hostDataAvailable(1);
            log.await("WARNING", "receive buffer", "has no writable descriptor");

            h.awaitAllUsed(rx);
            // The port still moves data both ways.
            h.postReadable(tx, "ok".getBytes(), 0, 2, true);
            h.awaitAllUsed(tx);
            assertEquals(2, h.channels[1].toHostCount());
            // The host bytes that met the bad receive buffer were not consumed by it: they come with the next good one.
            h.postWritable(rx, 1);
            assertArrayEquals("xy".getBytes(), h.awaitAllUsed(rx).get(0));
        }
    }
}
