package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.awaitility.Awaitility;
import org.vsbridge.vhost.server.VhostUserServer;
import org.vsbridge.vhost.testing.DriverRing;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.TestPackedRing;
import org.vsbridge.vhost.testing.TestRing;
import org.vsbridge.vhost.testing.VhostUserClient;

/**
 * A {@link ConsoleDevice} served by the real engine over a real Unix socket, with the test frontend playing
 * QEMU (negotiation, memfd memory, eventfds) and this class playing the Linux virtio_console driver: control
 * messages on queues 2/3, one PAGE_SIZE buffer per control message, data on the port queues.
 */
final class ConsoleHarness implements AutoCloseable {

    static final long F_MULTIPORT = 1L << 1;
    static final long LINUX_FEATURES = VhostUserClient.F_VERSION_1 | F_MULTIPORT | VhostUserClient.F_EVENT_IDX
        | VhostUserClient.F_INDIRECT_DESC;
    static final int RING_SIZE = 64;
    static final int PAGE = 4096;
    /** Only a guard against a hang, never a measurement. */
    static final long TIMEOUT_MS = 30_000;
    /** Linux's DEVICE_READY id. */
    static final int NO_ID = 0xFFFFFFFF;

    /** A control message as the driver reads it from a control receive buffer. */
    record Msg(int id, int event, int value, byte[] payload, int usedLength) {
        @Override
        public String toString() {
            return ControlMessage.eventName(event) + "(" + id + "," + value + ")"
                + (payload.length > 0 ? "+" + payload.length + "B" : "");
        }

        String name() {
            return new String(payload, StandardCharsets.UTF_8);
        }
    }

    final TestGuestMemory mem;
    final ConsoleDevice device;
    final VhostUserServer server;
    VhostUserClient client;
    /** The split rings, for tests that look at used indexes; null in a packed harness. */
    TestRing[] rings;
    /** The rings as the harness drives them, split or packed. */
    private DriverRing[] driverRings;
    private final boolean packed;
    final TestChannel[] channels;
    /** "nr open" / "nr closed", in the order the device reported them. */
    final BlockingQueue<String> events = new LinkedBlockingQueue<>();
    long acked;
    private final long wanted;
    private final int channelCapacity;
    private final Path socket;
    private final List<Map<Integer, long[]>> buffers = new ArrayList<>();
    private final List<ArrayDeque<Long>> pools = new ArrayList<>();

    ConsoleHarness(final Path dir, final int maxPorts, final List<PortSpec> ports, final int channelCapacity,
                   final long wanted) throws IOException {
        this(dir, maxPorts, ports, channelCapacity, wanted, QueueLayout.queueCount(maxPorts), false);
    }

    /** {@code ringCount}: how many queues the "driver" sets up (2 without MULTIPORT). */
    ConsoleHarness(final Path dir, final int maxPorts, final List<PortSpec> ports, final int channelCapacity,
                   final long wanted, final int ringCount) throws IOException {
        this(dir, maxPorts, ports, channelCapacity, wanted, ringCount, false);
    }

    /** {@code packed}: the device offers VIRTIO_F_RING_PACKED and the "driver" acks it (with {@code wanted}) and
     *  uses packed rings. */
    ConsoleHarness(final Path dir, final int maxPorts, final List<PortSpec> ports, final int channelCapacity,
                   final long wanted, final int ringCount, final boolean packed) throws IOException {
        this.packed = packed;
        mem = new TestGuestMemory(64L << 20);
        channels = new TestChannel[maxPorts];
        device = new ConsoleDevice("console-test", maxPorts, ports, nr -> {
            channels[nr] = new TestChannel(channelCapacity);
            return channels[nr];
        }, (port, open) -> events.add(port.nr() + (open ? " open" : " closed")));
        device.setPackedRing(packed);
        server = new VhostUserServer("console-test", dir.resolve("console.sock"), device);
        server.start();
        this.socket = dir.resolve("console.sock");
        this.wanted = packed ? wanted | VhostUserClient.F_RING_PACKED : wanted;
        this.channelCapacity = channelCapacity;
        connect(ringCount);
    }

    private void connect(final int ringCount) throws IOException {
        client = VhostUserClient.connect(socket);
        newRings(ringCount);
        acked = client.negotiateLikeQemu(mem, wanted, device.queueCount(), driverRings);
    }

