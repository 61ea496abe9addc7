package org.vsbridge.core;

import io.netty.channel.EventLoopGroup;
import java.io.IOException;
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
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortSpec;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.core.qmp.EventThrottle;
import org.vsbridge.core.qmp.QmpAddress;
import org.vsbridge.core.qmp.QmpServer;
import org.vsbridge.vhost.server.VhostUserServer;

/**
 * The assembled process: chardevs, one console device and its vhost-user server, the links between ports and
 * chardevs, and the QMP monitors. The only place where the device and the chardevs meet.
 */
public final class Bridge implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Bridge.class.getName());

    /** Guest-to-host ring of a console port: console output is completed at once, so this is its only buffer. */
    static final int CONSOLE_TO_HOST_RING = 1 << 20;
    static final int PORT_TO_HOST_RING = 512 * 1024;
    static final int FROM_HOST_RING = 256 * 1024;
    /** How long shutdown waits for chardevs to take the guest output still in the rings. */
    static final long FLUSH_BOUND_MS = 10_000;

    private final BridgeConfig config;
    private final Runnable onQuit;
    private final EventLoopGroup group;
    private final ScheduledExecutorService timer;
    private final Map<String, Chardev> chardevs = new LinkedHashMap<>();
    private final Map<String, PortLink> linksByChardev = new LinkedHashMap<>();
    private final List<QmpServer> monitors = new ArrayList<>();
    private final List<EventThrottle> portEvents = new ArrayList<>();
    private PortPlan plan;
    private ConsoleDevice device;
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

    public void start() throws UsageException, IOException {
        plan = PortPlan.of(config.devices(), config.maxPorts());
        final Map<String, ChardevOptions> options = new LinkedHashMap<>();
        for (final ChardevOptions o : config.chardevs()) {
            if (options.putIfAbsent(o.id(), o) != null) {
                throw new UsageException("Chardev with id '" + o.id() + "' already exists");
            }
        }
        for (final DeviceSpec d : config.devices()) {
            if (!options.containsKey(d.chardev())) {
                throw new UsageException("Property '" + d.driver() + ".chardev' can't find value '" + d.chardev() + "'");
            }
        }
        final ChardevFactory factory = new ChardevFactory(group);
        for (final ChardevOptions o : options.values()) {
            try {
                chardevs.put(o.id(), factory.create(o));
            } catch (final ChardevException e) {
                throw new UsageException("-chardev " + o.id() + ": " + e.getMessage());
            }
        }

        final Map<Integer, PortLink> links = new LinkedHashMap<>();
        for (int i = 0; i < plan.ports().size(); i++) {
            final PortSpec port = plan.ports().get(i);
            final PortLink link = new PortLink(port,
                port.console() ? CONSOLE_TO_HOST_RING : PORT_TO_HOST_RING, FROM_HOST_RING);
            links.put(port.nr(), link);
            linksByChardev.put(config.devices().get(i).chardev(), link);
        }
        device = new ConsoleDevice("vsb0", plan.maxPorts(), plan.ports(), links::get, this::guestConnected);
        for (int i = 0; i < plan.ports().size(); i++) {
            final PortSpec port = plan.ports().get(i);
            links.get(port.nr()).bind(device, chardevs.get(config.devices().get(i).chardev()));
        }

        for (final QmpAddress address : config.qmp()) {
            final QmpServer monitor = new QmpServer(group, address, QmpCommands.version(), this::quit);
            QmpCommands.registerAll(monitor, this);
            monitor.start();
            monitors.add(monitor);
            portEvents.add(new EventThrottle(monitor, "VSERPORT_CHANGE", TimeUnit.SECONDS.toNanos(1), timer));
        }
        for (final int fd : qmpFds) {
            final QmpServer monitor = new QmpServer(group, null, QmpCommands.version(), this::quit);
            QmpCommands.registerAll(monitor, this);
            monitor.startInherited(fd);
            monitors.add(monitor);
            portEvents.add(new EventThrottle(monitor, "VSERPORT_CHANGE", TimeUnit.SECONDS.toNanos(1), timer));
        }

        vhost = vhostFd >= 0 ? new VhostUserServer("vsb0", vhostFd, device)
            : new VhostUserServer("vsb0", config.socketPath(), device);
        vhost.start();
        LOG.info("vhost-user socket " + (config.socketPath() != null ? config.socketPath().toAbsolutePath() : "")
            + (vhostFd >= 0 ? " (inherited fd " + vhostFd + ")" : "") + " listening; " + plan.ports().size()
            + " port(s), max_nr_ports " + plan.maxPorts() + " (frontend num_vqs=" + numQueues() + ")");
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
            vhost.isQueueBroken(0);
            return true;
        } catch (final IOException e) {
            return false;
        }
    }

    /** One line for systemd's STATUS=: ports, guest opens, chardev and frontend connections. */
    public String statusLine() {
        int open = 0;
        for (final PortSpec port : plan.ports()) {
            if (device.guestConnected(port.nr())) {
                open++;
            }
        }
        int connected = 0;
        for (final Chardev chardev : chardevs.values()) {
            if (chardev.isOpen()) {
                connected++;
            }
        }
        return plan.ports().size() + " port(s), " + open + " open in the guest; chardevs " + connected + "/"
            + chardevs.size() + " connected; frontend connections so far " + vhost.connectionCount();
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

    ConsoleDevice device() {
        return device;
    }

    private void guestConnected(final PortSpec port, final boolean open) {
        LOG.info("port " + port.nr() + (port.name() != null ? " (" + port.name() + ")" : "") + ": guest "
            + (open ? "opened" : "closed") + " it");
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

    private void quit() {
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
        if (vhost != null) {
            // Stops the worker: nothing new enters the guest-to-host rings after this.
            vhost.close();
        }
        for (final QmpServer monitor : monitors) {
            monitor.close();
        }
        flushRings();
        for (final PortLink link : linksByChardev.values()) {
            link.unbind();
        }
        for (final Chardev chardev : chardevs.values()) {
            chardev.eventLoop().submit(chardev::close).syncUninterruptibly();
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        timer.shutdownNow();
    }
}
