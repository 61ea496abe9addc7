package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.libc.Proc;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * A small service run as a child JVM by the tests, so that the systemd pieces meet real process boundaries:
 * inherited fds, environment variables, signals, stderr.
 */
public final class ServiceProbe {

    private static final Logger LOG = Logger.getLogger(ServiceProbe.class.getName());

    private ServiceProbe() {
    }

    public static void main(final String[] args) throws Exception {
        switch (args[0]) {
            case "activation" -> activation();
            case "signals" -> signals(Path.of(args[1]), args.length > 2 ? Path.of(args[2]) : null);
            case "journal" -> journal();
            default -> throw new IllegalArgumentException(args[0]);
        }
    }

    /** Reports the inherited sockets, then answers one connection on each with the fd's name. */
    private static void activation() throws IOException {
        final ListenFds fds;
        try {
            fds = ListenFds.fromEnvironment();
        } catch (final UsageException e) {
            System.out.println("error: " + e.getMessage());
            System.exit(1);
            return;
        }
        System.out.println("fds: " + fds);
        System.out.println("C env LISTEN_FDS after: " + Proc.getenv("LISTEN_FDS"));
        System.out.flush();
        try (SdNotify notify = SdNotify.fromEnvironment()) {
            notify.ready(fds.fds().size() + " sockets");
        }
        for (final ListenFds.NamedFd f : fds.fds()) {
            final int conn = Sockets.accept(f.fd());
            final byte[] name = (f.name() + "\n").getBytes(StandardCharsets.US_ASCII);
            try {
                Sockets.sendMsg(conn, name, 0, name.length);
            } finally {
                Sys.closeQuietly(conn);
            }
        }
    }

    /** Runs until SIGTERM/SIGINT as the bridge's Main would; the close action leaves a mark in {@code marker}. */
    private static void signals(final Path marker, final Path logFile) throws IOException, InterruptedException {
        Logs.install(Level.INFO, logFile);
        final CountDownLatch stop = new CountDownLatch(1);
        Shutdown.installSignalHandlers(stop::countDown, Logs::reopen);
        final SdNotify notify = SdNotify.fromEnvironment();
        final Shutdown shutdown = new Shutdown(notify, Duration.ofSeconds(10));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> shutdown.run(() -> { })));
        LOG.info("probe running");
        notify.ready("probe running");
        stop.await();
        shutdown.run(() -> {
            try {
                Files.writeString(marker, "closed");
            } catch (final IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        System.exit(0);
    }

    private static void journal() throws IOException {
        Logs.install(Level.FINE, null);
        LOG.fine("debug line");
        LOG.info("info line");
        LOG.warning("warning line");
        LOG.log(Level.SEVERE, "error line", new IllegalStateException("boom"));
        System.err.flush();
    }
}
