package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What the device answers on the control thread, and what it refuses at construction. */
class ConsoleDeviceConfigTest {

    private static final PortChannel NO_CHANNEL = new PortChannel() {
        @Override
        public int writeToHost(final long address, final int length) {
            return 0;
        }

        @Override
        public void flushToHost() {
        }

        @Override
        public int readFromHost(final long address, final int length) {
            return 0;
        }

        @Override
        public boolean hasDataFromHost() {
            return false;
        }
    };

    private static ConsoleDevice device(final int maxPorts, final List<PortSpec> ports) {
        return new ConsoleDevice("test", maxPorts, ports, nr -> NO_CHANNEL, (port, open) -> { });
    }

    @Test
    void offersExactlyTheSixFeatures() {
        final ConsoleDevice device = device(4, List.of(new PortSpec(0, "con0", null, true)));
        assertEquals((1L << 32) | 1L | (1L << 1) | (1L << 2) | (1L << 29) | (1L << 28), device.deviceFeatures());
        assertEquals(0, device.deviceFeatures() & (1L << 34), "no packed ring");
        assertEquals(0, device.deviceFeatures() & (1L << 30), "no vhost-user protocol feature bit");
        assertEquals(3, device.deviceId());
        assertEquals(32768, device.maxQueueSize());
        assertEquals(10, device.queueCount());
    }

    @Test
    void offersThePackedRingOnlyWhenAskedTo() {
        final ConsoleDevice device = device(4, List.of(new PortSpec(0, "con0", null, true)));
        device.setPackedRing(true);
        assertEquals(ConsoleDevice.FEATURES | (1L << 34), device.deviceFeatures());
        device.setPackedRing(false);
        assertEquals(ConsoleDevice.FEATURES, device.deviceFeatures());
    }

    @Test
    void configIsTwelveLittleEndianBytes() {
        final ConsoleDevice device = device(0x1FF, List.of());
        assertEquals(12, device.configSize());
        final byte[] all = new byte[12];
        device.readConfig(0, all, 0, 12);
        assertArrayEquals(new byte[] {0, 0, 0, 0, (byte) 0xFF, 1, 0, 0, 0, 0, 0, 0}, all);
        final byte[] part = new byte[6];
        device.readConfig(4, part, 2, 4);
        assertArrayEquals(new byte[] {0, 0, (byte) 0xFF, 1, 0, 0}, part);
        assertThrows(IndexOutOfBoundsException.class, () -> device.readConfig(10, new byte[4], 0, 4));
    }

    @Test
    void configWritesChangeNothingAndEmergencyWritesGoToTheSink() {
        final ConsoleDevice device = device(2, List.of(new PortSpec(0, "con0", null, true)));
        final StringBuilder emergency = new StringBuilder();
        device.setEmergencyOutput(b -> emergency.append((char) b));
        device.writeConfig(8, new byte[] {'x', 0, 0, 0}, 0, 4);
        device.writeConfig(8, new byte[] {'y'}, 0, 1);
        device.writeConfig(0, new byte[] {'z', 0}, 0, 2); // cols: read-only
        final byte[] all = new byte[12];
        device.readConfig(0, all, 0, 12);
        assertArrayEquals(ConsoleConfig.encode(2), all, "emerg_wr reads 0, cols unchanged");
        assertEquals("xy", emergency.toString());
    }

    @Test
    void portZeroSizeIsInConfigSpaceColsFirst() {
        final ConsoleDevice device = device(2, List.of(new PortSpec(0, "con0", null, true),
            new PortSpec(1, "p1", null, false)));
        device.resize(0, 80, 25);
        final byte[] all = new byte[12];
        device.readConfig(0, all, 0, 12);
        assertArrayEquals(new byte[] {80, 0, 25, 0, 2, 0, 0, 0, 0, 0, 0, 0}, all);
        assertArrayEquals(new int[] {80, 25}, device.size(0));
        assertThrows(IllegalArgumentException.class, () -> device.resize(1, 80, 25), "not a console");
        assertThrows(IllegalArgumentException.class, () -> device.resize(0, 70000, 25));
    }

    @Test
    void maxPortsIsBounded() {
        assertThrows(IllegalArgumentException.class, () -> device(0, List.of()));
        assertThrows(IllegalArgumentException.class, () -> device(512, List.of()));
        assertEquals(1024, device(511, List.of()).queueCount());
        assertEquals(4, device(1, List.of()).queueCount());
    }

    @Test
    void refusesBadPortLists() {
        final IllegalArgumentException outOfRange = assertThrows(IllegalArgumentException.class,
            () -> device(2, List.of(new PortSpec(2, "p", null, false))));
        assertTrue(outOfRange.getMessage().contains("out of range"), outOfRange.getMessage());
        assertThrows(IllegalArgumentException.class,
            () -> device(4, List.of(new PortSpec(1, "a", null, false), new PortSpec(1, "b", null, false))));
        final IllegalArgumentException port0 = assertThrows(IllegalArgumentException.class,
            () -> device(4, List.of(new PortSpec(0, "a", null, false))));
        assertTrue(port0.getMessage().contains("reserved"), port0.getMessage());
        assertThrows(IllegalArgumentException.class,
            () -> device(4, List.of(new PortSpec(1, "a", "same", false), new PortSpec(2, "b", "same", false))));
        assertThrows(IllegalArgumentException.class,
            () -> device(4, List.of(new PortSpec(1, "a", "n".repeat(1025), false))));
        assertThrows(IllegalArgumentException.class,
            () -> new ConsoleDevice("test", 4, List.of(new PortSpec(1, "a", null, false)), nr -> null,
                (port, open) -> { }));
    }

    @Test
    void asksForEachChannelOnceAndListsPortsInOrder() {
        final List<Integer> asked = new ArrayList<>();
        final ConsoleDevice device = new ConsoleDevice("test", 8,
            List.of(new PortSpec(5, "e", "org.example.5", false), new PortSpec(0, "c", null, true),
                new PortSpec(2, "b", null, false)),
            nr -> {
                asked.add(nr);
                return NO_CHANNEL;
            }, (port, open) -> { });
        assertEquals(List.of(0, 2, 5), asked);
        assertEquals(List.of(0, 2, 5), device.ports().stream().map(PortSpec::nr).toList());
        assertEquals(8, device.maxPorts());
        assertFalse(device.guestConnected(5));
        assertEquals(0, device.counters(2).bytesToHost());
        assertThrows(IllegalArgumentException.class, () -> device.counters(1));
        assertThrows(IllegalArgumentException.class, () -> device.hostConnected(8, true));
        assertThrows(UnsupportedOperationException.class, () -> device.ports().clear());
    }

    @Test
    void countersPublishWhatTheWorkerAdded() throws Exception {
        final PortCounters counters = new PortCounters();
        final Thread writer = new Thread(() -> {
            for (int i = 0; i < 100_000; i++) {
                counters.addToHost(3);
                counters.addFromHost(1);
            }
            counters.addDropped(42);
        });
        writer.start();
        long last = 0;
        while (writer.isAlive()) {
            final long now = counters.bytesToHost();
            assertTrue(now >= last, "counter went backwards");
            last = now;
        }
        writer.join();
        assertEquals(300_000, counters.bytesToHost());
        assertEquals(100_000, counters.bytesFromHost());
        assertEquals(42, counters.bytesDropped());
    }
}
