package org.vsbridge.core;

import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevFactory;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.Transports;
import org.vsbridge.chardev.UnixSocketFile;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortSpec;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.DeviceGroup;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.core.qmp.EventThrottle;
import org.vsbridge.core.qmp.QmpAddress;
import org.vsbridge.core.qmp.QmpServer;
import org.vsbridge.vhost.server.VhostUserServer;

/**
 * The assembled process: chardevs, one console device per device group (each with its vhost-user server and
 * worker), the links between ports and chardevs, and the QMP monitors. The only place where the devices and the
 * chardevs meet.
 */
public final class Bridge implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Bridge.class.getName());

    /** Guest-to-host ring of a console port: console output is completed at once, so this is its only buffer. */
    /** How long shutdown waits for chardevs to take the guest output still in the rings. */
    static final long FLUSH_BOUND_MS = 10_000;

    private final BridgeConfig config;
    private final Runnable onQuit;
    private final EventLoopGroup group;
    private final ScheduledExecutorService timer;
    /** Changed at run time by chardev-add/-change/-remove from the chardev opener thread: concurrent. */
    private final Map<String, Chardev> chardevs = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<String, PortLink> linksByChardev = new java.util.concurrent.ConcurrentHashMap<>();
    /** --object / object-add: TLS credentials and authz objects that chardevs name. */
    private final org.vsbridge.core.objects.ObjectRegistry objects = new org.vsbridge.core.objects.ObjectRegistry();
    /** Opening a chardev blocks (bind, connect, wait): QMP's chardev commands run it here, off the event loop. */
    private final java.util.concurrent.ExecutorService chardevOpener = Executors.newSingleThreadExecutor(r -> {
        final Thread t = new Thread(r, "vsb-chardev-open");
        t.setDaemon(true);
        return t;
    });
    private ChardevFactory factory;
    private final List<QmpServer> monitors = new ArrayList<>();
    private final List<EventThrottle> portEvents = new ArrayList<>();
    private PortPlan plan;
    private final List<DeviceUnit> units = new ArrayList<>();
    private ConsoleDevice device;
    /** Console ports on the terminal follow its size. */
    private TerminalSize terminalSize;
    private VhostUserServer vhost;
    private int vhostFd = -1;
    private List<Integer> qmpFds = List.of();

    public Bridge(final BridgeConfig config, final Runnable onQuit) {
        this.config = config;
        this.onQuit = onQuit;
        this.group = Transports.newEventLoopGroup(1, "vsb-io");
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            final Thread t = new Thread(r, "vsb-timer");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Opens everything. A {@link StartRefused} says a restart cannot help (a live socket at one of the paths); a
     * {@link UsageException} is a one-line reason that may pass (a peer not there yet, a port in use).
     */
    public void start() throws UsageException, StartRefused, IOException {
        final List<DeviceGroup> groups = config.deviceGroups();
        final List<PortPlan> plans = config.plans();
        plan = plans.get(0);
        final Map<String, ChardevOptions> options = new LinkedHashMap<>();
        for (final ChardevOptions o : config.chardevs()) {
            options.put(o.id(), o);
        }
        for (final org.vsbridge.core.objects.ObjectSpec o : config.objects()) {
            try {
                objects.add(o);
            } catch (final org.vsbridge.core.objects.ObjectException e) {
                throw new UsageException("-object " + o.qomType() + ",id=" + o.id() + ": " + e.getMessage());
            }
        }
        factory = new ChardevFactory(group, ChardevCommands.lookups(this));
        for (final ChardevOptions o : options.values()) {
            try {
                chardevs.put(o.id(), factory.create(o));
            } catch (final ChardevException e) {
                if (e.getCause() instanceof UnixSocketFile.InUseException) {
                    throw new StartRefused("-chardev " + o.id() + ": " + e.getMessage());
                }
                throw new UsageException("-chardev " + o.id() + ": " + e.getMessage());
            }
        }

        if (config.vhost().emergencyChardev() != null && !chardevs.containsKey(config.vhost().emergencyChardev())) {
            throw new UsageException("--emergency-chardev: Chardev '" + config.vhost().emergencyChardev()
                + "' not found");
        }
        terminalSize = new TerminalSize(group.next());
        for (int g = 0; g < groups.size(); g++) {
            units.add(createUnit("vsb" + g, groups.get(g), plans.get(g)));
        }
        terminalSize.start();
        device = units.get(0).device;

        for (final QmpAddress address : config.qmp()) {
            final QmpServer monitor = new QmpServer(group, address, QmpCommands.version(), this::quit,
                config.limits().qmpMaxInput(), config.limits().qmpMaxOutput());
            QmpCommands.registerAll(monitor, this);
            try {
                monitor.start();
            } catch (final UnixSocketFile.InUseException e) {
                throw new StartRefused("QMP: " + e.getMessage());
            } catch (final IOException e) {
                throw new UsageException("QMP: " + e.getMessage());
            }
            monitors.add(monitor);
            portEvents.add(new EventThrottle(monitor, "VSERPORT_CHANGE", TimeUnit.SECONDS.toNanos(1), timer));
        }
        for (final int fd : qmpFds) {
            final QmpServer monitor = new QmpServer(group, null, QmpCommands.version(), this::quit,
                config.limits().qmpMaxInput(), config.limits().qmpMaxOutput());
            QmpCommands.registerAll(monitor, this);
            monitor.startInherited(fd);
            monitors.add(monitor);
            portEvents.add(new EventThrottle(monitor, "VSERPORT_CHANGE", TimeUnit.SECONDS.toNanos(1), timer));
        }

        for (final DeviceUnit unit : units) {
            final boolean inherited = unit == units.get(0) && vhostFd >= 0;
            final Path path = unit.group.socketPath();
            unit.server = inherited ? new VhostUserServer(unit.name, vhostFd, unit.device)
                : config.vhost().client()
                ? VhostUserServer.connecting(unit.name, path, config.vhost().reconnectMs(), unit.device)
                : new VhostUserServer(unit.name, path, unit.device);
            try {
                unit.server.start();
            } catch (final VhostUserServer.SocketInUseException e) {
                throw new StartRefused("vhost-user: " + e.getMessage());
            } catch (final IOException e) {
                throw new UsageException("vhost-user: " + e.getMessage());
            }
            LOG.info(unit.name + ": vhost-user socket " + (path != null ? path.toAbsolutePath() : "")
                + (inherited ? " (inherited fd " + vhostFd + ")" : "")
                + (config.vhost().client() && !inherited ? " (client mode)" : " listening") + "; "
                + unit.plan.ports().size() + " port(s), max_nr_ports " + unit.plan.maxPorts()
                + " (frontend num_vqs=" + unit.numQueues() + ")"
                + (config.vhost().packedRing() ? "; VIRTIO_F_RING_PACKED offered" : ""));
            if (unit.numQueues() > 256) {
                // SET_VRING_KICK/CALL/ERR name a queue in 8 bits; queues from 256 need our extension.
                LOG.warning(unit.name + ": max_nr_ports " + unit.plan.maxPorts() + " needs " + unit.numQueues()
                    + " queues; spec frontends such as QEMU can set up only 256 (127 ports): queues from 256 need "
                    + "the bridge's index extension, which only vsb-frontend --wide-index sends (README, Not "
                    + "supported yet; docs/frontends.md)");
            }
        }
        vhost = units.get(0).server;
    }

    /** One device group: links, the console device with the group's per-port options, chardevs bound. */
    private DeviceUnit createUnit(final String name, final DeviceGroup g, final PortPlan unitPlan)
        throws UsageException {
        final Map<Integer, PortLink> links = new LinkedHashMap<>();
        for (int i = 0; i < unitPlan.ports().size(); i++) {
            final PortSpec port = unitPlan.ports().get(i);
            final PortLink link = newLink(port);
            links.put(port.nr(), link);
            linksByChardev.put(g.devices().get(i).chardev(), link);
        }
        final ConsoleDevice unitDevice = new ConsoleDevice(name, unitPlan.maxPorts(), unitPlan.ports(), links::get,
            this::guestConnected);
        unitDevice.setResizeOrder(config.vhost().resizeOrder());
        unitDevice.setPackedRing(config.vhost().packedRing());
        final String emergency = config.vhost().emergencyChardev();
        if (emergency != null) {
            final Chardev sink = chardevs.get(emergency);
            unitDevice.setEmergencyOutput(b -> sink.eventLoop().execute(() -> sink.write(
                io.netty.buffer.Unpooled.wrappedBuffer(new byte[] {(byte) b}))));
        }
        for (int i = 0; i < unitPlan.ports().size(); i++) {
            final PortSpec port = unitPlan.ports().get(i);
            final DeviceSpec spec = g.devices().get(i);
            final String chardevId = spec.chardev();
            unitDevice.setOutputPolicy(port.nr(), spec.policy());
            if (spec.cols() != 0 || spec.rows() != 0) {
                unitDevice.resize(port.nr(), spec.cols(), spec.rows());
            } else if (spec.console() && TerminalSize.onTerminal(chardevId, config.chardevs())) {
                terminalSize.follow(unitDevice, port.nr());
            }
            try {
                // A mux hands each port its own view; any other chardev is its own view.
                links.get(port.nr()).bind(unitDevice, chardevs.get(chardevId).newFrontendView());
            } catch (final ChardevException e) {
                throw new UsageException("Property 'chardev' can't take value '" + chardevId + "': " + e.getMessage());
            }
        }
        return new DeviceUnit(name, g, unitPlan, unitDevice, links);
    }

    /** The buffers between a port and its chardev, sized by the configured limits. */
    PortLink newLink(final PortSpec port) {
        final org.vsbridge.core.cli.Limits limits = config.limits();
        return new PortLink(port, port.console() ? limits.consoleToHost() : limits.portToHost(),
            limits.portFromHost());
    }

    /** The device a port link belongs to, or null (removed). */
    DeviceUnit unitOf(final PortLink link) {
        for (final DeviceUnit unit : units) {
            if (unit.links.get(link.port().nr()) == link) {
                return unit;
            }
        }
        return null;
    }

    /** Every console device, in device-group order. */
    List<DeviceUnit> units() {
        return units;
    }

    /** Register a port's link under its chardev (hot-plug); null when removed. */
    void setLink(final String chardevId, final PortLink link) {
        if (link == null) {
            linksByChardev.remove(chardevId);
        } else {
            linksByChardev.put(chardevId, link);
        }
    }

    /** Emit an event on every monitor (DEVICE_DELETED). */
    void emit(final String event, final com.fasterxml.jackson.databind.node.ObjectNode data) {
        for (final QmpServer monitor : monitors) {
            monitor.emit(event, data);
        }
    }

    /**
     * Serve on inherited listening sockets (systemd socket activation, {@code --fd}): {@code vhostFd} (or -1)
     * instead of binding the socket path, and a QMP monitor on each of {@code qmpFds} besides the configured ones.
     * Before {@link #start()}.
     */
    public void inheritSockets(final int vhostFd, final List<Integer> qmpFds) {
        this.vhostFd = vhostFd;
        this.qmpFds = List.copyOf(qmpFds);
    }

    /** Watchdog probe: the event loops run tasks and the device worker answers a command. Any thread. */
    public boolean alive() {
        if (!org.vsbridge.core.systemd.Liveness.eventLoopsAlive(group, 2000)) {
            return false;
        }
        try {
            for (final DeviceUnit unit : units) {
                unit.server.isQueueBroken(0);
            }
            return true;
        } catch (final IOException e) {
            return false;
        }
    }

    /** One line for systemd's STATUS=: ports, guest opens, chardev and frontend connections. */
    public String statusLine() {
        int open = 0;
        int portCount = 0;
        int connections = 0;
        for (final DeviceUnit unit : units) {
            for (final PortSpec port : unit.device.ports()) {
                portCount++;
                if (unit.guestConnected(port)) {
                    open++;
                }
            }
            connections += unit.server.connectionCount();
        }
        int connected = 0;
        for (final Chardev chardev : chardevs.values()) {
            if (chardev.isOpen()) {
                connected++;
            }
        }
        return (units.size() > 1 ? units.size() + " devices, " : "") + portCount + " port(s), " + open
            + " open in the guest; chardevs " + connected + "/" + chardevs.size()
            + " connected; frontend connections so far " + connections;
    }

    /** Give the chardevs what the guest-to-host rings still hold, within {@link #FLUSH_BOUND_MS}. */
    private void flushRings() {
        final List<CompletableFuture<Void>> pending = new ArrayList<>();
        for (final PortLink link : linksByChardev.values()) {
            pending.add(link.drainToChardev());
        }
        try {
            CompletableFuture.allOf(pending.toArray(new CompletableFuture[0]))
                .get(FLUSH_BOUND_MS, TimeUnit.MILLISECONDS);
        } catch (final TimeoutException e) {
            LOG.warning("shutdown: chardevs did not take all buffered guest output within " + FLUSH_BOUND_MS + " ms");
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (final ExecutionException e) {
            LOG.warning("shutdown: flushing guest output failed: " + e.getCause());
        }
    }

    /** Queues the frontend must create: 2 * (max_nr_ports + 1). */
    public int numQueues() {
        return 2 * (plan.maxPorts() + 1);
    }

    public BridgeConfig config() {
        return config;
    }

    Map<String, Chardev> chardevs() {
        return chardevs;
    }

    /** The port a chardev is wired to, or null. */
    PortLink linkOf(final String chardevId) {
        return linksByChardev.get(chardevId);
    }

    org.vsbridge.core.objects.ObjectRegistry objects() {
        return objects;
    }

    ChardevFactory factory() {
        return factory;
    }

    java.util.concurrent.ExecutorService chardevOpener() {
        return chardevOpener;
    }

    ConsoleDevice device() {
        return device;
    }

    private void guestConnected(final PortSpec port, final boolean open) {
        // The device logs the change (rate-limited: the guest controls how often it happens).
        if (port.id() == null) {
            return;
        }
        for (final EventThrottle events : portEvents) {
            final var data = QmpCommands.json().createObjectNode();
            data.put("id", port.id());
            data.put("open", open);
            events.emit(port.id(), data);
        }
    }

    /** QMP's {@code quit}, and C-a x on the terminal's console: SHUTDOWN on every monitor, then stop. */
    void quit() {
        for (final QmpServer monitor : monitors) {
            final var data = QmpCommands.json().createObjectNode();
            data.put("guest", false);
            data.put("reason", "host-qmp-quit");
            monitor.emit("SHUTDOWN", data);
        }
        // Let the reply and the event reach the client before the process goes.
        timer.schedule(onQuit, 50, TimeUnit.MILLISECONDS);
    }

    @Override
    public void close() {
        if (terminalSize != null) {
            terminalSize.close();
        }
        for (final DeviceUnit unit : units) {
            if (unit.server != null) {
                // Stops the worker: nothing new enters the guest-to-host rings after this.
                unit.server.close();
            }
        }
        for (final QmpServer monitor : monitors) {
            monitor.close();
        }
        flushRings();
        for (final PortLink link : linksByChardev.values()) {
            link.unbind();
        }
        final List<CompletableFuture<Void>> closed = new ArrayList<>();
        for (final Chardev chardev : chardevs.values()) {
            closed.add(chardev.eventLoop().submit(chardev::closeFlushed).syncUninterruptibly().getNow());
        }
        try {
            // Sockets close once the peer took their queued output: wait for it, within the bound.
            CompletableFuture.allOf(closed.toArray(new CompletableFuture[0])).get(FLUSH_BOUND_MS, TimeUnit.MILLISECONDS);
        } catch (final TimeoutException | ExecutionException e) {
            LOG.warning("shutdown: chardev output not fully delivered within " + FLUSH_BOUND_MS + " ms");
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        timer.shutdownNow();
        chardevOpener.shutdownNow();
    }
}
