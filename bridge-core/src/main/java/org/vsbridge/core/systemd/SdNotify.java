package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.logging.Logger;

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
        address = new byte[Posix.SOCKADDR_UN_SIZE];
        try {
            addressLength = Posix.sockaddrUn(target, address);
        } catch (final IllegalArgumentException e) {
            throw new IOException(NOTIFY_SOCKET + ": " + e.getMessage(), e);
        }
        fd = Posix.socket(Posix.AF_UNIX, Posix.SOCK_DGRAM | Posix.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw Posix.error("socket(AF_UNIX, SOCK_DGRAM) for " + NOTIFY_SOCKET);
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
        return send("WATCHDOG=1");
    }

    /**
     * Sends {@code state} (newline-separated {@code KEY=VALUE} assignments) as one datagram. Returns false when
     * disabled or when the send failed.
     */
    public synchronized boolean send(final String state) {
        if (fd < 0) {
            return false;
        }
        final byte[] bytes = state.getBytes(StandardCharsets.UTF_8);
        final long sent = Posix.sendto(fd, bytes, bytes.length, Posix.MSG_NOSIGNAL, address, addressLength);
        if (sent != bytes.length) {
            if (!warned) {
                warned = true;
                final IOException e = Posix.error("sendto " + NOTIFY_SOCKET + "=" + target);
                LOG.warning("systemd notification '" + firstLine(state) + "' not sent: " + e.getMessage()
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
            Posix.close(fd);
            fd = -1;
        }
    }

    @Override
    public String toString() {
        return target == null ? "sd_notify(disabled)" : "sd_notify(" + target + ")";
    }
}
