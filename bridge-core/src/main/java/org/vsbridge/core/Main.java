package org.vsbridge.core;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.CommandLine;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.systemd.Logs;
import org.vsbridge.core.systemd.Service;
import org.vsbridge.core.systemd.ServiceOptions;
import org.vsbridge.core.systemd.Shutdown;

/** The process entry point. */
public final class Main {

    /**
     * Exit status when the configuration was valid but opening it failed (a TCP port in use, a peer that is not
     * there yet, a missing certificate): sysexits' EX_TEMPFAIL, so systemd restarts the bridge, while a rejected
     * configuration (status 1) is final, and so is a unix socket path another process listens on.
     */
    static final int EXIT_START_FAILED = 75;


    private static final Logger LOG = Logger.getLogger(Main.class.getName());

    private Main() {
    }

    public static void main(final String[] args) {
        final ServiceOptions serviceOptions;
        final CommandLine.Parsed parsed;
        try {
            serviceOptions = ServiceOptions.extract(args);
            if (serviceOptions.printCapabilities()) {
                System.out.println(ServiceOptions.CAPABILITIES);
                return;
            }
            parsed = CommandLine.parse(serviceOptions.rest(), serviceOptions.partialCommandLine());
        } catch (final UsageException e) {
            System.err.println("vhost-serial-bridge: " + e.getMessage());
            System.exit(1);
            return;
        }
        if (parsed.help()) {
            System.out.print(CommandLine.USAGE + ServiceOptions.USAGE);
            return;
        }
        if (parsed.version()) {
            System.out.println("vhost-serial-bridge " + version());
            return;
        }
        final Service service;
        try {
            service = Service.configure(serviceOptions, parsed.config(),
                serviceOptions.logLevelGiven() ? parsed.logLevel() : null);
            service.installLogging();
            service.inheritSockets();
            if (serviceOptions.checkConfig()) {
                System.out.println(service.checkReport());
                System.exit(0);
                return;
            }
            service.check();
        } catch (final UsageException | java.io.IOException e) {
            System.err.println("vhost-serial-bridge: " + e.getMessage());
            System.exit(1);
            return;
        }
        final BridgeConfig config = service.config();
        final CountDownLatch stop = new CountDownLatch(1);
        // SIGTERM/SIGINT wake the main thread for a graceful stop with status 0; SIGHUP reopens the log file.
        // During start-up the main thread may wait (a server chardev with wait=on waits for its first client):
        // a stop request interrupts that wait, and the process stops there with status 0.
        final Thread mainThread = Thread.currentThread();
        final AtomicBoolean starting = new AtomicBoolean(true);
        Shutdown.installSignalHandlers(() -> {
            stop.countDown();
            if (starting.get()) {
                mainThread.interrupt();
            }
        }, Logs::reopen);
        final Bridge bridge = new Bridge(config, stop::countDown);
        bridge.inheritSockets(service.vhostFd(), service.qmpFds());
        try {
            bridge.start();
            starting.set(false);
        } catch (final Exception e) {
            starting.set(false);
            if (stop.getCount() == 0) {
                LOG.info("stopped during start-up");
                service.stop(bridge::close);
                System.exit(0);
                return;
            }
            startFailed(bridge, e);
            return;
        }
        startedOk(args, service, config, bridge, stop);
    }

    /**
     * One line in the log, no stack trace (it goes to the debug level): status 1 when a restart cannot help
     * ({@link StartRefused}), {@link #EXIT_START_FAILED} otherwise.
     */
    private static void startFailed(final Bridge bridge, final Exception e) {
        if (e instanceof StartRefused || e instanceof UsageException || e instanceof java.io.IOException) {
            LOG.severe(e.getMessage());
        } else {
            LOG.severe("start-up failed: " + e);
        }
        LOG.log(Level.FINE, "start-up failure", e);
        bridge.close();
        System.exit(e instanceof StartRefused ? 1 : EXIT_START_FAILED);
    }

    private static void startedOk(final String[] args, final Service service, final BridgeConfig config,
                                  final Bridge bridge, final CountDownLatch stop) {
        if (args.length == 0) {
            System.err.println("vhost-serial-bridge: embedded default running; start a guest with:\n"
                + qemuCommandLine(config, bridge.numQueues()));
        } else {
            LOG.info("QEMU:\n" + qemuCommandLine(config, bridge.numQueues()));
        }
        service.started(bridge.statusLine(), bridge::alive, bridge::statusLine);
        final Thread hook = new Thread(() -> service.stop(bridge::close), "vsb-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            stop.await();
        } catch (final InterruptedException e) {
            // a stop request that raced the end of start-up: stop is counted down already
            Thread.currentThread().interrupt();
        }
        LOG.info("shutting down");
        service.stop(bridge::close);
        System.exit(0);
    }

    /**
     * The QEMU command that attaches a guest to this bridge, one option group per line with shell continuations, so
     * that it can be pasted; what the user must fill in is in capitals, and notes are on lines of their own.
     */
    static String qemuCommandLine(final BridgeConfig config, final int numQueues) {
        final String socket = config.socketPath() != null ? config.socketPath().toAbsolutePath().toString() : "SOCKET";
        return String.join(" \\\n    ",
            "qemu-system-x86_64 -accel tcg -m 512M -nodefaults -display none",
            "-object memory-backend-memfd,id=mem,size=512M,share=on -machine q35,memory-backend=mem",
            "-chardev " + shellWord("socket,id=vu,path=" + socket),
            "-device vhost-user-test-device-pci,chardev=vu,virtio-id=3,num_vqs=" + numQueues + ",config_size=12",
            "-kernel BZIMAGE -initrd INITRD -append console=hvc0")
            + "\n# QEMU >= 10.2. QEMU 8.2-10.1 call the device vhost-user-device-pci and cannot create it unpatched."
            + "\n# BZIMAGE and INITRD: a Linux kernel with virtio_console, and its initramfs (or a disk of your own).";
    }

    /** A word the shell takes as it is: quoted only when it holds anything beyond a safe set. */
    static String shellWord(final String word) {
        return word.matches("[A-Za-z0-9_./,=:+@%-]+") ? word : "'" + word.replace("'", "'\\''") + "'";
    }

    static String version() {
        final String v = Main.class.getPackage().getImplementationVersion();
        return v != null ? v : "0.1.0-dev";
    }
}
