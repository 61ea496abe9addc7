package org.vsbridge.core.systemd;

import java.io.IOException;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/** Checks on sockets this process inherits ({@code --fd N}, socket activation) before it serves on them. */
public final class SocketFds {

    private SocketFds() {
    }

    /** The address family of socket {@code fd} ({@link Sockets#AF_UNIX}, ...). */
    static int family(final int fd, final String what) throws IOException {
        try {
            return Sockets.family(fd);
        } catch (final ErrnoException e) {
            throw new ErrnoException(what + ": not a socket (getsockname)", e.errno());
        }
    }

    private static int intOption(final int fd, final int option, final String what) throws IOException {
        try {
            return Sockets.intOption(fd, option);
        } catch (final ErrnoException e) {
            throw new ErrnoException("fd " + fd + ": getsockopt(" + what + ")", e.errno());
        }
    }

    /** The path an AF_UNIX socket is bound to, or null (another family, unnamed or abstract). */
    public static String unixPath(final int fd) {
        final byte[] addr = new byte[Sockets.SOCKADDR_UN_SIZE];
        final int len;
        try {
            len = Sockets.getsockname(fd, addr);
        } catch (final ErrnoException e) {
            return null;
        }
        if ((addr[0] & 0xFF | (addr[1] & 0xFF) << 8) != Sockets.AF_UNIX || len <= 2 || addr[2] == 0) {
            return null;
        }
        int end = 2;
        while (end < Math.min(len, addr.length) && addr[end] != 0) {
            end++;
        }
        return new String(addr, 2, end - 2, java.nio.charset.StandardCharsets.UTF_8);
    }

    /** True when {@code fd} is an AF_UNIX socket. */
    public static boolean isUnix(final int fd) throws IOException {
        return family(fd, "fd " + fd) == Sockets.AF_UNIX;
    }

    /**
     * Makes sure {@code fd} is a listening stream socket of an allowed family ({@code unixOnly}: AF_UNIX, else
     * also AF_INET/AF_INET6) and marks it close-on-exec so no child inherits it.
     *
     * @param what how the fd is named in errors ("--fd 3", "LISTEN_FDS fd 4 (qmp)")
     */
    public static void checkListening(final int fd, final String what, final boolean unixOnly) throws IOException {
        if (fd < 0) {
            throw new IOException(what + ": not a file descriptor");
        }
        final int flags;
        try {
            flags = Sys.fcntl(fd, Sys.F_GETFD, 0);
        } catch (final ErrnoException e) {
            throw new ErrnoException(what + ": not an open file descriptor", e.errno());
        }
        final int family = family(fd, what);
        final boolean familyOk = family == Sockets.AF_UNIX
            || !unixOnly && (family == Sockets.AF_INET || family == Sockets.AF_INET6);
        if (!familyOk) {
            throw new IOException(what + ": socket family " + family + " is not "
                + (unixOnly ? "AF_UNIX" : "AF_UNIX, AF_INET or AF_INET6"));
        }
        if (intOption(fd, Sockets.SO_TYPE, "SO_TYPE") != Sockets.SOCK_STREAM) {
            throw new IOException(what + ": not a stream socket (use ListenStream=, not ListenDatagram=)");
        }
        if (intOption(fd, Sockets.SO_ACCEPTCONN, "SO_ACCEPTCONN") == 0) {
            throw new IOException(what + ": the socket is not listening (use Accept=no and a listening socket)");
        }
        if ((flags & Sys.FD_CLOEXEC) == 0) {
            try {
                Sys.fcntl(fd, Sys.F_SETFD, flags | Sys.FD_CLOEXEC);
            } catch (final ErrnoException e) {
                throw new ErrnoException(what + ": fcntl(FD_CLOEXEC)", e.errno());
            }
        }
    }
}
