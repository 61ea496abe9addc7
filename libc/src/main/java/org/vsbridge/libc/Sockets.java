package org.vsbridge.libc;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Sockets: AF_UNIX stream sockets with descriptors riding on messages (SCM_RIGHTS, the vhost-user control socket),
 * the plain socket calls the fd-based chardevs and systemd's notify socket need, and checks on inherited sockets.
 * Failures throw {@link ErrnoException}.
 */
public final class Sockets {

    public static final int AF_UNIX = 1;
    public static final int AF_INET = 2;
    public static final int AF_INET6 = 10;
    public static final int AF_VSOCK = 40;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_DGRAM = 2;
    public static final int SOCK_NONBLOCK = Sys.O_NONBLOCK;
    public static final int SOCK_CLOEXEC = Sys.O_CLOEXEC;
    public static final int SOL_SOCKET = 1;
    public static final int SO_TYPE = 3;
    public static final int SO_ACCEPTCONN = 30;
    public static final int MSG_NOSIGNAL = 0x4000;
    /** Fail with EAGAIN instead of blocking. */
    public static final int MSG_DONTWAIT = 0x40;

    /** Bytes of {@code sun_path}; {@code struct sockaddr_un} is a 2-byte family and this. */
    public static final int SUN_PATH_MAX = 108;
    public static final int SOCKADDR_UN_SIZE = 2 + SUN_PATH_MAX;
    /** sizeof(struct sockaddr_vm). */
    public static final int SOCKADDR_VM_SIZE = 16;

    /** Linux SCM_MAX_FD: the most descriptors one message can carry. */
    public static final int MAX_FDS_PER_MESSAGE = 253;

    private static final int SHUT_RDWR = 2;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SCM_RIGHTS = 1;

    // struct msghdr / iovec / cmsghdr on LP64 Linux.
    private static final int MSGHDR_SIZE = 56;
    private static final int MSG_IOV = 16;
    private static final int MSG_IOVLEN = 24;
    private static final int MSG_CONTROL = 32;
    private static final int MSG_CONTROLLEN = 40;
    private static final int MSG_FLAGS = 48;
    private static final int IOVEC_SIZE = 16;
    private static final int CMSG_HDR = 16;
    private static final int CMSG_SPACE_MAX = CMSG_HDR + align8(MAX_FDS_PER_MESSAGE * 4);

    private Sockets() {
    }

    private static int align8(final int n) {
        return (n + 7) & ~7;
    }

    // ---------------------------------------------------------------- the plain calls

    public static int socket(final int domain, final int type, final int protocol) throws ErrnoException {
        final int fd = LibC.socket(domain, type, protocol);
        if (fd < 0) {
            throw ErrnoException.last("socket(" + domain + ", " + type + ")");
        }
        return fd;
    }

    public static void bind(final int fd, final byte[] addr, final int length) throws ErrnoException {
        if (LibC.bind(fd, addr, length) != 0) {
            throw ErrnoException.last("bind(fd " + fd + ")");
        }
    }

    public static void connect(final int fd, final byte[] addr, final int length) throws ErrnoException {
        if (LibC.connect(fd, addr, length) != 0) {
            throw ErrnoException.last("connect(fd " + fd + ")");
        }
    }

    public static void listen(final int fd, final int backlog) throws ErrnoException {
        if (LibC.listen(fd, backlog) != 0) {
            throw ErrnoException.last("listen(fd " + fd + ")");
        }
    }

    /** One datagram or stream write without SIGPIPE; returns the bytes sent. */
    public static long sendTo(final int fd, final byte[] buf, final byte[] addr, final int addrLength)
        throws ErrnoException {
        return sendTo(fd, buf, addr, addrLength, false);
    }

