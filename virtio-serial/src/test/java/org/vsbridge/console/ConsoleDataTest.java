package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.vhost.testing.VhostUserClient;

/** Port data both ways end to end, with backpressure, drops and their counters. */
class ConsoleDataTest {

    private static final List<PortSpec> PORTS = List.of(
        new PortSpec(0, "con0", null, true),
        new PortSpec(1, "ch1", "org.example.1", false),
        new PortSpec(2, "ch2", null, false));

    @TempDir
    Path dir;

    private static byte[] random(final int length, final long seed) {
        final byte[] data = new byte[length];
        new Random(seed).nextBytes(data);
        return data;
    }

    private static long crc(final byte[] data) {
        final CRC32 crc = new CRC32();
        crc.update(data);
        return crc.getValue();
    }

    /** Bring up like Linux: probe, every port ready with receive buffers posted, host side of port 1 open. */
    private static void bringUp(final ConsoleHarness h) throws Exception {
        h.probe(32);
        for (final PortSpec port : h.device.ports()) {
            h.sendControl(port.nr(), ControlMessage.PORT_READY, 1);
        }
        h.barrier();
        h.collect(QueueLayout.CONTROL_RX);
    }

    private static long features(final boolean eventIdx) {
        return eventIdx ? ConsoleHarness.LINUX_FEATURES : ConsoleHarness.LINUX_FEATURES & ~VhostUserClient.F_EVENT_IDX;
    }

