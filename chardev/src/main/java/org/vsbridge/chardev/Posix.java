package org.vsbridge.chardev;

import com.sun.jna.LastErrorException;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * Deprecated: the old name of a few calls of the libc binding ({@code org.vsbridge.libc}), kept only for
 * {@code SocketChardev}, {@code DirectInput} and {@code DirectOutput} while they are being split; it binds nothing
 * itself and turns an {@link ErrnoException} back into the {@link LastErrorException} those callers catch. Call
 * {@link Sys} and {@link Sockets} instead; this class goes once those files do.
 */
@Deprecated
final class Posix {

    static final int AF_UNIX = Sockets.AF_UNIX;
    static final int AF_INET = Sockets.AF_INET;
    static final int AF_INET6 = Sockets.AF_INET6;
    static final int SOCK_STREAM = Sockets.SOCK_STREAM;
    static final int SOCK_NONBLOCK = Sockets.SOCK_NONBLOCK;
    static final int SOCK_CLOEXEC = Sockets.SOCK_CLOEXEC;

    private Posix() {
    }

    static int socket(final int domain, final int type, final int protocol) throws LastErrorException {
        try {
            return Sockets.socket(domain, type, protocol);
        } catch (final ErrnoException e) {
            throw new LastErrorException(e.errno());
        }
    }

    static int bind(final int fd, final byte[] addr, final int len) throws LastErrorException {
        try {
            Sockets.bind(fd, addr, len);
            return 0;
        } catch (final ErrnoException e) {
            throw new LastErrorException(e.errno());
        }
    }

    static int listen(final int fd, final int backlog) throws LastErrorException {
        try {
            Sockets.listen(fd, backlog);
            return 0;
        } catch (final ErrnoException e) {
            throw new LastErrorException(e.errno());
        }
    }

    static int connect(final int fd, final byte[] addr, final int len) throws LastErrorException {
        try {
            Sockets.connect(fd, addr, len);
            return 0;
        } catch (final ErrnoException e) {
            throw new LastErrorException(e.errno());
        }
    }

    static int fcntl(final int fd, final int cmd, final int arg) throws LastErrorException {
        try {
            return Sys.fcntl(fd, cmd, arg);
        } catch (final ErrnoException e) {
            throw new LastErrorException(e.errno());
        }
    }

    static void closeQuietly(final int fd) {
        Sys.closeQuietly(fd);
    }

    /** The strerror text of a failed call. */
    static String reason(final LastErrorException e) {
        return Sys.strerror(e.getErrorCode());
    }

    static int socketFamily(final int fd) {
        return Sockets.familyOrNone(fd);
    }

    static boolean isListening(final int fd) {
        return Sockets.isListening(fd);
    }

    static boolean peerGone(final int fd) {
        return Sockets.peerGone(fd);
    }

    static boolean writable(final int fd) {
        return Sys.writable(fd);
    }
}
