package org.vsbridge.core.systemd;

import java.io.IOException;

/** Checks on sockets this process inherits ({@code --fd N}, socket activation) before it serves on them. */
public final class SocketFds {

    private SocketFds() {
    }

    /** The address family of socket {@code fd} ({@link Posix#AF_UNIX}, ...). */
    static int family(final int fd, final String what) throws IOException {
        final byte[] addr = new byte[128];
        final int[] len = {addr.length};
        if (Posix.getsockname(fd, addr, len) != 0) {
            throw Posix.error(what + ": not a socket (getsockname)");
        }
        return (addr[0] & 0xFF) | (addr[1] & 0xFF) << 8;
    }

    private static int intOption(final int fd, final int option, final String what) throws IOException {
        final int[] value = {0};
        final int[] len = {4};
        if (Posix.getsockopt(fd, Posix.SOL_SOCKET, option, value, len) != 0) {
            throw Posix.error("fd " + fd + ": getsockopt(" + what + ")");
        }
        return value[0];
    }

    /** The path an AF_UNIX socket is bound to, or null (another family, unnamed or abstract). */
    public static String unixPath(final int fd) {
        final byte[] addr = new byte[Posix.SOCKADDR_UN_SIZE];
        final int[] len = {addr.length};
        if (Posix.getsockname(fd, addr, len) != 0 || (addr[0] & 0xFF | (addr[1] & 0xFF) << 8) != Posix.AF_UNIX
            || len[0] <= 2 || addr[2] == 0) {
            return null;
        }
        int end = 2;
        while (end < Math.min(len[0], addr.length) && addr[end] != 0) {
            end++;
        }
        return new String(addr, 2, end - 2, java.nio.charset.StandardCharsets.UTF_8);
    }

    /** True when {@code fd} is an AF_UNIX socket. */
    public static boolean isUnix(final int fd) throws IOException {
        return family(fd, "fd " + fd) == Posix.AF_UNIX;
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
        if (Posix.fcntl(fd, Posix.F_GETFD, 0) < 0) {
            throw Posix.error(what + ": not an open file descriptor");
        }
        final int family = family(fd, what);
        final boolean familyOk = family == Posix.AF_UNIX
            || !unixOnly && (family == Posix.AF_INET || family == Posix.AF_INET6);
        if (!familyOk) {
            throw new IOException(what + ": socket family " + family + " is not "
                + (unixOnly ? "AF_UNIX" : "AF_UNIX, AF_INET or AF_INET6"));
        }
        if (intOption(fd, Posix.SO_TYPE, "SO_TYPE") != Posix.SOCK_STREAM) {
            throw new IOException(what + ": not a stream socket (use ListenStream=, not ListenDatagram=)");
        }
        if (intOption(fd, Posix.SO_ACCEPTCONN, "SO_ACCEPTCONN") == 0) {
            throw new IOException(what + ": the socket is not listening (use Accept=no and a listening socket)");
        }
        final int flags = Posix.fcntl(fd, Posix.F_GETFD, 0);
        if ((flags & Posix.FD_CLOEXEC) == 0 && Posix.fcntl(fd, Posix.F_SETFD, flags | Posix.FD_CLOEXEC) < 0) {
            throw Posix.error(what + ": fcntl(FD_CLOEXEC)");
        }
    }
}
