package org.vsbridge.console;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.function.IntFunction;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * A multiport virtio-console device (virtio spec, "Console Device"), behaving toward the guest like QEMU's
 * virtio-serial bus with the Linux {@code virtio_console} driver in mind.
 *
 * <p>Threading: the control methods ({@link #deviceFeatures()}, {@link #readConfig} ...) are immutable
 * answers; the queue callbacks run on the engine's worker, which owns every port's state. The host side
 * ({@link #hostConnected}, {@link #hostDataAvailable}, {@link #hostSpaceAvailable}) may call from any thread:
 * those calls only post bits into {@link HostEvents} and wake the worker.
 *
 * <p>Flow control: guest output that the host side cannot take is held in its transmitq (the chain is not
 * consumed) until {@link #hostSpaceAvailable}; host input is read only into receive buffers the guest
 * posted, so a guest that does not read stops the host side. Two cases drop, counted and logged once per
 * episode: a generic port without a host side (as QEMU does) and a console port whose host side is full
 * (hvc spins with a lock held until its buffer is used, so holding it would hang the guest).
 */
public final class ConsoleDevice implements VirtioDevice {

    public static final int DEVICE_ID = 3;
    public static final long VIRTIO_CONSOLE_F_MULTIPORT = 1L << 1;
    public static final long VIRTIO_RING_F_INDIRECT_DESC = 1L << 28;
    public static final long VIRTIO_RING_F_EVENT_IDX = 1L << 29;
    public static final long VIRTIO_F_VERSION_1 = 1L << 32;
    /** What the device offers. SIZE and EMERG_WRITE are not offered (yet). */
    public static final long FEATURES =
        VIRTIO_F_VERSION_1 | VIRTIO_CONSOLE_F_MULTIPORT | VIRTIO_RING_F_EVENT_IDX | VIRTIO_RING_F_INDIRECT_DESC;
    public static final int MAX_QUEUE_SIZE = 32768;

    /** Chains handled per queue per pass before other queues get their turn. */
    private static final int BATCH_BUDGET = 256;

    private static final Logger LOG = Logger.getLogger(ConsoleDevice.class.getName());

    private final String name;
    private final int maxPorts;
    private final List<PortSpec> portSpecs;
    /** Indexed by port number; null where no port is configured. */
    private final Port[] ports;
    /** The configured ports in ascending number order. */
    private final Port[] configured;
    private final ConsoleEvents events;
    private final byte[] config;
    private final HostEvents hostEvents;
    private final HostEvents.Handler hostEventHandler = this::onHostEvent;
    private volatile DeviceContext context;

    // Worker state.
    private final ControlOutbox outbox;
    private final DescriptorChain chain = new DescriptorChain();
    /** Flyweight over guest memory, re-wrapped per descriptor segment. */
    private final UnsafeBuffer guestView = new UnsafeBuffer(new byte[0]);
    /** One encoded control message: header plus the longest name and its NUL. */
    private final UnsafeBuffer message =
        new UnsafeBuffer(new byte[ControlMessage.HEADER_LENGTH + ControlMessage.MAX_NAME_BYTES + 1]);
    private final Port[] retryQueue;
    private int retryCount;
    private boolean retryControlTx;
    private boolean multiport;
    private boolean outboxOverflowing;
    private boolean badControlLogged;

    /**
     * @param name     device name for log lines
     * @param maxPorts max_nr_ports in config space, 1..511; the device serves 2*(maxPorts+1) queues
     * @param ports    the configured ports: numbers unique and below maxPorts, port 0 only as a console,
     *                 names unique and at most {@value ControlMessage#MAX_NAME_BYTES} UTF-8 bytes
     * @param channels the host side of each port, asked once per port number at construction
     * @param events   where guest connection changes are reported (worker thread)
     */
    public ConsoleDevice(final String name, final int maxPorts, final List<PortSpec> ports,
                         final IntFunction<PortChannel> channels, final ConsoleEvents events) {
        this.name = Objects.requireNonNull(name, "name");
        if (maxPorts < 1 || maxPorts > QueueLayout.MAX_PORTS) {
            throw new IllegalArgumentException(
                "max_nr_ports must be between 1 and " + QueueLayout.MAX_PORTS + ", got " + maxPorts);
        }
        Objects.requireNonNull(ports, "ports");
        Objects.requireNonNull(channels, "channels");
        this.events = Objects.requireNonNull(events, "events");
        this.maxPorts = maxPorts;
        this.ports = new Port[maxPorts];
        final List<PortSpec> sorted = new ArrayList<>(ports);
        sorted.sort(Comparator.comparingInt(PortSpec::nr));
        final Set<String> names = new HashSet<>();
        this.configured = new Port[sorted.size()];
        for (int i = 0; i < sorted.size(); i++) {
            final PortSpec spec = Objects.requireNonNull(sorted.get(i), "port spec");
            validate(spec, names);
            final PortChannel channel = channels.apply(spec.nr());
            if (channel == null) {
                throw new IllegalArgumentException("no channel for port " + spec.nr());
            }
            final Port port = new Port(spec, channel);
            this.ports[spec.nr()] = port;
            this.configured[i] = port;
        }
        this.portSpecs = Collections.unmodifiableList(sorted);
        this.config = ConsoleConfig.encode(maxPorts);
        this.hostEvents = new HostEvents(maxPorts);
        // Enough for a full DEVICE_READY round (PORT_ADD each) plus CONSOLE_PORT, PORT_NAME and a few
        // PORT_OPEN toggles per port before the driver posts control buffers.
        this.outbox = new ControlOutbox(Math.max(256, 8 * (maxPorts + 1)));
        this.retryQueue = new Port[maxPorts];
    }

    private void validate(final PortSpec spec, final Set<String> names) {
        final int nr = spec.nr();
        if (nr < 0 || nr >= maxPorts) {
            throw new IllegalArgumentException(
                "port number " + nr + " is out of range: max_nr_ports is " + maxPorts);
        }
        if (ports[nr] != null) {
            throw new IllegalArgumentException("port number " + nr + " is used twice");
        }
        if (nr == 0 && !spec.console()) {
            throw new IllegalArgumentException(
                "port number 0 is reserved for a console port (as QEMU reserves it for virtconsole)");
        }
        if (spec.name() != null) {
            if (!names.add(spec.name())) {
                throw new IllegalArgumentException("port name '" + spec.name() + "' is used twice");
            }
            final int length = spec.name().getBytes(StandardCharsets.UTF_8).length;
            if (length > ControlMessage.MAX_NAME_BYTES) {
                throw new IllegalArgumentException("port name of port " + nr + " is " + length
                    + " bytes in UTF-8, at most " + ControlMessage.MAX_NAME_BYTES + " are allowed");
            }
        }
    }

    // ------------------------------------------------------------------ public API (any thread)

    public String name() {
        return name;
    }

    public int maxPorts() {
        return maxPorts;
    }

    /** The configured ports in ascending number order. */
    public List<PortSpec> ports() {
        return portSpecs;
    }

    /** Counters of configured port {@code nr}. */
    public PortCounters counters(final int nr) {
        return port(nr).counters;
    }

    /** Whether the guest has port {@code nr} open (PORT_OPEN 1; without MULTIPORT: its queues started). */
    public boolean guestConnected(final int nr) {
        return port(nr).guestConnected;
    }

    /** The host side of port {@code nr} connected or disconnected (chardev opened/closed). Any thread. */
    public void hostConnected(final int nr, final boolean connected) {
        port(nr);
        hostEvents.postConnection(nr, connected);
        wakeWorker();
    }

    /** Host-to-guest data appeared in port {@code nr}'s channel. Any thread. */
    public void hostDataAvailable(final int nr) {
        port(nr);
        hostEvents.post(nr, HostEvents.DATA);
        wakeWorker();
    }

    /** Port {@code nr}'s guest-to-host channel has room again after a short write. Any thread. */
    public void hostSpaceAvailable(final int nr) {
        port(nr);
        hostEvents.post(nr, HostEvents.SPACE);
        wakeWorker();
    }

    private Port port(final int nr) {
        final Port port = nr >= 0 && nr < maxPorts ? ports[nr] : null;
        if (port == null) {
            throw new IllegalArgumentException("device " + name + " has no port " + nr);
        }
        return port;
    }

    private void wakeWorker() {
        final DeviceContext c = context;
        if (c != null) {
            c.wakeup();
        }
    }

    // ------------------------------------------------------------------ VirtioDevice: control thread

    @Override
    public int deviceId() {
        return DEVICE_ID;
    }

    @Override
    public long deviceFeatures() {
        return FEATURES;
    }

    @Override
    public int queueCount() {
        return QueueLayout.queueCount(maxPorts);
    }

    @Override
    public int maxQueueSize() {
        return MAX_QUEUE_SIZE;
    }

    @Override
    public int configSize() {
        return ConsoleConfig.SIZE;
    }

    @Override
    public void readConfig(final int offset, final byte[] dst, final int dstOffset, final int length) {
        Objects.checkFromIndexSize(offset, length, config.length);
        System.arraycopy(config, offset, dst, dstOffset, length);
    }

    @Override
    public void writeConfig(final int offset, final byte[] src, final int srcOffset, final int length) {
        // Nothing in our config is driver-writable without EMERG_WRITE.
        LOG.log(Level.FINE, "{0}: ignoring a driver write of {1} config bytes at offset {2}",
            new Object[] {name, length, offset});
    }

    // ------------------------------------------------------------------ VirtioDevice: worker

    @Override
    public void attach(final DeviceContext deviceContext) {
        this.context = Objects.requireNonNull(deviceContext, "context");
    }

    @Override
    public void featuresAcked(final long ackedFeatures) {
        final boolean wasMultiport = multiport;
        multiport = (ackedFeatures & VIRTIO_CONSOLE_F_MULTIPORT) != 0;
        if (multiport != wasMultiport || !multiport) {
            LOG.info(() -> name + ": driver acked features 0x" + Long.toHexString(ackedFeatures)
                + (multiport ? " (multiport)" : " (no MULTIPORT: one console port on queues 0/1)"));
        }
        if (!multiport && ports[0] == null) {
            LOG.warning(() -> name + ": driver did not ack MULTIPORT and no port 0 is configured:"
                + " the guest's only console has no host side");
        }
    }

    @Override
    public void queueStarted(final int index) {
        if (!multiport && (index == QueueLayout.PORT0_RX || index == QueueLayout.PORT0_TX) && ports[0] != null) {
            // Without MULTIPORT there is no PORT_OPEN: the single console is open once its queues run (QEMU
            // does this at DRIVER_OK).
            setGuestConnected(ports[0], true);
        }
        // Kicks may have been missed while the ring was stopped; look at it now.
        serviceQueue(index);
    }

    @Override
    public void queueStopped(final int index) {
        final int nr = QueueLayout.portOf(index);
        if (nr >= 0 && nr < maxPorts && ports[nr] != null && !QueueLayout.isRx(index)) {
            // The held chain was never advanced: the next start presents it again from its first byte.
            ports[nr].dropHeld();
        }
    }

    @Override
    public int queueKicked(final int index) {
        return serviceQueue(index);
    }

    @Override
    public int doWork() {
        if (context == null) {
            return 0;
        }
        int work = 0;
        if (hostEvents.hasPending()) {
            work += hostEvents.drain(hostEventHandler);
        }
        if (retryCount > 0 || retryControlTx) {
            work += serviceRetries();
        }
        if (multiport && !outbox.isEmpty()) {
            work += sendControl();
        }
        return work;
    }

    @Override
    public void reset() {
        for (final Port port : configured) {
            setGuestConnected(port, false);
            port.ready = false;
            port.dropHeld();
            port.retry = false;
        }
        retryCount = 0;
        retryControlTx = false;
        final int dropped = outbox.clear();
        outboxOverflowing = false;
        badControlLogged = false;
        if (dropped > 0) {
            LOG.info(() -> name + ": reset dropped " + dropped + " pending control messages");
        }
    }

    @Override
    public void statusChanged(final int status) {
        if (status == 0) {
            reset();
        }
    }

    // ------------------------------------------------------------------ queue dispatch

    private int serviceQueue(final int index) {
        if (context == null) {
            return 0;
        }
        if (index == QueueLayout.CONTROL_RX) {
            return multiport ? sendControl() : 0;
        }
        if (index == QueueLayout.CONTROL_TX) {
            return multiport ? receiveControl() : 0;
        }
        final int nr = QueueLayout.portOf(index);
        if (nr < 0 || nr >= maxPorts || (nr != 0 && !multiport)) {
            return 0;
        }
        final Port port = ports[nr];
        if (port == null) {
            // No PORT_ADD was sent for it, so a well-behaved driver never uses these queues.
            return 0;
        }
        return QueueLayout.isRx(index) ? fillRx(port) : drainTx(port);
    }

    private int serviceRetries() {
        int work = 0;
        if (retryControlTx) {
            retryControlTx = false;
            work += receiveControl();
        }
        final int count = retryCount;
        retryCount = 0;
        for (int i = 0; i < count; i++) {
            final Port port = retryQueue[i];
            retryQueue[i] = null;
            port.retry = false;
            work += drainTx(port) + fillRx(port);
        }
        return work;
    }

    private void scheduleRetry(final Port port) {
        if (!port.retry) {
            port.retry = true;
            retryQueue[retryCount++] = port;
        }
    }

    private boolean portActive(final Port port) {
        return multiport || port.nr == 0;
    }

    // ------------------------------------------------------------------ host events

    private int onHostEvent(final int nr, final int bits) {
        final Port port = ports[nr];
        int work = 0;
        boolean drain = (bits & HostEvents.SPACE) != 0;
        if ((bits & HostEvents.CONNECTION) != 0) {
            if ((bits & HostEvents.DISCONNECTED) != 0 && port.hostConnected) {
                setHostConnected(port, false);
            }
            final boolean now = hostEvents.hostConnected(nr);
            if (now != port.hostConnected) {
                setHostConnected(port, now);
            }
            drain = true;
            work++;
        }
        if (portActive(port)) {
            if (drain) {
                work += drainTx(port);
            }
            if ((bits & HostEvents.DATA) != 0) {
                work += fillRx(port);
            }
        }
        return work;
    }

    private void setHostConnected(final Port port, final boolean connected) {
        port.hostConnected = connected;
        LOG.info(() -> name + ": " + port + " host side " + (connected ? "connected" : "disconnected"));
        if (connected) {
            port.dropping = false;
        } else {
            discardHeld(port);
        }
        if (multiport && port.ready) {
            queueControl(port.nr, ControlMessage.PORT_OPEN, connected ? 1 : 0);
        }
    }

    /** The host side went away: guest output held for it is thrown away, as QEMU's virtio_serial_close does. */
    private void discardHeld(final Port port) {
        if (!port.holding) {
            return;
        }
        final Virtqueue queue = context.queue(port.txQueue);
        if (queue.isReady() && queue.peek(chain) && chain.head() == port.heldHead) {
            final long dropped = Math.max(0, chain.readableLength() - port.heldOffset);
            queue.advance();
            queue.addUsed(chain.head(), 0);
            port.counters.addDropped(dropped);
            queue.flushUsed();
            LOG.info(() -> name + ": " + port + " discarded " + dropped + " bytes of held guest output");
        }
        port.dropHeld();
    }

    private void setGuestConnected(final Port port, final boolean open) {
        if (port.guestConnected == open) {
            return;
        }
        port.guestConnected = open;
        LOG.info(() -> name + ": " + port + " guest " + (open ? "opened" : "closed"));
        try {
            events.guestConnected(port.spec, open);
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, name + ": guestConnected listener failed for " + port, e);
        }
    }

    // ------------------------------------------------------------------ data: guest to host

    /** Consume the port's transmitq into its channel; see the class comment for holding and dropping. */
    private int drainTx(final Port port) {
        final Virtqueue queue = context.queue(port.txQueue);
        if (!queue.isReady()) {
            return 0;
        }
        int chains = 0;
        long toHost = 0;
        long dropped = 0;
        boolean rechecked = false;
        while (true) {
            if (chains == BATCH_BUDGET) {
                scheduleRetry(port);
                break;
            }
            if (!queue.peek(chain)) {
                if (!rechecked && queue.enableNotifications()) {
                    rechecked = true;
                    continue;
                }
                break;
            }
            rechecked = false;
            if (port.holding && chain.head() != port.heldHead) {
                port.dropHeld();
            }
            final long start = port.holding ? port.heldOffset : 0;
            final long total = chain.readableLength();
            if (port.isConsole() || port.hostConnected) {
                final long reached = writeChain(port.channel, start);
                toHost += reached - start;
                if (reached < total) {
                    if (!port.isConsole()) {
                        // Backpressure: keep the chain, resume at this byte on hostSpaceAvailable.
                        port.holding = true;
                        port.heldHead = chain.head();
                        port.heldOffset = reached;
                        break;
                    }
                    dropped += total - reached;
                    startDropping(port, Level.WARNING, "console host side is full");
                } else if (port.isConsole()) {
                    port.dropping = false;
                }
            } else {
                dropped += total - start;
                startDropping(port, Level.INFO, "host side not connected");
            }
            queue.advance();
            queue.addUsed(chain.head(), 0);
            port.dropHeld();
            chains++;
        }
        // Counters first: whoever sees the used entry (the guest, a test) sees them already counted.
        if (toHost > 0) {
            port.counters.addToHost(toHost);
        }
        if (dropped > 0) {
            port.counters.addDropped(dropped);
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        if (toHost > 0) {
            port.channel.flushToHost();
        }
        return chains;
    }

    /** Write the chain's readable bytes from offset {@code start}; returns the offset reached. */
    private long writeChain(final PortChannel channel, final long start) {
        long reached = start;
        long seen = 0;
        for (int s = 0; s < chain.segmentCount() && !chain.isWritable(s); s++) {
            final int length = chain.length(s);
            final long segmentEnd = seen + length;
            if (segmentEnd > reached) {
                final int skip = (int) (reached - seen);
                final int want = length - skip;
                final int taken = clamp(channel.writeToHost(chain.address(s) + skip, want), want);
                reached += taken;
                if (taken < want) {
                    return reached;
                }
            }
            seen = segmentEnd;
        }
        return reached;
    }

    /** One log line per episode; the bytes themselves are counted in {@link PortCounters#bytesDropped()}. */
    private void startDropping(final Port port, final Level level, final String reason) {
        if (!port.dropping) {
            port.dropping = true;
            LOG.log(level, () -> name + ": " + port + " dropping guest output: " + reason
                + " (counted in bytesDropped)");
        }
    }

    // ------------------------------------------------------------------ data: host to guest

    /** Fill the port's receive buffers from its channel while the guest has the port open. */
    private int fillRx(final Port port) {
        if (!port.guestConnected || !port.channel.hasDataFromHost()) {
            return 0;
        }
        final Virtqueue queue = context.queue(port.rxQueue);
        if (!queue.isReady()) {
            return 0;
        }
        int chains = 0;
        long bytes = 0;
        boolean rechecked = false;
        while (port.channel.hasDataFromHost()) {
            if (chains == BATCH_BUDGET) {
                scheduleRetry(port);
                break;
            }
            if (!queue.peek(chain)) {
                // Host data but no buffer: ask for a kick, and look once more in case one just arrived.
                if (!rechecked && queue.enableNotifications()) {
                    rechecked = true;
                    continue;
                }
                break;
            }
            rechecked = false;
            if (chain.writableLength() == 0) {
                if (!port.badRxLogged) {
                    port.badRxLogged = true;
                    LOG.warning(() -> name + ": " + port + " receive buffer " + chain.head()
                        + " has no writable descriptor; returned empty");
                }
                queue.advance();
                queue.addUsed(chain.head(), 0);
                chains++;
                continue;
            }
            final int written = fillChain(port.channel);
            if (written == 0) {
                // The channel had nothing after all: leave the buffer for the next data event.
                break;
            }
            queue.advance();
            // One used entry per chain with its total length: the driver reads exactly this many bytes.
            queue.addUsed(chain.head(), written);
            bytes += written;
            chains++;
        }
        if (bytes > 0) {
            port.counters.addFromHost(bytes);
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** Fill the chain's writable segments in order until the channel runs dry; returns bytes written. */
    private int fillChain(final PortChannel channel) {
        long written = 0;
        for (int s = 0; s < chain.segmentCount(); s++) {
            if (!chain.isWritable(s)) {
                continue;
            }
            final int want = chain.length(s);
            final int got = clamp(channel.readFromHost(chain.address(s), want), want);
            written += got;
            if (got < want) {
                break;
            }
        }
        // A used length is a u32 and a chain holds at most MAX_SEGMENTS segments; keep it an int.
        return (int) Math.min(written, Integer.MAX_VALUE);
    }

    private static int clamp(final int n, final int max) {
        return n < 0 ? 0 : Math.min(n, max);
    }

    // ------------------------------------------------------------------ control queues

    /** Control transmitq: take every message at once (the driver spins until it is used), then act on it. */
    private int receiveControl() {
        final Virtqueue queue = context.queue(QueueLayout.CONTROL_TX);
        if (!queue.isReady()) {
            return 0;
        }
        int chains = 0;
        boolean rechecked = false;
        while (true) {
            if (chains == BATCH_BUDGET) {
                retryControlTx = true;
                break;
            }
            if (!queue.pop(chain)) {
                if (!rechecked && queue.enableNotifications()) {
                    rechecked = true;
                    continue;
                }
                break;
            }
            rechecked = false;
            chains++;
            final int length = gatherHeader();
            queue.addUsed(chain.head(), 0);
            if (length < ControlMessage.HEADER_LENGTH) {
                if (!badControlLogged) {
                    badControlLogged = true;
                    LOG.warning(() -> name + ": control message of " + length + " bytes is shorter than "
                        + ControlMessage.HEADER_LENGTH + "; ignored");
                }
                continue;
            }
            handleControl(ControlMessage.id(message, 0), ControlMessage.event(message, 0),
                ControlMessage.value(message, 0));
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains + sendControl();
    }

    /** Copy up to one header's worth of the chain's readable bytes into {@link #message}; returns the count. */
    private int gatherHeader() {
        int copied = 0;
        for (int s = 0; s < chain.segmentCount() && !chain.isWritable(s)
            && copied < ControlMessage.HEADER_LENGTH; s++) {
            final int n = Math.min(chain.length(s), ControlMessage.HEADER_LENGTH - copied);
            guestView.wrap(chain.address(s), n);
            guestView.getBytes(0, message, copied, n);
            copied += n;
        }
        return copied;
    }

    private void handleControl(final int id, final int event, final int value) {
        switch (event) {
            case ControlMessage.DEVICE_READY:
                if (value != 1) {
                    LOG.warning(() -> name + ": driver reports DEVICE_READY(" + value + "): device setup failed");
                    return;
                }
                LOG.info(() -> name + ": driver ready, adding " + configured.length + " ports");
                for (final Port port : configured) {
                    port.ready = false;
                    queueControl(port.nr, ControlMessage.PORT_ADD, 1);
                }
                return;
            case ControlMessage.PORT_READY: {
                final Port port = controlPort(id, event);
                if (port == null) {
                    return;
                }
                if (value != 1) {
                    LOG.warning(() -> name + ": driver failed to set up " + port + " (PORT_READY " + value + ")");
                    return;
                }
                port.ready = true;
                if (port.isConsole()) {
                    queueControl(port.nr, ControlMessage.CONSOLE_PORT, 1);
                }
                if (port.nameBytes != null) {
                    queueControl(port.nr, ControlMessage.PORT_NAME, 1);
                }
                if (port.hostConnected) {
                    queueControl(port.nr, ControlMessage.PORT_OPEN, 1);
                }
                return;
            }
            case ControlMessage.PORT_OPEN: {
                final Port port = controlPort(id, event);
                if (port == null) {
                    return;
                }
                setGuestConnected(port, value != 0);
                if (value != 0) {
                    // Host input may have waited for the guest to open the port.
                    fillRx(port);
                }
                return;
            }
            default:
                LOG.warning(() -> name + ": unexpected control message " + ControlMessage.eventName(event)
                    + " (id " + Integer.toUnsignedString(id) + ", value " + value + ") from the driver; ignored");
        }
    }

    private Port controlPort(final int id, final int event) {
        final Port port = id >= 0 && id < maxPorts ? ports[id] : null;
        if (port == null) {
            LOG.warning(() -> name + ": Unexpected port id " + Integer.toUnsignedString(id) + " in "
                + ControlMessage.eventName(event) + "; ignored");
        }
        return port;
    }

    private void queueControl(final int id, final int event, final int value) {
        if (outbox.offer(id, event, value)) {
            outboxOverflowing = false;
        } else if (!outboxOverflowing) {
            outboxOverflowing = true;
            LOG.warning(() -> name + ": control queue full (" + outbox.capacity()
                + " messages waiting for driver buffers); dropping " + ControlMessage.eventName(event)
                + " for port " + id);
        }
    }

    /** Control receiveq: one message per buffer at offset 0, never packed, while buffers and messages last. */
    private int sendControl() {
        if (outbox.isEmpty()) {
            return 0;
        }
        final Virtqueue queue = context.queue(QueueLayout.CONTROL_RX);
        if (!queue.isReady()) {
            return 0;
        }
        int chains = 0;
        boolean rechecked = false;
        while (!outbox.isEmpty()) {
            if (!queue.peek(chain)) {
                if (!rechecked && queue.enableNotifications()) {
                    rechecked = true;
                    continue;
                }
                break;
            }
            rechecked = false;
            queue.advance();
            chains++;
            final long capacity = chain.writableLength();
            if (capacity < ControlMessage.HEADER_LENGTH) {
                // Not even a header fits: give it back empty and keep the message for the next buffer.
                queue.addUsed(chain.head(), 0);
                if (!badControlLogged) {
                    badControlLogged = true;
                    LOG.warning(() -> name + ": control receive buffer of " + capacity + " bytes is too small");
                }
                continue;
            }
            final int length = encodeHead();
            final int written = scatter(length);
            queue.addUsed(chain.head(), written);
            if (written < length) {
                LOG.warning(() -> name + ": control receive buffer too small, " + ControlMessage.eventName(
                    outbox.headEvent()) + " for port " + outbox.headId() + " cut to " + written + " bytes");
            }
            outbox.removeHead();
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** Encode the outbox head into {@link #message}; returns its length. */
    private int encodeHead() {
        final int id = outbox.headId();
        final int event = outbox.headEvent();
        int length = ControlMessage.encode(message, 0, id, event, outbox.headValue());
        if (event == ControlMessage.PORT_NAME) {
            final byte[] nameBytes = ports[id].nameBytes;
            message.putBytes(length, nameBytes);
            length += nameBytes.length;
        }
        return length;
    }

    /** Copy the first {@code length} bytes of {@link #message} into the chain's writable segments. */
    private int scatter(final int length) {
        int copied = 0;
        for (int s = 0; s < chain.segmentCount() && copied < length; s++) {
            if (!chain.isWritable(s)) {
                continue;
            }
            final int n = Math.min(chain.length(s), length - copied);
            guestView.wrap(chain.address(s), n);
            guestView.putBytes(0, message, copied, n);
            copied += n;
        }
        return copied;
    }

    @Override
    public String toString() {
        return "ConsoleDevice{" + name + ", maxPorts=" + maxPorts + ", ports=" + configured.length + '}';
    }
}
