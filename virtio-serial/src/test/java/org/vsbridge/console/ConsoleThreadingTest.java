package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Who may call what: worker-only methods refuse other threads; the console size is read whole. */
class ConsoleThreadingTest {

    private static final List<PortSpec> PORTS = List.of(new PortSpec(0, "con0", null, true),
        new PortSpec(1, "p1", "org.test.1", false));

    @TempDir
    Path dir;

    @Test
    void workerOnlyMethodsRefuseOtherThreadsAndTheDeviceGoesOnServing() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 20, ConsoleHarness.LINUX_FEATURES)) {
            // The test thread is not the device's worker (the engine attached it on vsb-worker-console-test).
            final IllegalStateException kicked = assertThrows(IllegalStateException.class,
                () -> h.device.queueKicked(QueueLayout.txQueue(1)));
            assertTrue(kicked.getMessage().contains("queueKicked may only run on the worker thread"),
                kicked.getMessage());
            assertTrue(kicked.getMessage().contains("vsb-worker-console-test"), kicked.getMessage());
            assertThrows(IllegalStateException.class, h.device::doWork);
            assertThrows(IllegalStateException.class, h.device::reset);
            assertThrows(IllegalStateException.class, () -> h.device.watchHostInput(1, 0));
            assertThrows(IllegalStateException.class, () -> h.device.fdReady(2, 1));

            // Nothing of that ran: the device still serves port 1 on its worker.
            h.device.hostConnected(1, true);
            h.probe(32);
            h.sendControl(1, ControlMessage.PORT_READY, 1);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            assertEquals("1 open", h.nextEvent());
            final byte[] out = "after the refused calls".getBytes(StandardCharsets.US_ASCII);
            h.write(1, out, 8);
            h.awaitAllUsed(QueueLayout.txQueue(1));
            assertArrayEquals(out, h.channels[1].hostRead(out.length));
        }
    }

    @Test
    void anyThreadMayCallTheHostSideAndTheManagementApi() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 20, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostDataAvailable(1);
            h.device.hostSpaceAvailable(1);
            h.device.setOutputPolicy(1, OutputPolicy.HOLD);
            h.device.resize(0, 100, 40);
            assertEquals(new ConsoleSize(100, 40), h.device.consoleSize(0));
            assertEquals(OutputPolicy.HOLD, h.device.outputPolicy(1));
        }
    }

    @Test
    void theConsoleSizeIsOneValue() {
        final ConsoleDevice device = new ConsoleDevice("size", 2, PORTS, nr -> new TestChannel(16),
            (port, open) -> { });
        assertEquals(ConsoleSize.UNSET, device.consoleSize(0));
        device.resize(0, new ConsoleSize(132, 43));
        assertEquals(new ConsoleSize(132, 43), device.consoleSize(0));
        assertArrayEquals(new int[] {132, 43}, device.size(0));
        assertThrows(IllegalArgumentException.class, () -> new ConsoleSize(0x10000, 1));
        assertThrows(IllegalArgumentException.class, () -> new ConsoleSize(1, -1));
        assertEquals(new ConsoleSize(132, 43), device.consoleSize(0), "a refused size leaves the old one");
    }

    /**
     * A reader racing resizes sees columns and rows of one resize: the writer only ever sets square sizes. With the
     * two separate fields of before, a reader between the two stores saw e.g. 200x100 (it may take many tries to
     * hit that window, so this test can pass by luck without the record, never fail with it).
     */
    @Test
    void aReaderNeverSeesHalfAResize() throws Exception {
        final ConsoleDevice device = new ConsoleDevice("race", 2, PORTS, nr -> new TestChannel(16),
            (port, open) -> { });
        final AtomicBoolean stop = new AtomicBoolean();
        final AtomicReference<String> torn = new AtomicReference<>();
        final Thread reader = new Thread(() -> {
            while (!stop.get() && torn.get() == null) {
                final int[] size = device.size(0);
                if (size[0] != size[1]) {
                    torn.set(size[0] + "x" + size[1]);
                }
            }
        }, "size-reader");
        reader.start();
        try {
            for (int i = 0; i < 200_000 && torn.get() == null; i++) {
                final int n = (i & 1) == 0 ? 100 : 200;
                device.resize(0, n, n);
            }
        } finally {
            stop.set(true);
            reader.join();
        }
        assertEquals(null, torn.get(), "a reader saw a size no resize set");
        final byte[] config = new byte[4];
        device.readConfig(ConsoleConfig.COLS_OFFSET, config, 0, 4);
        final ConsoleSize last = device.consoleSize(0);
        assertEquals(last.cols(), (config[0] & 0xff) | (config[1] & 0xff) << 8, "config space cols");
        assertEquals(last.rows(), (config[2] & 0xff) | (config[3] & 0xff) << 8, "config space rows");
    }
}
