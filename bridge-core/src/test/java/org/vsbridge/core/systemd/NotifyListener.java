package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * What the service manager does with {@code NOTIFY_SOCKET}: a real AF_UNIX datagram socket bound to a path (or
 * an abstract name), read one datagram at a time.
 */
final class NotifyListener implements AutoCloseable {

    private final int fd;
    final String address;

    NotifyListener(final String address) throws IOException {
        this.address = address;
        fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_DGRAM | Sockets.SOCK_CLOEXEC, 0);
        final byte[] addr = new byte[Sockets.SOCKADDR_UN_SIZE];
        final int len = Sockets.sockaddrUn(address, addr);
        try {
            Sockets.bind(fd, addr, len);
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new ErrnoException("bind " + address, e.errno());
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
            if (Sys.pollReadable(new int[] {fd}, (int) Math.min(left, Integer.MAX_VALUE)) == 0) {
                continue;
            }
            final byte[] buf = new byte[4096];
            final int n = Sockets.recvMsg(fd, buf, 0, buf.length, new FdList());
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
        Sys.closeQuietly(fd);
    }
}
