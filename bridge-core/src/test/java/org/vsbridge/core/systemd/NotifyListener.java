package org.vsbridge.core.systemd;

import com.sun.jna.Native;
import com.sun.jna.Platform;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * What the service manager does with {@code NOTIFY_SOCKET}: a real AF_UNIX datagram socket bound to a path (or
 * an abstract name), read one datagram at a time.
 */
final class NotifyListener implements AutoCloseable {

    static {
        Native.register(NotifyListener.class, Platform.C_LIBRARY_NAME);
    }

    private static native int socket(int domain, int type, int protocol);

    private static native int bind(int fd, byte[] addr, int len);

    private static native long recv(int fd, byte[] buf, long len, int flags);

    private static native int poll(byte[] fds, long nfds, int timeout);

    private static native int close(int fd);

    private final int fd;
    final String address;

    NotifyListener(final String address) throws IOException {
        this.address = address;
        fd = socket(Posix.AF_UNIX, Posix.SOCK_DGRAM | Posix.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw Posix.error("socket");
        }
        final byte[] addr = new byte[Posix.SOCKADDR_UN_SIZE];
        final int len = Posix.sockaddrUn(address, addr);
        if (bind(fd, addr, len) != 0) {
            final IOException e = Posix.error("bind " + address);
            close(fd);
            throw e;
        }
    }

    /** The next datagram, or null when none came within {@code timeoutMs}. */
    String receive(final long timeoutMs) throws IOException {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (true) {
            final long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                return null;
            }
            // struct pollfd { int fd; short events; short revents; }, POLLIN = 1
            final byte[] pfd = {(byte) fd, (byte) (fd >> 8), (byte) (fd >> 16), (byte) (fd >> 24), 1, 0, 0, 0};
            final int ready = poll(pfd, 1, (int) Math.min(left, Integer.MAX_VALUE));
            if (ready < 0) {
                if (Native.getLastError() == 4) {
                    continue;
                }
                throw Posix.error("poll");
            }
            if (ready == 0) {
                continue;
            }
            final byte[] buf = new byte[4096];
            final long n = recv(fd, buf, buf.length, 0);
            if (n < 0) {
                throw Posix.error("recv");
            }
            return new String(buf, 0, (int) n, StandardCharsets.UTF_8);
        }
    }

    /** Datagrams until one has the line {@code state}; that one is returned (null on timeout). */
    String awaitContaining(final String state, final long timeoutMs) throws IOException {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (System.nanoTime() < deadline) {
            final String m = receive(TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()) + 1);
            if (m == null) {
                return null;
            }
            if (m.lines().anyMatch(state::equals)) {
                return m;
            }
        }
        return null;
    }

    @Override
    public void close() {
        close(fd);
    }
}