    private void newRings(final int ringCount) throws IOException {
        driverRings = new DriverRing[ringCount];
        rings = packed ? null : new TestRing[ringCount];
        buffers.clear();
        pools.clear();
        for (int i = 0; i < ringCount; i++) {
            if (packed) {
                driverRings[i] = new TestPackedRing(mem, i, RING_SIZE);
            } else {
                rings[i] = new TestRing(mem, i, RING_SIZE);
                driverRings[i] = rings[i];
            }
            buffers.add(new HashMap<>());
            pools.add(new ArrayDeque<>());
        }
    }

    /** Hot-add a port with a fresh test channel (QMP device_add). */
    PortSpec hotAdd(final PortSpec requested) {
        return device.addPort(requested, spec -> {
            channels[spec.nr()] = new TestChannel(channelCapacity);
            return channels[spec.nr()];
        });
    }

    /** RESET_DEVICE on the same connection, then as after a reboot: a fresh SET_MEM_TABLE and the rings set up
     *  again from scratch (fresh rings). */
    void resetDevice() throws IOException {
        client.requestOk(VhostUserClient.RESET_DEVICE, new byte[0]);
        if (client.setMemTable(mem) != 0) {
            throw new IOException("SET_MEM_TABLE after reset refused");
        }
        for (final DriverRing ring : driverRings) {
            ring.close();
        }
        client.requestOk(VhostUserClient.SET_FEATURES, VhostUserClient.u64(acked));
        newRings(driverRings.length);
        for (final DriverRing ring : driverRings) {
            ring.useEventIdx((acked & VhostUserClient.F_EVENT_IDX) != 0);
            client.setUpRing(mem, ring);
        }
        for (int i = 0; i < device.queueCount(); i++) {
            client.requestOk(VhostUserClient.SET_VRING_ENABLE, VhostUserClient.state(i, 1));
        }
    }

    /** The frontend disconnects and a new one connects to the same server and device (fresh rings). */
    void reconnect() throws IOException {
        client.close();
        for (final DriverRing ring : driverRings) {
            ring.close();
        }
        connect(driverRings.length);
    }

    @Override
    public void close() throws IOException {
        client.close();
        server.close();
        for (final DriverRing ring : driverRings) {
            ring.close();
        }
        mem.close();
    }

    // ------------------------------------------------------------------ guest buffers

    private long page(final int queue) {
        final Long free = pools.get(queue).poll();
        return free != null ? free : mem.alloc(PAGE, 64);
    }

    /** Post {@code count} PAGE_SIZE device-writable buffers on {@code queue} and kick as Linux would. */
    void postWritable(final int queue, final int count) {
        final DriverRing ring = driverRings[queue];
        final int old = ring.availIdx();
        for (int i = 0; i < count; i++) {
            final long gpa = page(queue);
            final int head = ring.post(TestRing.Buffer.writable(gpa, PAGE));
            buffers.get(queue).put(head, new long[] {gpa, PAGE});
        }
        ring.kickIfNeeded(old);
    }

    /** Post {@code data} (at most one page) as a device-readable chain of two descriptors, and kick. */
    int postReadable(final int queue, final byte[] data, final int offset, final int length, final boolean kick) {
        if (length > PAGE) {
            throw new IllegalArgumentException("one page per chain");
        }
        final DriverRing ring = driverRings[queue];
        final int old = ring.availIdx();
        final long gpa = page(queue);
        mem.write(gpa, data, offset, length);
        final int first = length / 3;
        final int head = first == 0
            ? ring.post(TestRing.Buffer.readable(gpa, length))
            : ring.post(TestRing.Buffer.readable(gpa, first), TestRing.Buffer.readable(gpa + first, length - first));
        buffers.get(queue).put(head, new long[] {gpa, length});
        if (kick) {
            ring.kickIfNeeded(old);
        }
        return head;
    }

    /** Used entries of {@code queue} since the last look, with the bytes the device wrote into each. */
    List<byte[]> collect(final int queue) {
        final List<byte[]> out = new ArrayList<>();
        for (final TestRing.Used used : driverRings[queue].collectUsed()) {
            final long[] buffer = buffers.get(queue).remove(used.id());
            if (buffer == null) {
                throw new AssertionError("queue " + queue + ": device used id " + used.id() + " that is not in flight");
            }
            if (used.len() < 0 || used.len() > buffer[1]) {
                throw new AssertionError("queue " + queue + ": used length " + used.len() + " for a buffer of "
                    + buffer[1]);
            }
            out.add(QueueLayout.isRx(queue) ? mem.read(buffer[0], used.len()) : new byte[used.len()]);
            pools.get(queue).add(buffer[0]);
        }
        return out;
    }

