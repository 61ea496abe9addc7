package org.vsbridge.vhost.sys;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The Linux system calls the engine needs, through JNA direct mapping. Setup calls throw
 * {@link IOException} carrying the strerror text; the data-path calls ({@link #eventfdSignal},
 * {@link #eventfdDrain}, {@link #epollWait}) return a negative errno instead and allocate nothing.
 *
 * <p>Public on purpose: tests of other modules use the memfd, eventfd and socket helpers.
 */
public final class Sys {

    public static final int EAGAIN = 11;
    public static final int EINTR = 4;
    public static final int EBADF = 9;

    public static final int EPOLLIN = 0x1;
    public static final int EPOLLERR = 0x8;
    public static final int EPOLLHUP = 0x10;
    public static final int EPOLLOUT = 0x4;
    public static final int EPOLLONESHOT = 1 << 30;
    private static final int ENOENT = 2;

    /** Linux SCM_MAX_FD: the most descriptors one message can carry. */
    public static final int MAX_FDS_PER_MESSAGE = 253;

    /** struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16). */
    public static final int EPOLL_EVENT_SIZE = Platform.isIntel() && Platform.is64Bit() ? 12 : 16;
    private static final int EPOLL_DATA_OFFSET = Platform.isIntel() && Platform.is64Bit() ? 4 : 8;

    private static final int O_NONBLOCK = 0x800;
    private static final int O_CLOEXEC = 0x80000;
    private static final int EFD_NONBLOCK = O_NONBLOCK;
    private static final int EFD_CLOEXEC = O_CLOEXEC;
    private static final int EPOLL_CLOEXEC = O_CLOEXEC;
    private static final int EPOLL_CTL_ADD = 1;
    private static final int EPOLL_CTL_DEL = 2;
    private static final int EPOLL_CTL_MOD = 3;
    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = O_CLOEXEC;
    private static final int SHUT_RDWR = 2;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_SHARED = 0x1;
    private static final int MAP_NORESERVE = 0x4000;
    private static final int MFD_CLOEXEC = 0x1;
    private static final short POLLIN = 0x1;
    private static final int POLL_READY = 0x1 | 0x8 | 0x10 | 0x20; // POLLIN|POLLERR|POLLHUP|POLLNVAL
    private static final int SC_PAGESIZE = 30;
    private static final int SUN_PATH_MAX = 108;

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

    private static final int PAGE_SIZE = (int) LibC.sysconf(SC_PAGESIZE);

    /** 8-byte scratch per thread for eventfd read/write: allocated once per thread, never per call. */
    private static final ThreadLocal<Memory> SCRATCH = ThreadLocal.withInitial(() -> new Memory(8));
    private static final ThreadLocal<Memory> EVENT_SCRATCH = ThreadLocal.withInitial(() -> new Memory(16));

    private Sys() {
    }

    public static int pageSize() {
        return PAGE_SIZE;
    }

    /** strerror text of an errno value. */
    public static String strerror(final int errno) {
        final String text = LibC.strerror(errno);
        return text == null ? "errno " + errno : text;
    }

    private static IOException error(final String what) {
        final int errno = Native.getLastError();
        return new IOException(what + ": " + strerror(errno) + " (errno " + errno + ")");
    }

    private static int align8(final int n) {
        return (n + 7) & ~7;
    }

    // ---------------------------------------------------------------- fds

    /** Close, ignoring errors (used on paths that are already handling another failure). */
    public static void closeQuietly(final int fd) {
        if (fd >= 0) {
            LibC.close(fd);
        }
    }

    public static void close(final int fd) throws IOException {
        if (LibC.close(fd) != 0) {
            throw error("close(" + fd + ")");
        }
    }

    /** True if {@code fd} is an open descriptor of this process. */
    public static boolean isOpen(final int fd) {
        return fd >= 0 && LibC.fcntl(fd, 1 /* F_GETFD */, 0) >= 0;
    }

    // ---------------------------------------------------------------- eventfd

    /** A new non-blocking, close-on-exec eventfd with counter 0. */
    public static int eventfd() throws IOException {
        final int fd = LibC.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            throw error("eventfd");
        }
        return fd;
    }

    /** Data path: add 1 to an eventfd. Returns 0 or a positive errno. */
    public static int eventfdSignal(final int fd) {
        final Memory scratch = SCRATCH.get();
        scratch.setLong(0, 1L);
        if (LibC.write(fd, Pointer.nativeValue(scratch), 8) == 8) {
            return 0;
        }
        return Native.getLastError();
    }

    /** Data path: read and reset an eventfd counter. Returns the counter, 0 if it was 0 (EAGAIN),
     *  or a negative errno. */
    public static long eventfdDrain(final int fd) {
        final Memory scratch = SCRATCH.get();
        if (LibC.read(fd, Pointer.nativeValue(scratch), 8) == 8) {
            return scratch.getLong(0);
        }
        final int errno = Native.getLastError();
        return errno == EAGAIN ? 0 : -errno;
    }

    // ---------------------------------------------------------------- epoll

    public static int epollCreate() throws IOException {
        final int fd = LibC.epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) {
            throw error("epoll_create1");
        }
        return fd;
    }

    /** Watch {@code fd} for input; {@code data} comes back in the event. */
    public static void epollAdd(final int epfd, final int fd, final int data) throws IOException {
        try (Memory event = new Memory(EPOLL_EVENT_SIZE)) {
            event.clear();
            event.setInt(0, EPOLLIN);
            event.setInt(EPOLL_DATA_OFFSET, data);
            if (LibC.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, Pointer.nativeValue(event)) != 0) {
                throw error("epoll_ctl(ADD, fd " + fd + ")");
            }
        }
    }

    /**
     * Data path: watch {@code fd} once for {@code events} ({@link #EPOLLONESHOT} added): modifies the fd's entry,
     * or adds it when there is none. Returns 0 or a negative errno; allocates nothing.
     */
    public static int epollArmOnce(final int epfd, final int fd, final int events, final int data) {
        final Memory event = EVENT_SCRATCH.get();
        event.setInt(0, events | EPOLLONESHOT);
        event.setInt(EPOLL_DATA_OFFSET, data);
        final long at = Pointer.nativeValue(event);
        if (LibC.epoll_ctl(epfd, EPOLL_CTL_MOD, fd, at) == 0) {
            return 0;
        }
        int errno = Native.getLastError();
        if (errno == ENOENT) {
            if (LibC.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, at) == 0) {
                return 0;
            }
            errno = Native.getLastError();
        }
        return -errno;
    }

    /** Stop watching; errors (fd already closed) are ignored. */
    public static void epollDel(final int epfd, final int fd) {
        try (Memory event = new Memory(EPOLL_EVENT_SIZE)) {
            event.clear();
            LibC.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, Pointer.nativeValue(event));
        }
    }

    /** Data path: wait for events into {@code events} (an array of {@link #EPOLL_EVENT_SIZE} entries).
     *  Returns the number of events, 0 on timeout or EINTR, or a negative errno. */
    public static int epollWait(final int epfd, final long events, final int maxEvents, final int timeoutMs) {
        final int n = LibC.epoll_wait(epfd, events, maxEvents, timeoutMs);
        if (n >= 0) {
            return n;
        }
        final int errno = Native.getLastError();
        return errno == EINTR ? 0 : -errno;
    }

    /** The data word of event {@code i} in an epoll result array. */
    public static int epollEventData(final Pointer events, final int i) {
        return events.getInt((long) i * EPOLL_EVENT_SIZE + EPOLL_DATA_OFFSET);
    }

    /** The event bits of event {@code i} in an epoll result array. */
    public static int epollEventBits(final Pointer events, final int i) {
        return events.getInt((long) i * EPOLL_EVENT_SIZE);
    }

    // ---------------------------------------------------------------- poll

    /** Waits until one of {@code fds} is readable (or hung up). Returns a bit mask: bit i set = fds[i]
     *  is ready; 0 on timeout. At most 31 fds. {@code timeoutMs} &lt; 0 waits forever. */
    public static int pollReadable(final int[] fds, final int timeoutMs) throws IOException {
        if (fds.length > 31) {
            throw new IllegalArgumentException("at most 31 fds");
        }
        try (Memory pfds = new Memory(8L * fds.length)) {
            for (int i = 0; i < fds.length; i++) {
                pfds.setInt(8L * i, fds[i]);
                pfds.setShort(8L * i + 4, POLLIN);
                pfds.setShort(8L * i + 6, (short) 0);
            }
            final int n = LibC.poll(Pointer.nativeValue(pfds), fds.length, timeoutMs);
            if (n < 0) {
                if (Native.getLastError() == EINTR) {
                    return 0;
                }
                throw error("poll");
            }
            int mask = 0;
            for (int i = 0; i < fds.length; i++) {
                if ((pfds.getShort(8L * i + 6) & POLL_READY) != 0) {
                    mask |= 1 << i;
                }
            }
            return mask;
        }
    }

    // ---------------------------------------------------------------- unix sockets

    private static byte[] sockaddrUn(final Path path) throws IOException {
        final byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        if (name.length >= SUN_PATH_MAX) {
            throw new IOException("socket path too long (" + name.length + " bytes, max "
                + (SUN_PATH_MAX - 1) + "): " + path);
        }
        final byte[] addr = new byte[2 + SUN_PATH_MAX];
        addr[0] = (byte) AF_UNIX; // sa_family_t, little-endian host
        System.arraycopy(name, 0, addr, 2, name.length);
        return addr;
    }

    /** A listening AF_UNIX stream socket bound to {@code path} (which must not exist). */
    public static int unixListen(final Path path, final int backlog) throws IOException {
        final byte[] addr = sockaddrUn(path);
        final int fd = LibC.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw error("socket(AF_UNIX)");
        }
        if (LibC.bind(fd, addr, addr.length) != 0) {
            final IOException e = new IOException("Failed to bind socket to " + path + ": "
                + strerror(Native.getLastError()));
            closeQuietly(fd);
            throw e;
        }
        if (LibC.listen(fd, backlog) != 0) {
            final IOException e = error("listen(" + path + ")");
            closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** A connected AF_UNIX stream socket. */
    public static int unixConnect(final Path path) throws IOException {
        final byte[] addr = sockaddrUn(path);
        final int fd = LibC.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw error("socket(AF_UNIX)");
        }
        if (LibC.connect(fd, addr, addr.length) != 0) {
            final IOException e = error("connect(" + path + ")");
            closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** Accept one connection (close-on-exec). */
    public static int accept(final int listenFd) throws IOException {
        final int fd = LibC.accept4(listenFd, 0, 0, SOCK_CLOEXEC);
        if (fd < 0) {
            throw error("accept4");
        }
        return fd;
    }

    /** A connected pair of AF_UNIX stream sockets (close-on-exec). */
    public static int[] socketpair() throws IOException {
        final int[] sv = new int[2];
        if (LibC.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            throw error("socketpair");
        }
        return sv;
    }

    /** shutdown(SHUT_RDWR), ignoring errors: wakes a peer blocked on the socket. */
    public static void shutdownQuietly(final int fd) {
        if (fd >= 0) {
            LibC.shutdown(fd, SHUT_RDWR);
        }
    }

    public static void unlink(final Path path) throws IOException {
        if (LibC.unlink(path.toString()) != 0) {
            throw error("unlink(" + path + ")");
        }
    }

    /**
     * recvmsg into {@code dst[off, off+len)}, collecting SCM_RIGHTS descriptors into {@code fds}
     * (cleared first, close-on-exec). Returns the byte count, 0 at end of stream. MSG_CTRUNC is
     * reported through {@link FdList#truncated()}; the descriptors that did arrive are still in the list
     * so the caller can close them.
     */
    public static int recvMsg(final int fd, final byte[] dst, final int off, final int len, final FdList fds)
        throws IOException {
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
            } while (n < 0 && Native.getLastError() == EINTR);
            if (n < 0) {
                throw error("recvmsg");
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
        throws IOException {
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
                    if (Native.getLastError() == EINTR) {
                        continue;
                    }
                    throw error("sendmsg");
                }
                withFds = false;
                sent += (int) n;
                if (len == 0) {
                    break;
                }
            }
        }
    }

    // ---------------------------------------------------------------- memory

    /** An anonymous shared-memory file of {@code size} bytes (close-on-exec). */
    public static int memfdCreate(final String name, final long size) throws IOException {
        final int fd = LibC.memfd_create(name, MFD_CLOEXEC);
        if (fd < 0) {
            throw error("memfd_create(" + name + ")");
        }
        if (LibC.ftruncate(fd, size) != 0) {
            final IOException e = error("ftruncate(memfd, " + size + ")");
            closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    private static final int MFD_ALLOW_SEALING = 2;
    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    /** memfd seals: no shrinking, no growing (the mapping of the whole file stays valid). */
    public static final int F_SEAL_SHRINK = 2;
    public static final int F_SEAL_GROW = 4;

    /** A memfd of {@code size} bytes that can never shrink or grow: whoever else holds it cannot make a mapping of
     *  it fault (close-on-exec). */
    public static int memfdCreateSealed(final String name, final long size) throws IOException {
        final int fd = LibC.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            throw error("memfd_create(" + name + ")");
        }
        if (LibC.ftruncate(fd, size) != 0 || LibC.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
            final IOException e = error("sizing and sealing memfd " + name);
            closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** The seals of a memfd (0 for a file that has none or cannot have any). */
    public static int seals(final int fd) {
        final int s = LibC.fcntl(fd, F_GET_SEALS, 0);
        return Math.max(s, 0);
    }

    /** A second descriptor for the file behind {@code fd} (close-on-exec). */
    public static int dup(final int fd) throws IOException {
        final int copy = LibC.fcntl(fd, 1030 /* F_DUPFD_CLOEXEC */, 0);
        if (copy < 0) {
            throw error("fcntl(fd " + fd + ", F_DUPFD_CLOEXEC)");
        }
        return copy;
    }

    /** The size of the file behind {@code fd} (its end, by lseek; the file position is left at the end). */
    public static long fileSize(final int fd) throws IOException {
        final long size = LibC.lseek(fd, 0, 2 /* SEEK_END */);
        if (size < 0) {
            throw error("lseek(fd " + fd + ", SEEK_END)");
        }
        return size;
    }

    /**
     * Map {@code length} bytes of {@code fd} at {@code offset}, shared, read-write, without reserving
     * swap and without prefaulting. An offset that is not page-aligned is aligned down and the
     * remainder remembered (some frontends send unaligned offsets).
     */
    public static Mapping mmap(final int fd, final long length, final long offset) throws IOException {
        if (length <= 0 || offset < 0) {
            throw new IOException("mmap: bad length " + length + " or offset " + offset);
        }
        final long remainder = offset & (PAGE_SIZE - 1);
        final long mapLength = length + remainder;
        if (mapLength < length) {
            throw new IOException("mmap: length " + length + " overflows");
        }
        final long base = LibC.mmap(0, mapLength, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
            offset - remainder);
        if (base == -1L) {
            throw error("mmap(fd " + fd + ", " + length + " bytes at offset " + offset + ")");
        }
        return new Mapping(base, mapLength, base + remainder, length);
    }

    public static void munmap(final Mapping mapping) throws IOException {
        if (LibC.munmap(mapping.base(), mapping.mapLength()) != 0) {
            throw error("munmap");
        }
    }

    /** The result of {@link #mmap}: {@code address} is where offset {@code offset} of the file landed. */
    public record Mapping(long base, long mapLength, long address, long length) {
    }
}
