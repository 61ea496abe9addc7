package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.logging.Logger;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * The service manager's notification socket (sd_notify(3)): state lines such as {@code READY=1},
 * {@code STATUS=...}, {@code STOPPING=1} and {@code WATCHDOG=1} sent as one AF_UNIX datagram each to
 * {@code $NOTIFY_SOCKET} (a path, or an abstract name written {@code @name}). Without the variable every method
 * is a no-op, so the same code runs under systemd and from a shell.
 *
 * <p>Thread-safe: each message is one {@code sendto} on a datagram socket. A failed send is logged once and
 * never stops the process: the service manager may be gone during shutdown.
 */
public final class SdNotify implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(SdNotify.class.getName());
    public static final String NOTIFY_SOCKET = "NOTIFY_SOCKET";

    private final String target;
    private final byte[] address;
    private final int addressLength;
    private int fd;
    private volatile boolean warned;

    private SdNotify(final String target) throws IOException {
        this.target = target;
        if (target == null) {
            address = null;
            addressLength = 0;
            fd = -1;
            return;
        }
        if (!target.startsWith("/") && !target.startsWith("@")) {
            // systemd also accepts vsock:CID:PORT since v253; this process only speaks AF_UNIX to its manager.
            throw new IOException(NOTIFY_SOCKET + "=" + target + ": only a socket path or an abstract @name is "
                + "supported");
        }
        address = new byte[Sockets.SOCKADDR_UN_SIZE];
        try {
            addressLength = Sockets.sockaddrUn(target, address);
        } catch (final IllegalArgumentException e) {
            throw new IOException(NOTIFY_SOCKET + ": " + e.getMessage(), e);
        }
        try {
            fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_DGRAM | Sockets.SOCK_CLOEXEC, 0);
        } catch (final ErrnoException e) {
            throw new ErrnoException("socket(AF_UNIX, SOCK_DGRAM) for " + NOTIFY_SOCKET, e.errno());
        }
    }

    /** From {@code $NOTIFY_SOCKET}; a disabled notifier when it is unset or empty. */
    public static SdNotify fromEnvironment() throws IOException {
        final String value = System.getenv(NOTIFY_SOCKET);
        return new SdNotify(value == null || value.isEmpty() ? null : value);
    }

    /** Notifications to {@code socket} (a path or {@code @abstract}); null gives a disabled notifier. */
    public static SdNotify to(final String socket) throws IOException {
        return new SdNotify(socket);
    }

    /** A notifier that sends nothing. */
    public static SdNotify disabled() {
        try {
            return new SdNotify(null);
        } catch (final IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /** True when notifications go somewhere. */
    public boolean enabled() {
        return target != null;
    }

    /** Start-up finished: every socket listens and every chardev that must wait is ready. */
    public boolean ready(final String status) {
        return send(status == null ? "READY=1" : "READY=1\nSTATUS=" + oneLine(status));
    }

    /** A free-form status line that {@code systemctl status} shows. */
    public boolean status(final String status) {
        return send("STATUS=" + oneLine(status));
    }

    /** Shutdown began. */
    public boolean stopping(final String status) {
        return send(status == null ? "STOPPING=1" : "STOPPING=1\nSTATUS=" + oneLine(status));
    }

    /** Keep-alive for {@code WatchdogSec=}. */
    public boolean watchdog() {
        // Never blocks: a manager that does not read its socket gains nothing from a queued ping, and a ping stuck in
        // sendto would hold this object's lock and the watchdog thread through shutdown.
        return send("WATCHDOG=1", true);
    }

    /**
     * Sends {@code state} (newline-separated {@code KEY=VALUE} assignments) as one datagram. Returns false when
     * disabled or when the send failed.
     */
    public boolean send(final String state) {
        return send(state, false);
    }

    private synchronized boolean send(final String state, final boolean noWait) {
        if (fd < 0) {
            return false;
        }
        final byte[] bytes = state.getBytes(StandardCharsets.UTF_8);
        String failure = null;
        try {
            final long sent = Sockets.sendTo(fd, bytes, address, addressLength, noWait);
            if (sent != bytes.length) {
                failure = "sendto " + NOTIFY_SOCKET + "=" + target + ": " + sent + " of " + bytes.length + " bytes sent";
            }
        } catch (final ErrnoException e) {
            failure = new ErrnoException("sendto " + NOTIFY_SOCKET + "=" + target, e.errno()).getMessage();
        }
        if (failure != null) {
            if (!warned) {
                warned = true;
                LOG.warning("systemd notification '" + firstLine(state) + "' not sent: " + failure
                    + " (further failures are not logged)");
            }
            return false;
        }
        return true;
    }

    private static String oneLine(final String s) {
        return s.replace('\n', ' ');
    }

    private static String firstLine(final String s) {
        final int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    @Override
    public synchronized void close() {
        if (fd >= 0) {
            Sys.closeQuietly(fd);
            fd = -1;
        }
    }

    @Override
    public String toString() {
        return target == null ? "sd_notify(disabled)" : "sd_notify(" + target + ")";
    }
}
