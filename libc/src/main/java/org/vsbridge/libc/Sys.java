package org.vsbridge.libc;

import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Platform;
import com.sun.jna.Pointer;

import java.io.IOException;

/**
 * Descriptors, eventfd, epoll and poll. Setup calls throw {@link ErrnoException}; the data-path calls
 * ({@link #eventfdSignal}, {@link #eventfdDrain}, {@link #epollWait}, {@link #epollArmOnce}) return a negative errno
 * instead and allocate nothing. Sockets are in {@link Sockets}, memory in {@link SharedMemory}, terminals in
 * {@link Tty}, signals and the environment in {@link Proc}. Constants are Linux x86-64/aarch64 values.
 *
 * <p>Public on purpose: tests of other modules use the memfd, eventfd and socket helpers.
 */
public final class Sys {

    public static final int EINTR = 4;
    public static final int EBADF = 9;
    public static final int EAGAIN = 11;
    private static final int ENOENT = 2;

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_NOCTTY = 0400;
    public static final int O_NONBLOCK = 04000;
    public static final int O_CLOEXEC = 02000000;

    public static final int F_GETFD = 1;
    public static final int F_SETFD = 2;
    public static final int F_GETFL = 3;
    public static final int F_SETFL = 4;
    public static final int F_DUPFD_CLOEXEC = 1030;
    public static final int FD_CLOEXEC = 1;

    public static final int EPOLLIN = 0x1;
    public static final int EPOLLOUT = 0x4;
    public static final int EPOLLERR = 0x8;
    public static final int EPOLLHUP = 0x10;
    public static final int EPOLLONESHOT = 1 << 30;

    public static final short POLLIN = 0x1;
    public static final short POLLOUT = 0x4;
    public static final short POLLERR = 0x8;
    public static final short POLLHUP = 0x10;
    public static final short POLLRDHUP = 0x2000;
    private static final int POLL_READY = 0x1 | 0x8 | 0x10 | 0x20; // POLLIN|POLLERR|POLLHUP|POLLNVAL

    /** struct epoll_event is packed on x86-64 (12 bytes) and naturally aligned elsewhere (16). */
    public static final int EPOLL_EVENT_SIZE = Platform.isIntel() && Platform.is64Bit() ? 12 : 16;
    private static final int EPOLL_DATA_OFFSET = Platform.isIntel() && Platform.is64Bit() ? 4 : 8;

    private static final int EFD_NONBLOCK = O_NONBLOCK;
    private static final int EFD_CLOEXEC = O_CLOEXEC;
    private static final int EPOLL_CLOEXEC = O_CLOEXEC;
    private static final int EPOLL_CTL_ADD = 1;
    private static final int EPOLL_CTL_DEL = 2;
    private static final int EPOLL_CTL_MOD = 3;

    /** {@code struct stat} is 144 bytes on x86-64 and 128 on the generic ABI (aarch64); st_dev and st_ino are the
     *  first two 8-byte fields on both. */
    private static final int STAT_SIZE = 256;

    /** 8-byte scratch per thread for eventfd read/write: allocated once per thread, never per call. */
    private static final ThreadLocal<Memory> SCRATCH = ThreadLocal.withInitial(() -> new Memory(8));
    private static final ThreadLocal<Memory> EVENT_SCRATCH = ThreadLocal.withInitial(() -> new Memory(16));
    /** One {@code struct pollfd} (int fd, short events, short revents) per thread for the single-fd checks. */
    private static final ThreadLocal<Memory> POLLFD_SCRATCH = ThreadLocal.withInitial(() -> new Memory(8));

    private Sys() {
    }

    /** True when libc could be bound (Linux); every other method fails when it is false. */
    public static boolean available() {
        return LibC.AVAILABLE;
    }

    /** strerror text of an errno value. strerror may fill a shared buffer for unknown values: one caller at a time. */
    public static synchronized String strerror(final int errno) {
        final String text = LibC.strerror(errno);
        return text == null ? "errno " + errno : text;
    }

    // ---------------------------------------------------------------- fds

    /** Close, ignoring errors (used on paths that are already handling another failure). */
    public static void closeQuietly(final int fd) {
        if (fd >= 0) {
            LibC.close(fd);
        }
    }

