package org.vsbridge.console;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.function.IntFunction;
import java.util.logging.Level;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * A multiport virtio-console device (virtio spec, "Console Device"), behaving toward the guest like QEMU's
 * virtio-serial bus with the Linux {@code virtio_console} driver in mind. This class is the device's face: the
 * public API, the {@link VirtioDevice} callbacks and which part serves which queue. The parts, package-private:
 * {@link PortRegistry} (which ports exist), {@link ControlChannel} (the control queues), {@link TransmitPath}
 * (guest to host), {@link ReceivePath} (host to guest), {@link PortEvents} (host events and hot-unplug on the
 * worker), {@link EmergencyOutput} (emerg_wr), {@link StateRecord} (driver state across a restart) and
 * {@link Retries} (queues owed a pass), sharing a {@link DeviceCore}.
 *
 * <p>Threading: the control methods ({@link #deviceFeatures()}, {@link #readConfig} ...) answer from
 * immutable or copy-on-write state; the queue callbacks run on the engine's worker, which owns every port's
 * state, and check that they do (an {@link IllegalStateException} otherwise). The host side
 * ({@link #hostConnected}, {@link #hostDataAvailable}, {@link #hostSpaceAvailable}) and the management calls
 * ({@link #addPort}, {@link #removePort}, {@link #resize}, {@link #setOutputPolicy}) may come from any thread:
 * they post bits into {@link HostEvents} (or a removal into a queue) and wake the worker, which sends the
 * control messages (PORT_ADD, PORT_REMOVE, RESIZE).
 *
 * <p>Flow control: guest output that the host side cannot take is held in its transmitq until
 * {@link #hostSpaceAvailable}; host input is read only into receive buffers the guest posted. See
 * {@link TransmitPath} for the two cases that drop.
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

    private final String name;
    private final int maxPorts;
    private final PortRegistry ports;
    private final DeviceCore core;
    private final HostEvents hostEvents;
    private final Retries retries;
    private final ReceivePath rx;
    private final TransmitPath tx;
    private final StateRecord state;
    private final ControlChannel control;
    private final PortEvents portEvents;
    private final EmergencyOutput emergency;
    private final java.util.function.ToIntFunction<Port> retryPass = this::retryPass;
    /** Copy-on-write config space: cols/rows change with port 0's size. */
    private volatile byte[] config;
    /** Keeps port 0's size and the config space bytes from two concurrent resizes in step. */
    private final Object configLock = new Object();
    private volatile boolean packedRing;

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
        this.ports = new PortRegistry(name, maxPorts, ports, channels);
        this.maxPorts = maxPorts;
        this.core = new DeviceCore(name, this.ports, Objects.requireNonNull(events, "events"));
        this.config = ConsoleConfig.encode(maxPorts);
        this.hostEvents = new HostEvents(maxPorts);
        this.retries = new Retries(maxPorts);
        this.rx = new ReceivePath(core, retries);
        this.tx = new TransmitPath(core, retries);
        this.state = new StateRecord(core);
        this.control = new ControlChannel(core, retries, rx, state);
        this.portEvents = new PortEvents(core, hostEvents, control, tx, rx, state, retries);
        this.emergency = new EmergencyOutput(core);
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
        return ports.specs();
    }

    /** Counters of configured port {@code nr}. */
    public PortCounters counters(final int nr) {
        return ports.require(nr).counters;
    }

    /** Whether the guest has port {@code nr} open (PORT_OPEN 1; without MULTIPORT: its queues started). */
    public boolean guestConnected(final int nr) {
        return ports.require(nr).guestConnected;
    }

    /** The host side of port {@code nr} connected or disconnected (chardev opened/closed). Any thread. */
    public void hostConnected(final int nr, final boolean connected) {
        if (!ports.existsForHost(nr)) {
            return;
        }
        hostEvents.postConnection(nr, connected);
        core.wake();
    }

    /** Host-to-guest data appeared in port {@code nr}'s channel. Any thread. */
    public void hostDataAvailable(final int nr) {
        if (!ports.existsForHost(nr)) {
            return;
        }
        hostEvents.post(nr, HostEvents.DATA);
        core.wake();
    }

    /** Port {@code nr}'s guest-to-host channel has room again after a short write. Any thread. */
    public void hostSpaceAvailable(final int nr) {
        if (!ports.existsForHost(nr)) {
            return;
        }
        hostEvents.post(nr, HostEvents.SPACE);
        core.wake();
    }

    /**
     * Worker: watch {@code fd} (the host side of port {@code nr}) until it is readable once; then the port's channel
     * gets {@link PortChannel#hostInputReady()} and the port's receive buffers are filled. False when the engine
     * cannot watch it (the channel then reads through its own buffers).
     */
    public boolean watchHostInput(final int nr, final int fd) {
        core.worker.check("watchHostInput");
        final DeviceContext c = core.context;
        return c != null && c.watchOnce(fd, DeviceContext.FD_READABLE, nr << 1);
    }

    /**
     * Worker: watch {@code fd} (the host side of port {@code nr}) until it is writable once; then the port's channel
     * gets {@link PortChannel#hostOutputReady()} and the port's transmit buffers are taken again. False when the
     * engine cannot watch it.
     */
    public boolean watchHostOutput(final int nr, final int fd) {
        core.worker.check("watchHostOutput");
        final DeviceContext c = core.context;
        return c != null && c.watchOnce(fd, DeviceContext.FD_WRITABLE, (nr << 1) | 1);
    }

    /** Any thread: stop watching {@code fd} (before it is closed). */
    public void unwatchHostFd(final int fd) {
        final DeviceContext c = core.context;
        if (c != null) {
            c.unwatch(fd);
        }
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
        final PortSpec spec = ports.add(requested, channels, hostEvents).spec;
        DeviceCore.LOG.info(() -> name + ": port " + spec.nr() + " added"
            + (spec.id() != null ? " (" + spec.id() + ")" : ""));
        core.wake();
        return spec;
    }

    /**
     * Hot-remove port {@code nr} (QMP {@code device_del}): from now on the device no longer knows it; the worker
     * discards guest output still in its transmitq and sends PORT_REMOVE to a driver that was told about it.
     * The returned future completes once the worker has done so (at once when no worker runs); only then is the
     * port's channel no longer touched.
     */
    public CompletableFuture<PortSpec> removePort(final int nr) {
        final Port port = ports.remove(nr);
        final CompletableFuture<PortSpec> done = portEvents.postRemoval(port);
        DeviceCore.LOG.info(() -> name + ": " + port + " removed");
        return done;
    }

    /**
     * Set the console size of console port {@code nr} (VIRTIO_CONSOLE_F_SIZE): sent as RESIZE once the port is
     * ready (now, or after its PORT_READY); for port 0 also stored in config space and, for a driver without
     * MULTIPORT, announced with a config change through the backend request channel.
     */
    public void resize(final int nr, final int cols, final int rows) {
        resize(nr, new ConsoleSize(cols, rows));
    }

    /** {@link #resize(int, int, int)} with the size as one value. */
    public void resize(final int nr, final ConsoleSize size) {
        Objects.requireNonNull(size, "size");
        final Port port = ports.require(nr);
        if (!port.isConsole()) {
            throw new IllegalArgumentException("port " + nr + " is not a console port (virtconsole)");
        }
        if (nr == 0) {
            synchronized (configLock) {
                port.size = size;
                config = ConsoleConfig.encode(maxPorts, size.cols(), size.rows());
            }
            final DeviceContext c = core.context;
            if (!core.multiport && c != null && !c.configChanged()) {
                DeviceCore.LOG.fine(() -> name + ": port 0 resized without a backend request channel: no config"
                    + " change sent");
            }
        } else {
            port.size = size;
        }
        hostEvents.post(nr, HostEvents.RESIZE);
        core.wake();
    }

    /** Port {@code nr}'s console size ({@link ConsoleSize#UNSET} when not set). */
    public ConsoleSize consoleSize(final int nr) {
        return ports.require(nr).size;
    }

    /** Port {@code nr}'s console size as {@code {cols, rows}} (0 = not set), both from one resize. */
    public int[] size(final int nr) {
        final ConsoleSize size = consoleSize(nr);
        return new int[] {size.cols(), size.rows()};
    }

    /** What port {@code nr} does with guest output while no host peer is connected (consoles always take it). */
    public void setOutputPolicy(final int nr, final OutputPolicy policy) {
        ports.require(nr).policy = Objects.requireNonNull(policy, "policy");
        hostEvents.post(nr, HostEvents.POLICY);
        core.wake();
    }

    public OutputPolicy outputPolicy(final int nr) {
        return ports.require(nr).policy;
    }

    /** Offer VIRTIO_F_RING_PACKED besides {@link #FEATURES} (default: no, split rings only). Set it before the
     *  vhost-user server starts: a frontend connection reads the offer when it begins. */
    public void setPackedRing(final boolean offer) {
        packedRing = offer;
    }

    /** Field order of RESIZE payloads (default: what Linux reads). */
    public void setResizeOrder(final ResizeOrder order) {
        control.setResizeOrder(order);
    }

    /**
     * Where emerg_wr bytes go (VIRTIO_CONSOLE_F_EMERG_WRITE): {@code sink} receives each byte on the vhost-user
     * control thread and must not block; null (default) sends them into the channel of the emergency port.
     */
    public void setEmergencyOutput(final IntConsumer sink) {
        emergency.setSink(sink);
    }

    /** The port whose channel receives emerg_wr bytes when no sink is set; -1 (default): port 0, else the
     *  lowest-numbered console port. */
    public void setEmergencyPort(final int nr) {
        emergency.setPort(nr);
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
            DeviceCore.LOG.log(Level.FINE, "{0}: ignoring a driver write of {1} config bytes at offset {2} (read-only)",
                new Object[] {name, length, offset});
            return;
        }
        emergency.write(src[srcOffset]);
    }

    // ------------------------------------------------------------------ VirtioDevice: worker

    /** The calling thread is the device's worker from now on. */
    @Override
    public void attach(final DeviceContext deviceContext) {
        Objects.requireNonNull(deviceContext, "context");
        core.worker.bind();
        core.context = deviceContext;
    }

    @Override
    public void featuresAcked(final long ackedFeatures) {
        core.worker.check("featuresAcked");
        final boolean wasMultiport = core.multiport;
        final boolean multiport = (ackedFeatures & VIRTIO_CONSOLE_F_MULTIPORT) != 0;
        core.multiport = multiport;
        if (multiport != wasMultiport || !multiport) {
            DeviceCore.LOG.info(() -> name + ": driver acked features 0x" + Long.toHexString(ackedFeatures)
                + (multiport ? " (multiport)" : " (no MULTIPORT: one console port on queues 0/1)"));
        }
        if (!multiport && ports.get(0) == null) {
            DeviceCore.LOG.warning(() -> name + ": driver did not ack MULTIPORT and no port 0 is configured:"
                + " the guest's only console has no host side");
        }
    }

    @Override
    public void queueStarted(final int index) {
        core.worker.check("queueStarted");
        final Port port0 = ports.get(0);
        if (!core.multiport && (index == QueueLayout.PORT0_RX || index == QueueLayout.PORT0_TX) && port0 != null) {
            // Without MULTIPORT there is no PORT_OPEN: the single console is open once its queues run (QEMU
            // does this at DRIVER_OK).
            core.setGuestConnected(port0, true);
        }
        final Port port = ports.get(QueueLayout.portOf(index));
        if (port != null && QueueLayout.isRx(index)) {
            port.channel.hostInputServed(true);
        }
        if (port != null && !QueueLayout.isRx(index)) {
            // INFLIGHT_SHMFD: record how far guest output got, and count it as taken only once the host peer has
            // it, so that a bridge started on the same buffer after this one died neither loses nor repeats it.
            final Virtqueue queue = core.queue(index);
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
        core.worker.check("queueStopped");
        final Port port = ports.get(QueueLayout.portOf(index));
        if (port != null && QueueLayout.isRx(index)) {
            port.channel.hostInputServed(false); // no worker may read for it until the queue runs again
        }
        if (port != null && !QueueLayout.isRx(index)) {
            // The held chain was never advanced: the next start presents it again from its first byte.
            port.dropHeld();
        }
    }

    @Override
    public int queueKicked(final int index) {
        core.worker.check("queueKicked");
        return serviceQueue(index);
    }

    @Override
    public int fdReady(final int token, final int events) {
        core.worker.check("fdReady");
        final Port port = ports.get(token >>> 1);
        if (port == null || !core.portActive(port)) {
            return 0; // a watch of a port just removed
        }
        if ((token & 1) != 0) {
            port.channel.hostOutputReady();
            return tx.drain(port);
        }
        port.channel.hostInputReady();
        return rx.fill(port);
    }

    @Override
    public int doWork() {
        if (core.context == null) {
            return 0;
        }
        core.worker.check("doWork");
        int work = 0;
        if (portEvents.hasPending()) {
            work += portEvents.drain();
        }
        if (emergency.hasPending()) {
            work += emergency.drain();
        }
        if (!retries.isEmpty()) {
            work += serviceRetries();
        }
        if (core.multiport && control.hasPending()) {
            work += control.send();
        }
        return work;
    }

    /** See {@link StateRecord}. */
    @Override
    public void stateBuffer(final UnsafeBuffer buffer) {
        core.worker.check("stateBuffer");
        state.attach(buffer);
    }

    @Override
    public void reset() {
        core.worker.check("reset");
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port == null) {
                continue;
            }
            core.setGuestConnected(port, false);
            port.ready = false;
            port.added = false;
            port.dropHeld();
        }
        retries.clear();
        core.driverReady = false;
        portEvents.drainRemovals();
        state.save();
        control.reset();
    }

    @Override
    public void statusChanged(final int status) {
        core.worker.check("statusChanged");
        if (status == 0) {
            reset();
        }
    }

    // ------------------------------------------------------------------ queue dispatch (worker)

    private int serviceQueue(final int index) {
        if (core.context == null) {
            return 0;
        }
        if (index == QueueLayout.CONTROL_RX) {
            return core.multiport ? control.send() : 0;
        }
        if (index == QueueLayout.CONTROL_TX) {
            return core.multiport ? control.receive() : 0;
        }
        final int nr = QueueLayout.portOf(index);
        if (nr < 0 || nr >= maxPorts || (nr != 0 && !core.multiport)) {
            return 0;
        }
        final Port port = ports.get(nr);
        if (port == null) {
            // No PORT_ADD was sent for it, so a well-behaved driver never uses these queues.
            return 0;
        }
        return QueueLayout.isRx(index) ? rx.fill(port) : tx.drain(port);
    }

    private int serviceRetries() {
        int work = 0;
        if (retries.takeControlTx()) {
            work += control.receive();
        }
        return work + retries.drainPorts(retryPass);
    }

    private int retryPass(final Port port) {
        if (ports.get(port.nr) != port) {
            return 0; // removed meanwhile
        }
        return tx.drain(port) + rx.fill(port);
    }

    @Override
    public String toString() {
        return "ConsoleDevice{" + name + ", maxPorts=" + maxPorts + '}';
    }
}