    @ParameterizedTest(name = "event_idx={0}")
    @ValueSource(booleans = {true, false})
    void bytesBothWaysKeepTheirChecksum(final boolean eventIdx) throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 4 << 20, features(eventIdx))) {
            bytesBothWays(h);
        }
    }

    @ParameterizedTest(name = "packed, event_idx={0}")
    @ValueSource(booleans = {true, false})
    void bytesBothWaysOverPackedRings(final boolean eventIdx) throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 4 << 20, features(eventIdx),
            QueueLayout.queueCount(4), true)) {
            assertEquals(VhostUserClient.F_RING_PACKED, h.acked & VhostUserClient.F_RING_PACKED, "packed acked");
            bytesBothWays(h);
        }
    }

    /** Port 1 open, 1 MiB guest to host in chains of odd sizes, 1 MiB host to guest in pages. */
    private static void bytesBothWays(final ConsoleHarness h) throws Exception {
        h.device.hostConnected(1, true);
        bringUp(h);
        h.sendControl(1, ControlMessage.PORT_OPEN, 1);
        assertEquals("1 open", h.nextEvent());
        final int tx = QueueLayout.txQueue(1);
        final int rx = QueueLayout.rxQueue(1);

        // Guest to host: 1 MiB in chains of odd sizes (two descriptors each), at most a ring's worth in flight.
        final byte[] out = random(1 << 20, 1);
        int at = 0;
        int chunk = 1;
        while (at < out.length) {
            while (h.inFlight(tx) < ConsoleHarness.RING_SIZE / 2 && at < out.length) {
                final int n = Math.min(chunk, out.length - at);
                h.postReadable(tx, out, at, n, true);
                at += n;
                chunk = chunk * 7 % ConsoleHarness.PAGE + 1;
            }
            for (final byte[] used : h.awaitAllUsed(tx)) {
                assertEquals(0, used.length, "transmit chains are used with length 0");
            }
        }
        final TestChannel channel = h.channels[1];
        assertEquals(out.length, channel.toHostCount());
        assertEquals(crc(out), crc(channel.hostRead(out.length)));
        assertTrue(channel.flushes() > 0, "flushToHost was called");

        // Host to guest: 1 MiB written by the host at once; the guest posts page buffers a few at a time.
        final byte[] in = random(1 << 20, 2);
        channel.hostWrite(in);
        h.device.hostDataAvailable(1);
        final ByteArrayOutputStream received = new ByteArrayOutputStream();
        int chains = 0;
        while (received.size() < in.length) {
            h.postWritable(rx, 8);
            for (final byte[] used : h.awaitAllUsed(rx)) {
                received.write(used);
                chains++;
            }
        }
        assertEquals(in.length, received.size());
        assertEquals(crc(in), crc(received.toByteArray()));
        // One used entry per chain with its total length: full pages.
        assertEquals(in.length / ConsoleHarness.PAGE, chains);

        final PortCounters counters = h.device.counters(1);
        assertEquals(out.length, counters.bytesToHost());
        assertEquals(in.length, counters.bytesFromHost());
        assertEquals(0, counters.bytesDropped());
    }

    @Test
    void steadyStateDataPathDoesNotAllocateOnTheWorker() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 64 << 20, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(1, true);
            bringUp(h);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            final Thread worker = Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("vsb-worker-console-test")).findFirst()
                .orElseThrow(() -> new AssertionError("no worker thread"));
            final com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
            final byte[] page = random(ConsoleHarness.PAGE, 10);
            final int tx = QueueLayout.txQueue(1);
            final int rx = QueueLayout.rxQueue(1);
            long before = 0;
            for (int round = 0; round < 60; round++) {
                if (round == 40) {
                    // Warm: from here on the worker must not allocate per chain or per message.
                    before = threads.getThreadAllocatedBytes(worker.getId());
                }
                for (int i = 0; i < 16; i++) {
                    h.postReadable(tx, page, 0, page.length, true);
                }
                h.awaitAllUsed(tx);
                h.channels[1].hostWrite(h.channels[1].hostRead(16 * ConsoleHarness.PAGE));
                h.device.hostDataAvailable(1);
                h.postWritable(rx, 16);
                assertEquals(16, h.awaitAllUsed(rx).size());
            }
            final long allocated = threads.getThreadAllocatedBytes(worker.getId()) - before;
            // 20 rounds of 32 chains and a few dozen kicks, host events and control messages: a per-chain
            // allocation of even one small object would exceed this.
            assertTrue(allocated < 16 * 1024, "worker allocated " + allocated + " bytes in steady state");
        }
    }

    @Test
    void misbehavingGuestBuffersAreReturnedEmptyAndTheDeviceGoesOn() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(1, true);
            // A control receive buffer too small for a header: used empty, the message waits for a good one.
            final int tiny = h.rings[QueueLayout.CONTROL_RX].post(
                org.vsbridge.vhost.testing.TestRing.Buffer.writable(h.mem.alloc(64, 8), 4));
            h.rings[QueueLayout.CONTROL_RX].kick();
            h.sendControl(ConsoleHarness.NO_ID, ControlMessage.DEVICE_READY, 1);
            assertTrue(h.rings[QueueLayout.CONTROL_RX].awaitUsedIdx(1, ConsoleHarness.TIMEOUT_MS));
            final List<org.vsbridge.vhost.testing.TestRing.Used> used =
                h.rings[QueueLayout.CONTROL_RX].collectUsed();
            assertEquals(List.of(new org.vsbridge.vhost.testing.TestRing.Used(tiny, 0)), used);
            h.postWritable(QueueLayout.CONTROL_RX, 8);
            assertEquals("[PORT_ADD(0,1), PORT_ADD(1,1), PORT_ADD(2,1)]", h.readControl(3).toString());
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            // A receive "buffer" the device may not write (no WRITE flag): used empty, then real data flows.
            final int rx = QueueLayout.rxQueue(1);
            final int bad = h.rings[rx].post(
                org.vsbridge.vhost.testing.TestRing.Buffer.readable(h.mem.alloc(64, 8), 64));
            h.postWritable(rx, 1);
            h.channels[1].hostWrite("data".getBytes());
            h.device.hostDataAvailable(1);
            assertTrue(h.rings[rx].awaitUsedIdx(2, ConsoleHarness.TIMEOUT_MS));
            final List<org.vsbridge.vhost.testing.TestRing.Used> rxUsed = h.rings[rx].collectUsed();
            assertEquals(new org.vsbridge.vhost.testing.TestRing.Used(bad, 0), rxUsed.get(0));
            assertEquals(4, rxUsed.get(1).len());
            assertEquals(4, h.device.counters(1).bytesFromHost());
        }
    }

    @Test
    void partialBufferIsUsedWithTheBytesWrittenAndNothingGoesToAClosedPort() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(2, true);
            bringUp(h);
            final int rx = QueueLayout.rxQueue(2);
            h.postWritable(rx, 4);
            final byte[] hello = "hello from the host".getBytes();
            h.channels[2].hostWrite(hello);
            h.device.hostDataAvailable(2);
            // The guest has not opened port 2: Linux would discard the data, so the device does not send it.
            h.barrier();
            assertEquals(0, h.rings[rx].usedIdx());
            assertEquals(hello.length, h.channels[2].hostPending());
            h.sendControl(2, ControlMessage.PORT_OPEN, 1);
            assertTrue(h.rings[rx].awaitUsedIdx(1, ConsoleHarness.TIMEOUT_MS));
            final List<byte[]> used = h.collect(rx);
            assertEquals(1, used.size());
            assertArrayEquals(hello, used.get(0));
            // Buffers but no data: nothing is popped.
            h.barrier();
            assertEquals(3, h.inFlight(rx));
            assertEquals(hello.length, h.device.counters(2).bytesFromHost());
        }
    }

    @Test
    void hostDataWaitsForReceiveBuffers() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            bringUp(h);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            final int rx = QueueLayout.rxQueue(1);
            final byte[] data = random(3 * ConsoleHarness.PAGE + 100, 3);
            h.channels[1].hostWrite(data);
            h.device.hostDataAvailable(1);
            h.postWritable(rx, 2);
            final ByteArrayOutputStream got = new ByteArrayOutputStream();
            for (final byte[] b : h.awaitAllUsed(rx)) {
                got.write(b);
            }
            assertEquals(2 * ConsoleHarness.PAGE, got.size());
            assertEquals(ConsoleHarness.PAGE + 100, h.channels[1].hostPending(), "rest stays with the host");
            // The guest posts more and kicks: the device continues without another host event.
            h.postWritable(rx, 3);
            assertTrue(h.rings[rx].awaitUsedIdx(4, ConsoleHarness.TIMEOUT_MS));
            h.barrier();
            final List<byte[]> last = h.collect(rx);
            assertEquals(2, last.size());
            assertEquals(100, last.get(1).length, "the last buffer is used with the bytes written");
            for (final byte[] b : last) {
                got.write(b);
            }
            assertArrayEquals(data, got.toByteArray());
            assertEquals(1, h.inFlight(rx), "the spare buffer is not popped without data");
        }
    }

    @Test
    void fullHostSideHoldsTheChainUntilThereIsSpace() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1000, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(1, true);
            bringUp(h);
            h.sendControl(1, ControlMessage.PORT_OPEN, 1);
            final int tx = QueueLayout.txQueue(1);
            final TestChannel channel = h.channels[1];
            final byte[] data = random(3000, 4);
            h.write(1, data, 3000);
            final ByteArrayOutputStream host = new ByteArrayOutputStream();
            for (int round = 1; round <= 3; round++) {
                ConsoleHarness.await(() -> channel.toHostCount() == 1000, "the device to fill the channel");
                h.barrier();
                if (round < 3) {
                    assertEquals(0, h.rings[tx].usedIdx(), "chain held, not completed, in round " + round);
                }
                host.write(channel.hostRead(1000));
                h.device.hostSpaceAvailable(1);
            }
            assertTrue(h.rings[tx].awaitUsedIdx(1, ConsoleHarness.TIMEOUT_MS));
            assertEquals(1, h.collect(tx).size());
            assertArrayEquals(data, host.toByteArray(), "nothing lost, nothing repeated, in order");
            assertEquals(3000, h.device.counters(1).bytesToHost());
            assertEquals(0, h.device.counters(1).bytesDropped());
        }
    }

    @Test
    void channelThatTakesNothingHoldsThenHostCloseDiscardsLikeQemu() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 0, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(1, true);
            bringUp(h);
            final int tx = QueueLayout.txQueue(1);
            h.write(1, random(500, 5), 500);
            h.write(1, random(700, 6), 700);
            h.barrier();
            assertEquals(0, h.rings[tx].usedIdx(), "a channel that takes nothing holds the first chain");
            assertEquals(2, h.inFlight(tx));
            h.device.hostSpaceAvailable(1);
            h.barrier();
            assertEquals(0, h.rings[tx].usedIdx(), "still nothing taken, still held");
            // The host side goes away: held output is discarded (counted), the rest dropped, the guest told.
            h.device.hostConnected(1, false);
            assertEquals(2, h.awaitAllUsed(tx).size());
            ConsoleHarness.await(() -> h.device.counters(1).bytesDropped() == 1200, "1200 bytes counted dropped");
            assertEquals(0, h.device.counters(1).bytesToHost());
            assertEquals("[PORT_OPEN(1,0)]", h.readControl(1).toString());
        }
    }

    @Test
    void genericPortWithoutHostSideDropsAndCounts() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, ConsoleHarness.LINUX_FEATURES)) {
            bringUp(h);
            h.sendControl(2, ControlMessage.PORT_OPEN, 1);
            final int tx = QueueLayout.txQueue(2);
            assertEquals(2, h.write(2, random(5000, 7), 4096));
            final List<byte[]> used = h.awaitAllUsed(tx);
            assertEquals(2, used.size());
            ConsoleHarness.await(() -> h.device.counters(2).bytesDropped() == 5000, "5000 bytes counted dropped");
            assertEquals(0, h.channels[2].toHostCount());
            assertEquals(0, h.device.counters(2).bytesToHost());
            // Once the host side connects, output flows again.
            h.device.hostConnected(2, true);
            h.barrier();
            final byte[] after = "after".getBytes();
            h.write(2, after, 4096);
            h.awaitAllUsed(tx);
            ConsoleHarness.await(() -> h.channels[2].toHostCount() == after.length, "output after connect");
            assertArrayEquals(after, h.channels[2].hostRead(100));
            assertEquals(5000, h.device.counters(2).bytesDropped());
        }
    }

    @Test
    void consoleOutputIsUsedAtOnceEvenWhenTheHostSideIsFull() throws Exception {
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 100, ConsoleHarness.LINUX_FEATURES)) {
            h.device.hostConnected(0, true);
            bringUp(h);
            h.sendControl(0, ControlMessage.PORT_OPEN, 1);
            final int tx = QueueLayout.txQueue(0);
            final byte[] data = random(3000, 8);
            assertEquals(3, h.write(0, data, 1000));
            // hvc spins until each buffer is used: all three come back although the channel holds only 100.
            assertEquals(3, h.awaitAllUsed(tx).size());
            ConsoleHarness.await(() -> h.device.counters(0).bytesDropped() == 2900, "2900 bytes counted dropped");
            assertEquals(100, h.device.counters(0).bytesToHost());
            final byte[] first = new byte[100];
            System.arraycopy(data, 0, first, 0, 100);
            assertArrayEquals(first, h.channels[0].hostRead(1000));
        }
    }

    @Test
    void withoutMultiportPortZeroIsAnOpenConsoleAndThereIsNoControlTraffic() throws Exception {
        final long features = ConsoleHarness.LINUX_FEATURES & ~ConsoleHarness.F_MULTIPORT;
        try (ConsoleHarness h = new ConsoleHarness(dir, 4, PORTS, 1 << 16, features, 2)) {
            assertEquals(0, h.acked & ConsoleHarness.F_MULTIPORT);
            assertEquals("0 open", h.nextEvent());
            assertTrue(h.device.guestConnected(0));
            h.device.hostConnected(0, true);
            final byte[] data = random(5000, 9);
            h.channels[0].hostWrite(data);
            h.device.hostDataAvailable(0);
            h.postWritable(QueueLayout.PORT0_RX, 2);
            final ByteArrayOutputStream got = new ByteArrayOutputStream();
            for (final byte[] b : h.awaitAllUsed(QueueLayout.PORT0_RX)) {
                got.write(b);
            }
            assertArrayEquals(data, got.toByteArray());
            final byte[] out = "console output".getBytes();
            h.write(0, out, 4096);
            h.awaitAllUsed(QueueLayout.PORT0_TX);
            ConsoleHarness.await(() -> h.channels[0].toHostCount() == out.length, "console output");
            assertArrayEquals(out, h.channels[0].hostRead(100));
        }
    }
}