    int inFlight(final int queue) {
        return buffers.get(queue).size();
    }

    // ------------------------------------------------------------------ control, as the Linux driver

    /** Send one control message and spin until the device used it, as __send_control_msg does. */
    void sendControl(final int id, final int event, final int value) throws IOException {
        final byte[] msg = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN)
            .putInt(id).putShort((short) event).putShort((short) value).array();
        final DriverRing ring = driverRings[QueueLayout.CONTROL_TX];
        postReadable(QueueLayout.CONTROL_TX, msg, 0, msg.length, true);
        assertTrue(ring.awaitPostedUsed(TIMEOUT_MS),
            "device did not use control message " + ControlMessage.eventName(event) + "(" + id + "," + value + ")");
        for (final byte[] used : collect(QueueLayout.CONTROL_TX)) {
            assertEquals(0, used.length, "control transmit buffers are used with length 0");
        }
    }

    /**
     * Two round trips through the device worker: a PORT_OPEN for a port that does not exist is used (and
     * logged) by the worker. The first is handled in some worker iteration k whose doWork (host events posted
     * before) may still follow; the second can only be handled in a later iteration, so once it is used,
     * every kick and host event posted before this call has been processed.
     */
    void barrier() throws IOException {
        sendControl(device.maxPorts() + 100, ControlMessage.PORT_OPEN, 0);
        sendControl(device.maxPorts() + 100, ControlMessage.PORT_OPEN, 0);
    }

    /** Wait for {@code count} control messages on the control receiveq, one per buffer. */
    List<Msg> readControl(final int count) throws IOException {
        final List<Msg> out = new ArrayList<>();
        final DriverRing ring = driverRings[QueueLayout.CONTROL_RX];
        Awaitility.await().atMost(Duration.ofMillis(TIMEOUT_MS)).pollInSameThread().pollInterval(Duration.ofMillis(1))
            .untilAsserted(() -> {
                for (final byte[] bytes : collect(QueueLayout.CONTROL_RX)) {
                    assertTrue(bytes.length >= 8, "control message of " + bytes.length + " bytes");
                    final ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
                    out.add(new Msg(b.getInt(0), b.getShort(4) & 0xFFFF, b.getShort(6) & 0xFFFF,
                        Arrays.copyOfRange(bytes, 8, bytes.length), bytes.length));
                }
                if (out.size() < count) {
                    ring.awaitCall(10); // the device's call, or a re-check (calls can be suppressed)
                }
                assertTrue(out.size() >= count, "got only " + out + ", wanted " + count + " messages");
            });
        assertEquals(count, out.size(), "more control messages than expected: " + out);
        return out;
    }

    /** Linux probe: control buffers, DEVICE_READY, PORT_ADD for each port; returns the PORT_ADD messages. */
    List<Msg> probe(final int controlBuffers) throws IOException {
        postWritable(QueueLayout.CONTROL_RX, controlBuffers);
        sendControl(NO_ID, ControlMessage.DEVICE_READY, 1);
        return readControl(device.ports().size());
    }

    // ------------------------------------------------------------------ data

    /** Guest writes {@code data} to port {@code nr} in chains of at most {@code chunk} bytes (no waiting). */
    int write(final int nr, final byte[] data, final int chunk) {
        final int queue = QueueLayout.txQueue(nr);
        int chains = 0;
        for (int at = 0; at < data.length; at += chunk) {
            postReadable(queue, data, at, Math.min(chunk, data.length - at), true);
            chains++;
        }
        return chains;
    }

    /** Wait until the device used every chain in flight on {@code queue}; returns the used entries. */
    List<byte[]> awaitAllUsed(final int queue) throws IOException {
        final DriverRing ring = driverRings[queue];
        assertTrue(ring.awaitPostedUsed(TIMEOUT_MS), "queue " + queue + " not fully used: "
            + inFlight(queue) + " chains in flight");
        return collect(queue);
    }

    static void await(final BooleanSupplier condition, final String what) throws InterruptedException {
        Awaitility.await(what).atMost(Duration.ofMillis(TIMEOUT_MS)).pollInterval(Duration.ofMillis(1))
            .until(condition::getAsBoolean);
    }

    String nextEvent() throws InterruptedException {
        final String event = events.poll(TIMEOUT_MS, TimeUnit.MILLISECONDS);
        if (event == null) {
            throw new AssertionError("no guestConnected event");
        }
        return event;
    }
}