    public static void close(final int fd) throws ErrnoException {
        if (LibC.close(fd) != 0) {
            throw ErrnoException.last("close(" + fd + ")");
        }
    }

    /** True if {@code fd} is an open descriptor of this process. */
    public static boolean isOpen(final int fd) {
        return fd >= 0 && LibC.fcntl(fd, F_GETFD, 0) >= 0;
    }

    /** open(2) with mode 0 (no file is created). */
    public static int open(final String path, final int flags) throws ErrnoException {
        final int fd = LibC.open(path, flags, 0);
        if (fd < 0) {
            throw ErrnoException.last("open(" + path + ")");
        }
        return fd;
    }

    /** fcntl(2) with an int argument; returns what the command returns. */
    public static int fcntl(final int fd, final int cmd, final int arg) throws ErrnoException {
        final int r = LibC.fcntl(fd, cmd, arg);
        if (r < 0) {
            throw ErrnoException.last("fcntl(fd " + fd + ", " + cmd + ")");
        }
        return r;
    }

    /** A second descriptor for the file behind {@code fd} (close-on-exec). */
    public static int dup(final int fd) throws ErrnoException {
        final int copy = LibC.fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (copy < 0) {
            throw ErrnoException.last("fcntl(fd " + fd + ", F_DUPFD_CLOEXEC)");
        }
        return copy;
    }

    public static void setNonBlocking(final int fd) throws ErrnoException {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    }

    /** {@code st_dev} and {@code st_ino} of an open fd. */
    public static long[] devIno(final int fd) throws ErrnoException {
        final byte[] stat = new byte[STAT_SIZE];
        if (LibC.fstat(fd, stat) != 0) {
            throw ErrnoException.last("fstat(" + fd + ")");
        }
        return new long[] {littleEndianLong(stat, 0), littleEndianLong(stat, 8)};
    }

    /** Bytes waiting to be read on {@code fd} (FIONREAD); 0 when that cannot be asked. */
    public static int queuedInput(final int fd) {
        final int[] value = {0};
        return LibC.ioctl(fd, 0x541B /* FIONREAD */, value) < 0 ? 0 : value[0];
    }

    // ---------------------------------------------------------------- eventfd

    /** A new non-blocking, close-on-exec eventfd with counter 0. */
    public static int eventfd() throws ErrnoException {
        final int fd = LibC.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            throw ErrnoException.last("eventfd");
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

    public static int epollCreate() throws ErrnoException {
        final int fd = LibC.epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) {
            throw ErrnoException.last("epoll_create1");
        }
        return fd;
    }

    /** Watch {@code fd} for input; {@code data} comes back in the event. */
    public static void epollAdd(final int epfd, final int fd, final int data) throws ErrnoException {
        try (Memory event = new Memory(EPOLL_EVENT_SIZE)) {
            event.clear();
            event.setInt(0, EPOLLIN);
            event.setInt(EPOLL_DATA_OFFSET, data);
            if (LibC.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, Pointer.nativeValue(event)) != 0) {
                throw ErrnoException.last("epoll_ctl(ADD, fd " + fd + ")");
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
                throw ErrnoException.last("poll");
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

    /** Polls {@code fd} for {@code events} at once: the revents bits, 0 when nothing is pending, or -1 when poll
     *  failed. Allocates nothing. */
    public static int pollNow(final int fd, final short events) {
        final Memory pfd = POLLFD_SCRATCH.get();
        pfd.setInt(0, fd);
        pfd.setShort(4, events);
        pfd.setShort(6, (short) 0);
        final int n = LibC.poll(Pointer.nativeValue(pfd), 1, 0);
        if (n < 0) {
            return -1;
        }
        return n == 0 ? 0 : pfd.getShort(6) & 0xFFFF;
    }

    /** True when the peer side of {@code fd} hung up (a pty master without an open slave), polled at once. */
    public static boolean hungUp(final int fd) {
        final int revents = pollNow(fd, POLLIN);
        return revents > 0 && (revents & POLLHUP) != 0;
    }

    static long littleEndianLong(final byte[] b, final int off) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (b[off + i] & 0xFFL);
        }
        return v;
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
