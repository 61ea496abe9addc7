package org.vsbridge.console;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * A multiport virtio-console device (virtio spec, "Console Device"), behaving toward the guest like QEMU's
 * virtio-serial bus with the Linux {@code virtio_console} driver in mind.
 *
 * <p>Threading: the control methods ({@link #deviceFeatures()}, {@link #readConfig} ...) answer from
 * immutable or copy-on-write state; the queue callbacks run on the engine's worker, which owns every port's
 * state. The host side ({@link #hostConnected}, {@link #hostDataAvailable}, {@link #hostSpaceAvailable}) and the
 * management calls ({@link #addPort}, {@link #removePort}, {@link #resize}, {@link #setOutputPolicy}) may come
 * from any thread: they post bits into {@link HostEvents} (or a removal into a queue) and wake the worker, which
 * sends the control messages (PORT_ADD, PORT_REMOVE, RESIZE).
 *
 * <p>Flow control: guest output that the host side cannot take is held in its transmitq (the chain is not
 * consumed) until {@link #hostSpaceAvailable}; host input is read only into receive buffers the guest
 * posted, so a guest that does not read stops the host side. Two cases drop, counted and logged once per
 * episode: a generic port without a host side under {@link OutputPolicy#DROP} (as QEMU does; under
 * {@link OutputPolicy#HOLD} its output waits in the ring instead) and a console port whose host side is full
 * (hvc spins with a lock held until its buffer is used, so holding it would hang the guest).
 */
public final class ConsoleDevice implements VirtioDevice {

    public static final int DEVICE_ID = 3;
    public static final long VIRTIO_CONSOLE_F_SIZE = 1L;
    public static final long VIRTIO_CONSOLE_F_MULTIPORT = 1L << 1;
    public static final long VIRTIO_CONSOLE_F_EMERG_WRITE = 1L << 2;
    public static final long VIRTIO_RING_F_INDIRECT_DESC = 1L << 28;
    public static final long VIRTIO_RING_F_EVENT_IDX = 1L << 29;
    public static final long VIRTIO_F_VERSION_1 = 1L << 32;
    /** Offered only when {@link #setPackedRing} asks for it; the engine serves either layout. */
    public static final long VIRTIO_F_RING_PACKED = 1L << 34;
    /** What the device offers. Linux acks SIZE and MULTIPORT (never EMERG_WRITE, which a driver may use
     *  without acking it). */
    public static final long FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_CONSOLE_F_SIZE | VIRTIO_CONSOLE_F_MULTIPORT
        | VIRTIO_CONSOLE_F_EMERG_WRITE | VIRTIO_RING_F_EVENT_IDX | VIRTIO_RING_F_INDIRECT_DESC;
    public static final int MAX_QUEUE_SIZE = 32768;

    /** Chains handled per queue per pass before other queues get their turn. */
    private static final int BATCH_BUDGET = 256;

    /** Guest-triggered lines (control messages, open/close): rate-limited so a guest cannot flood the log. */
    private final GuestLogLimit guestLog = new GuestLogLimit(LOG);
    private static final Logger LOG = Logger.getLogger(ConsoleDevice.class.getName());

    /** Emergency-write bytes waiting for the worker (only when they go to a port's channel). */
    private static final int EMERGENCY_CAPACITY = 4096;

    private final String name;
    /** Worker only: the device area of the inflight buffer, or null (see {@link #stateBuffer}). */
    private UnsafeBuffer state;
    private final int maxPorts;
    /** Indexed by port number; null where no port exists. Written under {@link #registry} (add, remove), read
     *  by any thread. */
    private final AtomicReferenceArray<Port> ports;
    /** Guards port additions and removals (numbers and names stay unique). */
    private final Object registry = new Object();
    private final ConsoleEvents events;
    /** Copy-on-write config space: cols/rows change with port 0's size. */
    private volatile byte[] config;
    private final HostEvents hostEvents;
    /** Ports removed by {@link #removePort}, for the worker to tell the driver (PORT_REMOVE). */
    private final ManyToOneConcurrentArrayQueue<Removal> removals = new ManyToOneConcurrentArrayQueue<>(1024);
    /** emerg_wr bytes on their way to the emergency port's channel (Byte.valueOf is cached: no allocation). */
    private final ManyToOneConcurrentArrayQueue<Byte> emergency =
        new ManyToOneConcurrentArrayQueue<>(EMERGENCY_CAPACITY);
    private final UnsafeBuffer emergencyBuffer = new UnsafeBuffer(java.nio.ByteBuffer.allocateDirect(256));
    private volatile IntConsumer emergencySink;
    private volatile int emergencyPort = -1;
    private volatile ResizeOrder resizeOrder = ResizeOrder.ROWS_COLS;
    private volatile boolean packedRing;
    private volatile boolean emergencyDropLogged;
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
    /** Written by the worker; read by {@link #resize} on other threads. */
    private volatile boolean multiport;
    /** The driver sent DEVICE_READY(1): ports added from now on get PORT_ADD at once. */
    private boolean driverReady;
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
        this.ports = new AtomicReferenceArray<>(maxPorts);
        final List<PortSpec> sorted = new ArrayList<>(ports);
        sorted.sort(Comparator.comparingInt(PortSpec::nr));
        final Set<String> names = new HashSet<>();
        for (final PortSpec spec : sorted) {
            Objects.requireNonNull(spec, "port spec");
            validate(spec, names);
            final PortChannel channel = channels.apply(spec.nr());
            if (channel == null) {
                throw new IllegalArgumentException("no channel for port " + spec.nr());
            }
            this.ports.set(spec.nr(), new Port(spec, channel));
        }
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
        if (ports.get(nr) != null) {
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

    /** The ports that exist now, in ascending number order (a snapshot). */
    public List<PortSpec> ports() {
        final List<PortSpec> list = new ArrayList<>();
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port != null) {
                list.add(port.spec);
            }
        }
        return Collections.unmodifiableList(list);
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
        if (!hostSideExists(nr)) {
            return;
        }
        hostEvents.postConnection(nr, connected);
        wakeWorker();
    }

    /** Host-to-guest data appeared in port {@code nr}'s channel. Any thread. */
    public void hostDataAvailable(final int nr) {
        if (!hostSideExists(nr)) {
            return;
        }
        hostEvents.post(nr, HostEvents.DATA);
        wakeWorker();
    }

    /** Port {@code nr}'s guest-to-host channel has room again after a short write. Any thread. */
    public void hostSpaceAvailable(final int nr) {
        if (!hostSideExists(nr)) {
            return;
        }
        hostEvents.post(nr, HostEvents.SPACE);
        wakeWorker();
    }

    /**
     * Worker: watch {@code fd} (the host side of port {@code nr}) until it is readable once; then the port's channel
     * gets {@link PortChannel#hostInputReady()} and the port's receive buffers are filled. False when the engine
     * cannot watch it (the channel then reads through its own buffers).
     */
    public boolean watchHostInput(final int nr, final int fd) {
        final DeviceContext c = context;
        return c != null && c.watchOnce(fd, DeviceContext.FD_READABLE, nr << 1);
    }

    /**
     * Worker: watch {@code fd} (the host side of port {@code nr}) until it is writable once; then the port's channel
     * gets {@link PortChannel#hostOutputReady()} and the port's transmit buffers are taken again. False when the
     * engine cannot watch it.
     */
    public boolean watchHostOutput(final int nr, final int fd) {
        final DeviceContext c = context;
        return c != null && c.watchOnce(fd, DeviceContext.FD_WRITABLE, (nr << 1) | 1);
    }

    /** Any thread: stop watching {@code fd} (before it is closed). */
    public void unwatchHostFd(final int fd) {
        final DeviceContext c = context;
        if (c != null) {
            c.unwatch(fd);
        }
    }

    @Override
    public int fdReady(final int token, final int events) {
        final int nr = token >>> 1;
        final Port port = nr < maxPorts ? ports.get(nr) : null;
        if (port == null || !portActive(port)) {
            return 0; // a watch of a port just removed
        }
        if ((token & 1) != 0) {
            port.channel.hostOutputReady();
            return drainTx(port);
        }
        port.channel.hostInputReady();
        return fillRx(port);
    }

    /** A host-side call for port {@code nr}: false (ignored) for a port just hot-removed, whose chardev may still
     *  report events until it is detached; a number outside the device is a caller bug and throws. */
    private boolean hostSideExists(final int nr) {
        if (nr < 0 || nr >= maxPorts) {
            throw new IllegalArgumentException("device " + name + " has no port " + nr);
        }
        return ports.get(nr) != null;
    }

    // ------------------------------------------------------------------ hot-plug, size, policy (any thread)

    /**
     * Hot-add a port (QMP {@code device_add}). {@code requested.nr()} &lt; 0 picks a number as QEMU's bus does
     * (port 0 for a console when free, else the lowest free number from 1). {@code channels} is called once,
     * under the registry lock, with the final spec. A running driver gets PORT_ADD at once; otherwise the port
     * is added at the next DEVICE_READY.
     *
     * @return the port as added (with its number)
     * @throws IllegalArgumentException with QEMU's wording ("virtio-serial-bus: ...") when the number or name
     *                                  is taken, out of range, or the device is full
     */
    public PortSpec addPort(final PortSpec requested, final Function<PortSpec, PortChannel> channels) {
        Objects.requireNonNull(requested, "requested");
        Objects.requireNonNull(channels, "channels");
        synchronized (registry) {
            int nr = requested.nr();
            if (requested.name() != null) {
                for (int i = 0; i < maxPorts; i++) {
                    final Port other = ports.get(i);
                    if (other != null && requested.name().equals(other.spec.name())) {
                        throw new IllegalArgumentException(
                            "virtio-serial-bus: A port already exists by name " + requested.name());
                    }
                }
                final int length = requested.name().getBytes(StandardCharsets.UTF_8).length;
                if (length > ControlMessage.MAX_NAME_BYTES) {
                    throw new IllegalArgumentException("virtio-serial-bus: port name is " + length
                        + " bytes in UTF-8, at most " + ControlMessage.MAX_NAME_BYTES + " are allowed");
                }
            }
            if (nr < 0) {
                nr = requested.console() && ports.get(0) == null ? 0 : firstFree();
                if (nr < 0) {
                    throw new IllegalArgumentException("virtio-serial-bus: Maximum port limit for this device reached");
                }
            } else {
                if (nr == 0 && !requested.console()) {
                    throw new IllegalArgumentException("virtio-serial-bus: Port number 0 on virtio-serial devices "
                        + "reserved for virtconsole devices for backward compatibility");
                }
                if (nr < maxPorts && ports.get(nr) != null) {
                    throw new IllegalArgumentException("virtio-serial-bus: A port already exists at id " + nr);
                }
                if (nr >= maxPorts) {
                    throw new IllegalArgumentException(
                        "virtio-serial-bus: Out-of-range port id specified, max. allowed: " + (maxPorts - 1));
                }
            }
            final PortSpec spec = new PortSpec(nr, requested.id(), requested.name(), requested.console());
            final PortChannel channel = Objects.requireNonNull(channels.apply(spec), "channel");
            hostEvents.forget(nr);
            ports.set(nr, new Port(spec, channel));
            hostEvents.post(nr, HostEvents.ADDED); // the worker sends PORT_ADD if the driver is ready
            final int added = nr;
            LOG.info(() -> name + ": port " + added + " added" + (spec.id() != null ? " (" + spec.id() + ")" : ""));
            wakeWorker();
            return spec;
        }
    }

    private int firstFree() {
        for (int nr = 1; nr < maxPorts; nr++) {
            if (ports.get(nr) == null) {
                return nr;
            }
        }
        return -1;
    }

    /**
     * Hot-remove port {@code nr} (QMP {@code device_del}): from now on the device no longer knows it; the worker
     * discards guest output still in its transmitq and sends PORT_REMOVE to a driver that was told about it.
     * The returned future completes once the worker has done so (at once when no worker runs); only then is the
     * port's channel no longer touched.
     */
    public CompletableFuture<PortSpec> removePort(final int nr) {
        final Port port;
        synchronized (registry) {
            port = port(nr);
            ports.set(nr, null);
        }
        final Removal removal = new Removal(port);
        if (context == null || !removals.offer(removal)) {
            removal.done.complete(port.spec);
        } else {
            wakeWorker();
        }
        LOG.info(() -> name + ": " + port + " removed");
        return removal.done;
    }

    /**
     * Set the console size of console port {@code nr} (VIRTIO_CONSOLE_F_SIZE): sent as RESIZE once the port is
     * ready (now, or after its PORT_READY); for port 0 also stored in config space and, for a driver without
     * MULTIPORT, announced with a config change through the backend request channel.
     */
    public void resize(final int nr, final int cols, final int rows) {
        if (cols < 0 || cols > 0xFFFF || rows < 0 || rows > 0xFFFF) {
            throw new IllegalArgumentException("console size " + cols + "x" + rows + " does not fit 16 bits");
        }
        final Port port = port(nr);
        if (!port.isConsole()) {
            throw new IllegalArgumentException("port " + nr + " is not a console port (virtconsole)");
        }
        port.cols = cols;
        port.rows = rows;
        if (nr == 0) {
            config = ConsoleConfig.encode(maxPorts, cols, rows);
            final DeviceContext c = context;
            if (!multiport && c != null && !c.configChanged()) {
                LOG.fine(() -> name + ": port 0 resized without a backend request channel: no config change sent");
            }
        }
        hostEvents.post(nr, HostEvents.RESIZE);
        wakeWorker();
    }

    /** Port {@code nr}'s console size as {@code {cols, rows}} (0 = not set). */
    public int[] size(final int nr) {
        final Port port = port(nr);
        return new int[] {port.cols, port.rows};
    }

    /** What port {@code nr} does with guest output while no host peer is connected (consoles always take it). */
    public void setOutputPolicy(final int nr, final OutputPolicy policy) {
        port(nr).policy = Objects.requireNonNull(policy, "policy");
        hostEvents.post(nr, HostEvents.POLICY);
        wakeWorker();
    }

    public OutputPolicy outputPolicy(final int nr) {
        return port(nr).policy;
    }

    /** Offer VIRTIO_F_RING_PACKED besides {@link #FEATURES} (default: no, split rings only). Set it before the
     *  vhost-user server starts: a frontend connection reads the offer when it begins. */
    public void setPackedRing(final boolean offer) {
        packedRing = offer;
    }

    /** Field order of RESIZE payloads (default: what Linux reads). */
    public void setResizeOrder(final ResizeOrder order) {
        resizeOrder = Objects.requireNonNull(order, "order");
    }

    /**
     * Where emerg_wr bytes go (VIRTIO_CONSOLE_F_EMERG_WRITE): {@code sink} receives each byte on the vhost-user
     * control thread and must not block; null (default) sends them into the channel of the emergency port.
     */
    public void setEmergencyOutput(final IntConsumer sink) {
        emergencySink = sink;
    }

    /** The port whose channel receives emerg_wr bytes when no sink is set; -1 (default): port 0, else the
     *  lowest-numbered console port. */
    public void setEmergencyPort(final int nr) {
        emergencyPort = nr;
    }

    private Port port(final int nr) {
        final Port port = nr >= 0 && nr < maxPorts ? ports.get(nr) : null;
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
        return packedRing ? FEATURES | VIRTIO_F_RING_PACKED : FEATURES;
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
        final byte[] current = config;
        Objects.checkFromIndexSize(offset, length, current.length);
        System.arraycopy(current, offset, dst, dstOffset, length);
    }

    /** Only emerg_wr is writable (at any time, even before feature negotiation: virtio spec 5.3.4); its low byte
     *  is one character of emergency output. Other fields are read-only: the write is logged and ignored. */
    @Override
    public void writeConfig(final int offset, final byte[] src, final int srcOffset, final int length) {
        if (offset != ConsoleConfig.EMERG_WR_OFFSET) {
            LOG.log(Level.FINE, "{0}: ignoring a driver write of {1} config bytes at offset {2} (read-only)",
                new Object[] {name, length, offset});
            return;
        }
        final byte character = src[srcOffset];
        final IntConsumer sink = emergencySink;
        if (sink != null) {
            try {
                sink.accept(character & 0xFF);
            } catch (final RuntimeException e) {
                LOG.log(Level.WARNING, name + ": emergency output failed", e);
            }
            return;
        }
        if (!emergency.offer(character)) {
            logEmergencyDrop("emergency write queue full");
            return;
        }
        wakeWorker();
    }

    private void logEmergencyDrop(final String reason) {
        if (!emergencyDropLogged) {
            emergencyDropLogged = true;
            LOG.warning(() -> name + ": dropping emergency output: " + reason + " (logged once)");
        }
    }

    /** Worker: move emerg_wr bytes into the emergency port's channel. */
    private int drainEmergency() {
        final Port port = emergencyTarget();
        int n = 0;
        Byte b;
        while (n < emergencyBuffer.capacity() && (b = emergency.poll()) != null) {
            emergencyBuffer.putByte(n++, b);
        }
        if (n == 0) {
            return 0;
        }
        if (port == null) {
            logEmergencyDrop("no console port to write to");
            return n;
        }
        final int taken = clamp(port.channel.writeToHost(emergencyBuffer.addressOffset(), n), n);
        port.counters.addToHost(taken);
        if (taken < n) {
            port.counters.addDropped(n - taken);
            logEmergencyDrop(port + " host side is full");
        }
        port.channel.flushToHost();
        return n;
    }

    private Port emergencyTarget() {
        final int chosen = emergencyPort;
        if (chosen >= 0) {
            return chosen < maxPorts ? ports.get(chosen) : null;
        }
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port != null && port.isConsole()) {
                return port;
            }
        }
        return null;
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
        if (!multiport && ports.get(0) == null) {
            LOG.warning(() -> name + ": driver did not ack MULTIPORT and no port 0 is configured:"
                + " the guest's only console has no host side");
        }
    }

    @Override
    public void queueStarted(final int index) {
        final Port port0 = ports.get(0);
        if (!multiport && (index == QueueLayout.PORT0_RX || index == QueueLayout.PORT0_TX) && port0 != null) {
            // Without MULTIPORT there is no PORT_OPEN: the single console is open once its queues run (QEMU
            // does this at DRIVER_OK).
            setGuestConnected(port0, true);
        }
        final int nr = QueueLayout.portOf(index);
        final Port port = nr >= 0 && nr < maxPorts ? ports.get(nr) : null;
        if (port != null && !QueueLayout.isRx(index)) {
            // INFLIGHT_SHMFD: record how far guest output got, and count it as taken only once the host peer has
            // it, so that a bridge started on the same buffer after this one died neither loses nor repeats it.
            final Virtqueue queue = context.queue(index);
            final boolean exact = queue.tracksInflight();
            queue.setDeliveryTracking(exact);
            // Started on a buffer a previous process left: its guest output waits for the peer to come back
            // rather than being dropped in the moment before it reconnects.
            port.awaitingPeer = exact && queue.resumesInflight() && !port.hostConnected && !port.isConsole();
            port.channel.setExactDelivery(exact && !port.isConsole()); // a console drops what does not fit
        }
        // Kicks may have been missed while the ring was stopped; look at it now.
        serviceQueue(index);
    }

    @Override
    public void queueStopped(final int index) {
        final int nr = QueueLayout.portOf(index);
        final Port port = nr >= 0 && nr < maxPorts ? ports.get(nr) : null;
        if (port != null && !QueueLayout.isRx(index)) {
            // The held chain was never advanced: the next start presents it again from its first byte.
            port.dropHeld();
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
        if (!removals.isEmpty()) {
            work += drainRemovals();
        }
        if (hostEvents.hasPending()) {
            work += hostEvents.drain(hostEventHandler);
        }
        if (!emergency.isEmpty()) {
            work += drainEmergency();
        }
        if (retryCount > 0 || retryControlTx) {
            work += serviceRetries();
        }
        if (multiport && !outbox.isEmpty()) {
            work += sendControl();
        }
        return work;
    }

    // ------------------------------------------------------------------ state across a restart (INFLIGHT_SHMFD)

    /** "VSBC", little-endian: the device area holds this device's state. */
    private static final int STATE_MAGIC = 0x43425356;
    private static final int STATE_VERSION = 1;
    private static final int STATE_PORTS = 16;
    private static final int STATE_ADDED = 1;
    private static final int STATE_READY = 2;
    private static final int STATE_OPEN = 4;

    /**
     * The control-plane state the guest's driver built up (DEVICE_READY, each port's PORT_READY and PORT_OPEN)
     * lives in this process only; the driver never repeats it. With an inflight buffer it is kept there too, so a
     * bridge started after this one died knows which ports the guest has open: {@code u32 magic; u16 version;
     * u16 max_nr_ports; u8 driver_ready; ...;} then one byte per port at 16 (1 added, 2 ready, 4 open).
     */
    @Override
    public void stateBuffer(final UnsafeBuffer buffer) {
        state = buffer == null || buffer.capacity() < STATE_PORTS + maxPorts ? null : buffer;
        if (state == null) {
            return;
        }
        if (buffer.getInt(0) != STATE_MAGIC || buffer.getShort(4) != STATE_VERSION
            || (buffer.getShort(6) & 0xffff) != maxPorts) {
            buffer.setMemory(0, STATE_PORTS + maxPorts, (byte) 0);
            buffer.putShort(4, (short) STATE_VERSION);
            buffer.putShort(6, (short) maxPorts);
            buffer.putIntVolatile(0, STATE_MAGIC);
            saveState();
            return;
        }
        if (buffer.getByte(8) == 0 || driverReady) {
            saveState(); // nothing to take over (or this process already knows better)
            return;
        }
        driverReady = true;
        int ready = 0;
        int open = 0;
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port == null) {
                continue;
            }
            final int flags = buffer.getByte(STATE_PORTS + nr);
            port.added = (flags & STATE_ADDED) != 0;
            port.ready = (flags & STATE_READY) != 0;
            ready += port.ready ? 1 : 0;
            if ((flags & STATE_OPEN) != 0) {
                setGuestConnected(port, true);
                open++;
            }
        }
        final int r = ready;
        final int o = open;
        LOG.info(() -> name + ": device state from a previous backend: driver ready, " + r + " port(s) ready, " + o
            + " open in the guest");
        saveState();
    }

    /** Worker: write the control-plane state into the state buffer, if there is one. */
    private void saveState() {
        final UnsafeBuffer b = state;
        if (b == null) {
            return;
        }
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            final int flags = port == null ? 0 : (port.added ? STATE_ADDED : 0) | (port.ready ? STATE_READY : 0)
                | (port.guestConnected ? STATE_OPEN : 0);
            b.putByte(STATE_PORTS + nr, (byte) flags);
        }
        b.putByteVolatile(8, (byte) (driverReady ? 1 : 0));
    }

    @Override
    public void reset() {
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port == null) {
                continue;
            }
            setGuestConnected(port, false);
            port.ready = false;
            port.added = false;
            port.dropHeld();
            port.retry = false;
        }
        for (int i = 0; i < retryCount; i++) {
            retryQueue[i].retry = false;
            retryQueue[i] = null;
        }
        driverReady = false;
        drainRemovals();
        saveState();
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
        final Port port = ports.get(nr);
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
            if (ports.get(port.nr) == port) { // not removed meanwhile
                work += drainTx(port) + fillRx(port);
            }
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
        final Port port = ports.get(nr);
        if (port == null) {
            return 0; // removed: late events from its host side mean nothing
        }
        int work = 0;
        if ((bits & HostEvents.ADDED) != 0 && multiport && driverReady && !port.added) {
            port.added = true;
            saveState();
            queueControl(nr, ControlMessage.PORT_ADD, 1);
            work++;
        }
        if ((bits & HostEvents.RESIZE) != 0 && multiport && port.ready && port.isConsole()) {
            queueControl(nr, ControlMessage.RESIZE, 1);
            work++;
        }
        boolean drain = (bits & (HostEvents.SPACE | HostEvents.POLICY)) != 0;
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
            port.awaitingPeer = false;
        } else if (port.policy == OutputPolicy.DROP || port.isConsole()) {
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
        guestLog.log(Level.INFO, () -> name + ": " + port + " guest " + (open ? "opened" : "closed"));
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
        final int chains;
        try {
            chains = consumeTx(port, queue);
        } finally {
            // The end of the batch, before the used entries are published: the channel may still be reading the
            // guest's buffers (direct output) until it returns.
            port.channel.flushToHost();
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** The chains of one pass, completed (used entries written, not yet published) and counted. */
    private int consumeTx(final Port port, final Virtqueue queue) {
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
            final long total = chain.readableLength();
            if (chain.writableLength() > 0 && !port.badTxLogged) {
                // A transmitq buffer is device-readable only (virtio 1.x 5.3.6.1); writable parts are left alone.
                port.badTxLogged = true;
                final long writable = chain.writableLength();
                LOG.warning(() -> name + ": " + port + " transmit buffer " + chain.head() + " has " + writable
                    + " writable bytes; the device only reads a transmitq (logged once)");
            }
            if (port.isConsole() || port.hostConnected) {
                // A previous process may have delivered part of this chain (INFLIGHT_SHMFD): go on after it.
                final long start = port.holding ? port.heldOffset : queue.resumeOffset(chain.head());
                final long reached = writeChain(port.channel, queue, start);
                toHost += reached - start;
                if (reached < total) {
                    if (!port.isConsole()) {
                        // Backpressure: keep the chain, resume at this byte on hostSpaceAvailable.
                        port.holding = true;
                        port.heldHead = chain.head();
                        port.heldOffset = reached; // writeChain recorded it for a restarted process
                        break;
                    }
                    dropped += total - reached;
                    startDropping(port, Level.WARNING, "console host side is full");
                } else if (port.isConsole()) {
                    port.dropping = false;
                }
            } else if (port.policy == OutputPolicy.HOLD || port.awaitingPeer) {
                // Hold policy, or a restart on an inflight buffer whose peer has not come back yet: leave the
                // chain in the ring, untouched, until a host peer connects.
                break;
            } else {
                final long start = port.holding ? port.heldOffset : 0;
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
        return chains;
    }

    /** Write the chain's readable bytes from offset {@code start}; returns the offset reached. Each write that took
     *  bytes is recorded for a restarted process (a no-op without an inflight buffer). */
    private long writeChain(final PortChannel channel, final Virtqueue queue, final long start) {
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
                if (taken > 0 && reached < chain.readableLength()) {
                    queue.noteDelivered(chain.head(), reached);
                }
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
        // The channel first: it also takes host-side hand-overs there (see PortChannel), guest open or not.
        if (!port.channel.hasDataFromHost() || !port.guestConnected) {
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
                    guestLog.log(Level.WARNING, () -> name + ": control message of " + length + " bytes is shorter than "
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
        try {
            handleControlMessage(id, event, value);
        } finally {
            saveState();
        }
    }

    private void handleControlMessage(final int id, final int event, final int value) {
        switch (event) {
            case ControlMessage.DEVICE_READY:
                if (value != 1) {
                    guestLog.log(Level.WARNING, () -> name + ": driver reports DEVICE_READY(" + value + "): device setup failed");
                    return;
                }
                driverReady = true;
                int count = 0;
                for (int nr = 0; nr < maxPorts; nr++) {
                    final Port port = ports.get(nr);
                    if (port != null) {
                        port.ready = false;
                        port.added = true;
                        queueControl(port.nr, ControlMessage.PORT_ADD, 1);
                        count++;
                    }
                }
                final int added = count;
                guestLog.log(Level.INFO, () -> name + ": driver ready, adding " + added + " ports");
                return;
            case ControlMessage.PORT_READY: {
                final Port port = controlPort(id, event);
                if (port == null) {
                    return;
                }
                if (value != 1) {
                    guestLog.log(Level.WARNING, () -> name + ": driver failed to set up " + port + " (PORT_READY " + value + ")");
                    return;
                }
                port.ready = true;
                if (port.isConsole()) {
                    queueControl(port.nr, ControlMessage.CONSOLE_PORT, 1);
                    if (port.cols != 0 || port.rows != 0) {
                        queueControl(port.nr, ControlMessage.RESIZE, 1);
                    }
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
                guestLog.log(Level.WARNING, () -> name + ": unexpected control message " + ControlMessage.eventName(event)
                    + " (id " + Integer.toUnsignedString(id) + ", value " + value + ") from the driver; ignored");
        }
    }

    private Port controlPort(final int id, final int event) {
        final Port port = id >= 0 && id < maxPorts ? ports.get(id) : null;
        if (port == null) {
            guestLog.log(Level.WARNING, () -> name + ": Unexpected port id " + Integer.toUnsignedString(id) + " in "
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
            if (headIsStale()) {
                // Its port was removed after the message was queued; Linux parses every used control buffer
                // as a message, so never hand back one without a message in it.
                outbox.removeHead();
                continue;
            }
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

    /** A queued PORT_NAME or RESIZE whose port no longer exists (its payload is gone). */
    private boolean headIsStale() {
        final int event = outbox.headEvent();
        return (event == ControlMessage.PORT_NAME || event == ControlMessage.RESIZE) && ports.get(outbox.headId()) == null;
    }

    /** Encode the outbox head into {@link #message}; returns its length. */
    private int encodeHead() {
        final int id = outbox.headId();
        final int event = outbox.headEvent();
        int length = ControlMessage.encode(message, 0, id, event, outbox.headValue());
        if (event == ControlMessage.PORT_NAME || event == ControlMessage.RESIZE) {
            final Port port = ports.get(id);
            if (event == ControlMessage.PORT_NAME) {
                message.putBytes(length, port.nameBytes);
                length += port.nameBytes.length;
            } else {
                // Read at send time: several resizes before the driver posts a buffer send the latest size.
                final boolean rowsFirst = resizeOrder == ResizeOrder.ROWS_COLS;
                message.putShort(length, (short) (rowsFirst ? port.rows : port.cols), java.nio.ByteOrder.LITTLE_ENDIAN);
                message.putShort(length + 2, (short) (rowsFirst ? port.cols : port.rows),
                    java.nio.ByteOrder.LITTLE_ENDIAN);
                length += 4;
            }
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

    // ------------------------------------------------------------------ hot-unplug (worker)

    /** Tell the driver about removed ports: their pending guest output is discarded (as QEMU's remove_port does)
     *  and PORT_REMOVE sent to a driver that knew the port. */
    private int drainRemovals() {
        int work = 0;
        Removal removal;
        while ((removal = removals.poll()) != null) {
            work++;
            final Port port = removal.port;
            try {
                port.guestConnected = false; // no VSERPORT_CHANGE for an unplugged port, as in QEMU
                if (port.retry) {
                    port.retry = false;
                    removeFromRetries(port);
                }
                discardTx(port);
                port.channel.release();
                if (multiport && port.added) {
                    queueControl(port.nr, ControlMessage.PORT_REMOVE, 1);
                }
                port.added = false;
                port.ready = false;
                saveState();
            } finally {
                removal.done.complete(port.spec);
            }
        }
        return work;
    }

    private void removeFromRetries(final Port port) {
        int kept = 0;
        for (int i = 0; i < retryCount; i++) {
            if (retryQueue[i] != port) {
                retryQueue[kept++] = retryQueue[i];
            }
        }
        for (int i = kept; i < retryCount; i++) {
            retryQueue[i] = null;
        }
        retryCount = kept;
    }

    /** Use every chain waiting in the port's transmitq with length 0, counted as dropped. */
    private void discardTx(final Port port) {
        if (context == null) {
            return;
        }
        final Virtqueue queue = context.queue(port.txQueue);
        if (!queue.isReady()) {
            port.dropHeld();
            return;
        }
        long dropped = 0;
        int chains = 0;
        while (chains < queue.size() && queue.pop(chain)) {
            dropped += chain.readableLength() - (port.holding && chain.head() == port.heldHead ? port.heldOffset : 0);
            queue.addUsed(chain.head(), 0);
            chains++;
        }
        port.dropHeld();
        if (chains > 0) {
            queue.flushUsed();
            port.counters.addDropped(dropped);
            final long lost = dropped;
            LOG.info(() -> name + ": " + port + " removed with " + lost + " bytes of guest output discarded");
        }
    }

    private static final class Removal {
        final Port port;
        final CompletableFuture<PortSpec> done = new CompletableFuture<>();

        Removal(final Port port) {
            this.port = port;
        }
    }

    @Override
    public String toString() {
        return "ConsoleDevice{" + name + ", maxPorts=" + maxPorts + '}';
    }
}
