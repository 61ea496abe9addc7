package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.DeviceGroup;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.config.ConfigFile;

/**
 * The process as a service, around the bridge: the configuration (file merged with the command line), logs,
 * inherited sockets ({@code --fd}, socket activation), and the life cycle the service manager sees
 * ({@code READY=1}, {@code STATUS=}, {@code WATCHDOG=1}, {@code STOPPING=1}, exit 0 within a bound).
 *
 * <p>Order of use in {@code main}: {@link #configure}, {@link #installLogging()}, {@link #inheritSockets()},
 * {@link #check()}, start the bridge with {@link #vhostFd()} / {@link #qmpFds()}, {@link #started},
 * then on SIGTERM or QMP {@code quit} {@link #stop(Runnable)}.
 */
public final class Service {

    private static final Logger LOG = Logger.getLogger(Service.class.getName());
    /** Status lines are polled this often; WATCHDOG_USEC comes from the unit. */
    private static final Duration STATUS_PERIOD = Duration.ofSeconds(2);

    private final ServiceOptions options;
    private BridgeConfig config;
    private final Level logLevel;
    private final Path logFile;
    private int vhostFd = -1;
    private List<Integer> qmpFds = List.of();
    private SdNotify notify = SdNotify.disabled();
    private Shutdown shutdown;
    private Watchdog watchdog;
    private StatusReporter status;

    private Service(final ServiceOptions options, final BridgeConfig config, final Level logLevel, final Path logFile) {
        this.options = options;
        this.config = config;
        this.logLevel = logLevel;
        this.logFile = logFile;
    }

    /**
     * Merges the configuration file (if any) under the command line.
     *
     * @param commandLine      what {@code CommandLine} parsed (partial when a file or {@code --fd} is given)
     * @param commandLineLevel {@code --log-level}, or null when not given
     */
    public static Service configure(final ServiceOptions options, final BridgeConfig commandLine,
                                    final Level commandLineLevel) throws UsageException {
        if (options.fd() >= 0 && commandLine.socketPath() != null) {
            throw new UsageException("--fd and --socket-path are incompatible (vhost-user backend conventions)");
        }
        BridgeConfig config = commandLine;
        Level fileLevel = null;
        Path fileLog = null;
        if (options.config() != null) {
            final ConfigFile.Settings file = ConfigFile.read(options.config());
            config = ConfigFile.merge(file.config(), commandLine);
            fileLevel = file.logLevel();
            fileLog = file.logFile();
        }
        return new Service(options, config, ConfigFile.pick(commandLineLevel, fileLevel, Level.INFO),
            ConfigFile.pick(options.logFile(), fileLog, null));
    }

    /**
     * The merged configuration the bridge runs. After {@link #inheritSockets()} its socket path is the path the
     * inherited vhost-user socket is bound to, when it has one (the bridge still serves the fd, never that path).
     */
    public BridgeConfig config() {
        return config;
    }

    public Level logLevel() {
        return logLevel;
    }

    /**
     * Logs to the log file, or stderr (journal-aware); {@code --check-config} always logs to stderr. When no log
     * file is given and stderr is the terminal of a {@code stdio} chardev (the guest's console), log lines would
     * land in the middle of the console: they go to {@link #CONSOLE_LOG} instead, said in one line on stderr now,
     * before the terminal goes raw.
     */
    public void installLogging() throws IOException {
        Path file = options.checkConfig() ? null : logFile;
        if (file == null && !options.checkConfig() && stdioOnTerminal()) {
            file = CONSOLE_LOG;
            System.err.println("vhost-serial-bridge: this terminal is the guest's console; logs go to "
                + CONSOLE_LOG.toAbsolutePath());
        }
        Logs.install(logLevel, file);
    }

    /** The log file when stdio is the console and no log file is given: in the current directory. */
    public static final Path CONSOLE_LOG = Path.of("vhost-serial-bridge.log");

    private boolean stdioOnTerminal() {
        return config.chardevs().stream().anyMatch(c -> c.kind() == org.vsbridge.chardev.ChardevKind.STDIO)
            && org.vsbridge.libc.Tty.isTerminal(2);
    }

