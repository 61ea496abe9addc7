package org.vsbridge.chardev;

import com.sun.jna.LastErrorException;
import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * The libc calls the fd-based backends need (pty, tty, pipe, vsock, inherited sockets), through JNA direct
 * mapping. Setup paths only: the data path reads and writes through Netty's {@code FileDescriptor}.
 * Constants are Linux x86-64/aarch64 values; {@link #available()} is false elsewhere.
 */
final class Posix {

    static final int O_RDONLY = 0;
    static final int O_WRONLY = 1;
    static final int O_RDWR = 2;
    static final int O_NOCTTY = 0400;
    static final int O_NONBLOCK = 04000;
    static final int O_CLOEXEC = 02000000;

    static final int F_GETFL = 3;
    static final int F_SETFL = 4;

    static final int AF_UNIX = 1;
    static final int AF_INET = 2;
    static final int AF_INET6 = 10;
    static final int AF_VSOCK = 40;
    static final int SOCK_STREAM = 1;
    static final int SOCK_NONBLOCK = 04000;
    static final int SOCK_CLOEXEC = 02000000;
    static final int SOL_SOCKET = 1;
    static final int SO_TYPE = 3;
    static final int SO_ACCEPTCONN = 30;

    static final short POLLIN = 0x1;
    static final short POLLOUT = 0x4;
    static final short POLLHUP = 0x10;
    static final short POLLERR = 0x8;
    static final short POLLRDHUP = 0x2000;

    static final int TCSANOW = 0;
    /** sizeof(struct termios) with glibc on Linux. */
    static final int TERMIOS_SIZE = 60;
    /** sizeof(struct sockaddr_vm). */
    static final int SOCKADDR_VM_SIZE = 16;

    private static final boolean AVAILABLE;

    static {
        boolean ok = false;
        if (Platform.isLinux()) {
            try {
                Native.register(Posix.class, "c");
                ok = true;
            } catch (final UnsatisfiedLinkError | RuntimeException e) {
                ok = false;
            }
        }
        AVAILABLE = ok;
    }

    private Posix() {
    }

    /** True when libc could be bound (Linux). */
    static boolean available() {
        return AVAILABLE;
    }

    static native int open(String path, int flags, int mode) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;

    static native int fcntl(int fd, int cmd, int arg) throws LastErrorException;

    static native int posix_openpt(int flags) throws LastErrorException;

    static native int grantpt(int fd) throws LastErrorException;

    static native int unlockpt(int fd) throws LastErrorException;

    static native int ptsname_r(int fd, byte[] buf, long buflen);

    static native int tcgetattr(int fd, byte[] termios) throws LastErrorException;

    static native int tcsetattr(int fd, int action, byte[] termios) throws LastErrorException;

    static native void cfmakeraw(byte[] termios);

    static native int tcsendbreak(int fd, int duration) throws LastErrorException;

    static native int isatty(int fd);

    static native int tcgetpgrp(int fd);

    static native int getpgrp();

    /** {@code struct pollfd} is 8 bytes: int fd, short events, short revents. */
    static native int poll(byte[] fds, long nfds, int timeout) throws LastErrorException;

    static native int socket(int domain, int type, int protocol) throws LastErrorException;

    static native int bind(int fd, byte[] addr, int len) throws LastErrorException;

    static native int listen(int fd, int backlog) throws LastErrorException;

    static native int connect(int fd, byte[] addr, int len) throws LastErrorException;

    static native int accept4(int fd, byte[] addr, int[] len, int flags) throws LastErrorException;

    static native int getsockname(int fd, byte[] addr, int[] len) throws LastErrorException;

    static native int getsockopt(int fd, int level, int name, int[] value, int[] len) throws LastErrorException;

    static native int ioctl(int fd, long request, int[] value) throws LastErrorException;

    /** FIONREAD (SIOCINQ): bytes queued for reading. */
    private static final long FIONREAD = 0x541B;

    static native String strerror(int errnum);

    /** The strerror text of a failed call. */
    static String reason(final LastErrorException e) {
        final String s = strerror(e.getErrorCode());
        return s != null ? s : "errno " + e.getErrorCode();
    }

    static void setNonBlocking(final int fd) throws LastErrorException {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    }

    static void closeQuietly(final int fd) {
        if (fd >= 0) {
            try {
                close(fd);
            } catch (final LastErrorException ignored) {
                // closing on an error path: the first error is the one to report
            }
        }
    }

    /** True when the peer side of {@code fd} hung up (a pty master without an open slave), polled at once. */
    static boolean hungUp(final int fd) {
        final byte[] pfd = new byte[8];
        putInt(pfd, 0, fd);
        pfd[4] = (byte) POLLIN;
        try {
            if (poll(pfd, 1, 0) <= 0) {
                return false;
            }
        } catch (final LastErrorException e) {
            return false;
        }
        final int revents = (pfd[6] & 0xFF) | ((pfd[7] & 0xFF) << 8);
        return (revents & POLLHUP) != 0;
    }

    /** True when {@code fd} can take a write now (or has an error a write would report); polled at once. */
    static boolean writable(final int fd) {
        final byte[] pfd = new byte[8];
        putInt(pfd, 0, fd);
        pfd[4] = (byte) POLLOUT;
        try {
            return poll(pfd, 1, 0) > 0;
        } catch (final LastErrorException e) {
            return true; // let the write find out what is wrong
        }
    }

    /** True when the peer of socket {@code fd} reset, or shut down its side or hung up and nothing it sent is left
     *  to read; polled at once. */
    static boolean peerGone(final int fd) {
        final byte[] pfd = new byte[8];
        putInt(pfd, 0, fd);
        pfd[4] = (byte) (POLLRDHUP & 0xFF);
        pfd[5] = (byte) ((POLLRDHUP >> 8) & 0xFF);
        try {
            if (poll(pfd, 1, 0) <= 0) {
                return false;
            }
        } catch (final LastErrorException e) {
            return false;
        }
        final int revents = (pfd[6] & 0xFF) | ((pfd[7] & 0xFF) << 8);
        if ((revents & POLLERR) != 0) {
            return true;
        }
        // A peer that sent data and then closed is gone only once that data is read: it must still reach the port.
        return (revents & (POLLRDHUP | POLLHUP)) != 0 && queuedInput(fd) == 0;
    }

    /** Bytes waiting to be read on {@code fd}; 0 when that cannot be asked. */
    static int queuedInput(final int fd) {
        final int[] value = {0};
        try {
            ioctl(fd, FIONREAD, value);
        } catch (final LastErrorException e) {
            return 0;
        }
        return value[0];
    }

    /** The address family of a socket, or -1 when {@code fd} is not a socket. */
    static int socketFamily(final int fd) {
        final byte[] addr = new byte[128];
        final int[] len = {addr.length};
        try {
            getsockname(fd, addr, len);
        } catch (final LastErrorException e) {
            return -1;
        }
        return (addr[0] & 0xFF) | ((addr[1] & 0xFF) << 8);
    }

    static boolean isListening(final int fd) {
        final int[] value = {0};
        final int[] len = {4};
        try {
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, value, len);
        } catch (final LastErrorException e) {
            return false;
        }
        return value[0] != 0;
    }

    /** {@code struct sockaddr_vm} for a context id and port. */
    static byte[] sockaddrVm(final int cid, final int port) {
        final byte[] a = new byte[SOCKADDR_VM_SIZE];
        a[0] = (byte) AF_VSOCK;
        putInt(a, 4, port);
        putInt(a, 8, cid);
        return a;
    }

    static void putInt(final byte[] b, final int at, final int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >>> 8);
        b[at + 2] = (byte) (v >>> 16);
        b[at + 3] = (byte) (v >>> 24);
    }

    static int getInt(final byte[] b, final int at) {
        return (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8 | (b[at + 2] & 0xFF) << 16 | (b[at + 3] & 0xFF) << 24;
    }
}