    /**
     * As {@link #sendTo(int, byte[], byte[], int)}; with {@code noWait} a datagram the receiver has no room for fails
     * with EAGAIN instead of blocking (MSG_DONTWAIT).
     */
    public static long sendTo(final int fd, final byte[] buf, final byte[] addr, final int addrLength,
        final boolean noWait) throws ErrnoException {
        final long sent = LibC.sendto(fd, buf, buf.length, MSG_NOSIGNAL | (noWait ? MSG_DONTWAIT : 0), addr,
            addrLength);
        if (sent < 0) {
            throw ErrnoException.last("sendto(fd " + fd + ")");
        }
        return sent;
    }

    /** The bound address of socket {@code fd} into {@code addr}; returns its length. */
    public static int getsockname(final int fd, final byte[] addr) throws ErrnoException {
        final int[] len = {addr.length};
        if (LibC.getsockname(fd, addr, len) != 0) {
            throw ErrnoException.last("getsockname(fd " + fd + ")");
        }
        return len[0];
    }

    /** An int socket option at SOL_SOCKET level ({@link #SO_TYPE}, {@link #SO_ACCEPTCONN}). */
    public static int intOption(final int fd, final int option) throws ErrnoException {
        final int[] value = {0};
        final int[] len = {4};
        if (LibC.getsockopt(fd, SOL_SOCKET, option, value, len) != 0) {
            throw ErrnoException.last("getsockopt(fd " + fd + ", " + option + ")");
        }
        return value[0];
    }

    /** The address family of socket {@code fd}. */
    public static int family(final int fd) throws ErrnoException {
        final byte[] addr = new byte[128];
        getsockname(fd, addr);
        return (addr[0] & 0xFF) | (addr[1] & 0xFF) << 8;
    }

    /** The address family of a socket, or -1 when {@code fd} is not a socket. */
    public static int familyOrNone(final int fd) {
        try {
            return family(fd);
        } catch (final ErrnoException e) {
            return -1;
        }
    }

    /** True when {@code fd} is a listening socket (false also when it cannot be asked). */
    public static boolean isListening(final int fd) {
        try {
            return intOption(fd, SO_ACCEPTCONN) != 0;
        } catch (final ErrnoException e) {
            return false;
        }
    }

    /** True when the peer of socket {@code fd} reset, or shut down its side or hung up and nothing it sent is left
     *  to read; polled at once. */
    public static boolean peerGone(final int fd) {
        final int revents = Sys.pollNow(fd, Sys.POLLRDHUP);
        if (revents <= 0) {
            return false;
        }
        if ((revents & Sys.POLLERR) != 0) {
            return true;
        }
        // A peer that sent data and then closed is gone only once that data is read: it must still reach the port.
        return (revents & (Sys.POLLRDHUP | Sys.POLLHUP)) != 0 && Sys.queuedInput(fd) == 0;
    }

    // ---------------------------------------------------------------- addresses

    /**
     * A {@code sockaddr_un} for {@code name} into {@code addr} ({@link #SOCKADDR_UN_SIZE} bytes): a path, or an
     * abstract name written with a leading '@' as systemd does. Returns the address length to pass.
     *
     * @throws IllegalArgumentException when the name does not fit
     */
    public static int sockaddrUn(final String name, final byte[] addr) {
        final boolean isAbstract = name.startsWith("@");
        final byte[] path = (isAbstract ? name.substring(1) : name).getBytes(StandardCharsets.UTF_8);
        // Abstract: a leading NUL then the name, no terminator; path: the name and its NUL. One extra byte either way.
        final int pathBytes = path.length + 1;
        if (pathBytes > SUN_PATH_MAX) {
            throw new IllegalArgumentException("unix socket name too long (" + path.length + " bytes, max "
                + (SUN_PATH_MAX - 1) + "): " + name);
        }
        Arrays.fill(addr, (byte) 0);
        addr[0] = (byte) AF_UNIX; // sa_family_t is host order; every Linux target of this project is little-endian
        System.arraycopy(path, 0, addr, isAbstract ? 3 : 2, path.length);
        return 2 + pathBytes;
    }