    /**
     * Takes the sockets handed to this process: {@code --fd N}, or systemd's {@code LISTEN_FDS}. Also opens the
     * notify socket and installs the signal handlers' counterpart ({@link #stop}).
     */
    public void inheritSockets() throws UsageException {
        final ListenFds activated = ListenFds.fromEnvironment();
        if (options.fd() >= 0) {
            if (activated.vhostUser().isPresent()) {
                throw new UsageException("--fd " + options.fd() + " given, and systemd passed a vhost-user socket too");
            }
            try {
                SocketFds.checkListening(options.fd(), "--fd " + options.fd(), true);
            } catch (final IOException e) {
                throw new UsageException(e.getMessage());
            }
            vhostFd = options.fd();
        } else if (activated.vhostUser().isPresent()) {
            vhostFd = activated.vhostUser().getAsInt();
            if (config.socketPath() != null) {
                LOG.info("socket-path " + config.socketPath() + " not used: serving the vhost-user socket systemd "
                    + "passed (fd " + vhostFd + ")");
            }
        }
        if (vhostFd >= 0) {
            // Name the inherited socket by its path where it has one (logs, the QEMU hint); the fd is served.
            final String bound = SocketFds.unixPath(vhostFd);
            if (bound != null) {
                config = config.withSocketPath(Path.of(bound));
            }
        }
        qmpFds = activated.qmp();
        try {
            notify = SdNotify.fromEnvironment();
        } catch (final IOException e) {
            throw new UsageException(e.getMessage());
        }
        shutdown = new Shutdown(notify, Shutdown.DEFAULT_BOUND);
    }

    /** The inherited vhost-user listening socket, or -1 (listen on {@code config().socketPath()}). */
    public int vhostFd() {
        return vhostFd;
    }

    /** Inherited QMP listening sockets, served besides the configured monitors. */
    public List<Integer> qmpFds() {
        return qmpFds;
    }

    /**
     * Validates the merged configuration as the bridge will run it, including what it alone decides against
     * opening it ({@link BridgeConfig#checkOpenable}): such a configuration exits 1, never the "retry me" status.
     */
    public List<PortPlan> check() throws UsageException {
        final List<PortPlan> plans = ConfigFile.check(config, vhostFd >= 0);
        config.checkOpenable(vhostFd >= 0);
        return plans;
    }

    /**
     * {@code --check-config}: the verdict for stdout, or a UsageException with the reason. A configuration without
     * a socket path passes: under its socket unit systemd supplies the socket.
     */
    public String checkReport() throws UsageException {
        final boolean fromSystemd = config.socketPath() == null && vhostFd < 0;
        final List<PortPlan> plans = ConfigFile.check(config, true);
        config.checkOpenable(vhostFd >= 0);
        final String socket = vhostFd >= 0 ? "fd " + vhostFd
            : fromSystemd ? "(from socket activation: FileDescriptorName=" + ListenFds.VHOST_USER + ")"
            : config.socketPath().toString();
        final List<String> lines = new ArrayList<>();
        lines.add("configuration OK: " + ConfigFile.describe(config, plans.get(0), socket));
        final List<DeviceGroup> groups = config.deviceGroups();
        for (int g = 0; g < groups.size(); g++) {
            final PortPlan plan = plans.get(g);
            if (g > 0) {
                lines.add("device vsb" + g + ": vhost-user socket " + groups.get(g).socketPath() + "; "
                    + plan.ports().size() + " port(s), max_nr_ports " + plan.maxPorts() + " (frontend num_vqs="
                    + 2 * (plan.maxPorts() + 1) + ")");
            }
            for (int i = 0; i < plan.ports().size(); i++) {
                final var p = plan.ports().get(i);
                final DeviceSpec d = groups.get(g).devices().get(i);
                lines.add("  port " + p.nr() + ": " + d.driver() + " chardev=" + d.chardev()
                    + (p.name() != null ? " name=" + p.name() : "") + (p.id() != null ? " id=" + p.id() : ""));
            }
        }
        return String.join("\n", lines);
    }

    /**
     * The bridge is up: every socket listens and every chardev that must wait is ready. Sends {@code READY=1}
     * with {@code initialStatus}, starts the watchdog (pinging while {@code alive} passes) and the status
     * line updates.
     */
    public void started(final String initialStatus, final BooleanSupplier alive, final Supplier<String> statusLine) {
        notify.ready(initialStatus);
        watchdog = Watchdog.fromEnvironment(notify, alive);
        status = new StatusReporter(notify, statusLine, initialStatus, STATUS_PERIOD);
    }

    /**
     * Graceful stop: {@code STOPPING=1}, then {@code close} (stop rings, flush to chardevs, close sockets) within
     * {@link Shutdown#DEFAULT_BOUND}; halts with status 1 if it hangs. Idempotent.
     */
    public void stop(final Runnable close) {
        if (shutdown == null) {
            close.run();
            return;
        }
        shutdown.run(() -> {
            if (status != null) {
                status.close();
            }
            if (watchdog != null) {
                watchdog.close();
            }
            close.run();
        });
    }
}