    private static byte[] sockaddrUn(final Path path) throws IOException {
        final byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        if (name.length >= SUN_PATH_MAX) {
            throw new IOException("socket path too long (" + name.length + " bytes, max "
                + (SUN_PATH_MAX - 1) + "): " + path);
        }
        final byte[] addr = new byte[SOCKADDR_UN_SIZE];
        addr[0] = (byte) AF_UNIX;
        System.arraycopy(name, 0, addr, 2, name.length);
        return addr;
    }

    /** {@code struct sockaddr_vm} for a context id and port. */
    public static byte[] sockaddrVm(final int cid, final int port) {
        final byte[] a = new byte[SOCKADDR_VM_SIZE];
        a[0] = (byte) AF_VSOCK;
        Sys.putInt(a, 4, port);
        Sys.putInt(a, 8, cid);
        return a;
    }

    // ---------------------------------------------------------------- unix stream sockets

    /** A listening AF_UNIX stream socket bound to {@code path} (which must not exist). */
    public static int unixListen(final Path path, final int backlog) throws IOException {
        final byte[] addr = sockaddrUn(path);
        final int fd = LibC.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw ErrnoException.last("socket(AF_UNIX)");
        }
        if (LibC.bind(fd, addr, addr.length) != 0) {
            final int errno = Native.getLastError();
            Sys.closeQuietly(fd);
            throw ErrnoException.withMessage(errno, "Failed to bind socket to " + path + ": " + Sys.strerror(errno));
        }
        if (LibC.listen(fd, backlog) != 0) {
            final IOException e = ErrnoException.last("listen(" + path + ")");
            Sys.closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** A connected AF_UNIX stream socket. */
    public static int unixConnect(final Path path) throws IOException {
        final byte[] addr = sockaddrUn(path);
        final int fd = LibC.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw ErrnoException.last("socket(AF_UNIX)");
        }
        if (LibC.connect(fd, addr, addr.length) != 0) {
            final IOException e = ErrnoException.last("connect(" + path + ")");
            Sys.closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** Accept one connection (close-on-exec). */
    public static int accept(final int listenFd) throws ErrnoException {
        final int fd = LibC.accept4(listenFd, 0, 0, SOCK_CLOEXEC);
        if (fd < 0) {
            throw ErrnoException.last("accept4");
        }
        return fd;
    }

    /** A connected pair of AF_UNIX stream sockets (close-on-exec). */
    public static int[] socketpair() throws ErrnoException {
        final int[] sv = new int[2];
        if (LibC.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            throw ErrnoException.last("socketpair");
        }
        return sv;
    }

    /** shutdown(SHUT_RDWR), ignoring errors: wakes a peer blocked on the socket. */
    public static void shutdownQuietly(final int fd) {
        if (fd >= 0) {
            LibC.shutdown(fd, SHUT_RDWR);
        }
    }

    public static void unlink(final Path path) throws ErrnoException {
        if (LibC.unlink(path.toString()) != 0) {
            throw ErrnoException.last("unlink(" + path + ")");
        }
    }

    // ---------------------------------------------------------------- messages with descriptors

    /**
     * recvmsg into {@code dst[off, off+len)}, collecting SCM_RIGHTS descriptors into {@code fds}
     * (cleared first, close-on-exec). Returns the byte count, 0 at end of stream. MSG_CTRUNC is
     * reported through {@link FdList#truncated()}; the descriptors that did arrive are still in the list
     * so the caller can close them.
     */
    public static int recvMsg(final int fd, final byte[] dst, final int off, final int len, final FdList fds)
        throws ErrnoException {
        fds.clear();
        try (Memory data = new Memory(Math.max(len, 1));
             Memory iov = new Memory(IOVEC_SIZE);
             Memory control = new Memory(CMSG_SPACE_MAX);
             Memory msg = new Memory(MSGHDR_SIZE)) {
            msg.clear();
            control.clear();
            iov.setLong(0, Pointer.nativeValue(data));
            iov.setLong(8, len);
            msg.setLong(MSG_IOV, Pointer.nativeValue(iov));
            msg.setLong(MSG_IOVLEN, 1);
            msg.setLong(MSG_CONTROL, Pointer.nativeValue(control));
            msg.setLong(MSG_CONTROLLEN, CMSG_SPACE_MAX);
            long n;
            do {
                n = LibC.recvmsg(fd, Pointer.nativeValue(msg), MSG_CMSG_CLOEXEC);
            } while (n < 0 && Native.getLastError() == Sys.EINTR);
            if (n < 0) {
                throw ErrnoException.last("recvmsg");
            }
            collectFds(msg, control, fds);
            if ((msg.getInt(MSG_FLAGS) & MSG_CTRUNC) != 0) {
                fds.markTruncated();
            }
            data.read(0, dst, off, (int) n);
            return (int) n;
        }
    }

    private static void collectFds(final Memory msg, final Memory control, final FdList fds) {
        final long controlLen = msg.getLong(MSG_CONTROLLEN);
        long pos = 0;
        while (pos + CMSG_HDR <= controlLen) {
            final long cmsgLen = control.getLong(pos);
            if (cmsgLen < CMSG_HDR || pos + cmsgLen > controlLen) {
                break;
            }
            final int level = control.getInt(pos + 8);
            final int type = control.getInt(pos + 12);
            if (level == SOL_SOCKET && type == SCM_RIGHTS) {
                final int count = (int) ((cmsgLen - CMSG_HDR) / 4);
                for (int i = 0; i < count; i++) {
                    fds.add(control.getInt(pos + CMSG_HDR + 4L * i));
                }
            }
            pos += align8((int) cmsgLen);
        }
    }

    /**
     * sendmsg all of {@code src[off, off+len)}; the descriptors ride with the first byte.
     * MSG_NOSIGNAL: a peer that went away is an IOException (EPIPE), not a SIGPIPE.
     */
    public static void sendMsg(final int fd, final byte[] src, final int off, final int len, final int... fds)
        throws ErrnoException {
        if (fds.length > MAX_FDS_PER_MESSAGE) {
            throw new IllegalArgumentException("too many fds: " + fds.length);
        }
        try (Memory data = new Memory(Math.max(len, 1));
             Memory iov = new Memory(IOVEC_SIZE);
             Memory control = new Memory(CMSG_SPACE_MAX);
             Memory msg = new Memory(MSGHDR_SIZE)) {
            data.write(0, src, off, len);
            int sent = 0;
            boolean withFds = fds.length > 0;
            while (sent < len || withFds) {
                msg.clear();
                iov.setLong(0, Pointer.nativeValue(data) + sent);
                iov.setLong(8, len - sent);
                msg.setLong(MSG_IOV, Pointer.nativeValue(iov));
                msg.setLong(MSG_IOVLEN, 1);
                if (withFds) {
                    final int cmsgLen = CMSG_HDR + 4 * fds.length;
                    control.clear();
                    control.setLong(0, cmsgLen);
                    control.setInt(8, SOL_SOCKET);
                    control.setInt(12, SCM_RIGHTS);
                    for (int i = 0; i < fds.length; i++) {
                        control.setInt(CMSG_HDR + 4L * i, fds[i]);
                    }
                    msg.setLong(MSG_CONTROL, Pointer.nativeValue(control));
                    msg.setLong(MSG_CONTROLLEN, align8(cmsgLen));
                }
                final long n = LibC.sendmsg(fd, Pointer.nativeValue(msg), MSG_NOSIGNAL);
                if (n < 0) {
                    if (Native.getLastError() == Sys.EINTR) {
                        continue;
                    }
                    throw ErrnoException.last("sendmsg");
                }
                withFds = false;
                sent += (int) n;
                if (len == 0) {
                    break;
                }
            }
        }
    }
}
