package org.vsbridge.libc;

import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * The project's one binding of libc: direct-mapped entry points (JNA {@code Native.register}, about 4x cheaper than
 * interface mapping). Pointers the data path passes are plain {@code long} process addresses so it allocates
 * nothing. No method throws: a failed call returns -1 and the caller reads errno with {@link Native#getLastError()}
 * right away; the public classes of this package turn that into an {@link ErrnoException} (setup paths) or a
 * negative errno (data path). Package-private: nothing outside this package calls libc itself.
 */
final class LibC {

    /** False when libc could not be bound (not Linux); every native method then throws UnsatisfiedLinkError. */
    static final boolean AVAILABLE;

    static {
        boolean ok = false;
        if (Platform.isLinux()) {
            try {
                Native.register(LibC.class, Platform.C_LIBRARY_NAME);
                ok = true;
            } catch (final UnsatisfiedLinkError | RuntimeException e) {
                ok = false;
            }
        }
        AVAILABLE = ok;
    }

    private LibC() {
    }

    // ---------------------------------------------------------------- fds and files

    static native long read(int fd, long buf, long count);

    static native long write(int fd, long buf, long count);

    static native int open(String path, int flags, int mode);

    static native int close(int fd);

    static native int fcntl(int fd, int cmd, int arg);

    static native int ioctl(int fd, long request, int[] value);

    static native int fstat(int fd, byte[] stat);

    static native long lseek(int fd, long offset, int whence);

    static native int ftruncate(int fd, long length);

    static native int unlink(String path);

    static native int poll(long fds, long nfds, int timeout);

    static native int eventfd(int initval, int flags);

    static native int epoll_create1(int flags);

    static native int epoll_ctl(int epfd, int op, int fd, long event);

    static native int epoll_wait(int epfd, long events, int maxevents, int timeout);

    // ---------------------------------------------------------------- sockets

    static native int socket(int domain, int type, int protocol);

    static native int socketpair(int domain, int type, int protocol, int[] sv);

    static native int bind(int fd, byte[] addr, int addrlen);

    static native int connect(int fd, byte[] addr, int addrlen);

    static native int listen(int fd, int backlog);

    static native int accept4(int fd, long addr, long addrlen, int flags);

    static native int shutdown(int fd, int how);

    static native int getsockname(int fd, byte[] addr, int[] addrlen);

    static native int getsockopt(int fd, int level, int name, int[] value, int[] length);

    static native long recvmsg(int fd, long msghdr, int flags);

    static native long sendmsg(int fd, long msghdr, int flags);

    static native long sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen);

    // ---------------------------------------------------------------- memory

    static native long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    static native int munmap(long addr, long length);

    static native int memfd_create(String name, int flags);

    static native long sysconf(int name);

    // ---------------------------------------------------------------- terminals

    static native int posix_openpt(int flags);

    static native int grantpt(int fd);

    static native int unlockpt(int fd);

    /** Returns 0 or an error number itself (not through errno). */
    static native int ptsname_r(int fd, byte[] buf, long buflen);

    static native int isatty(int fd);

    static native int tcgetattr(int fd, byte[] termios);

    static native int tcsetattr(int fd, int action, byte[] termios);

    static native void cfmakeraw(byte[] termios);

    static native int tcgetpgrp(int fd);

    static native int getpgrp();

    // ---------------------------------------------------------------- process

    /** sigaction(2); {@code act} 0 (NULL) only reads the current action into {@code old}. */
    static native int sigaction(int sig, long act, byte[] old);

    static native long signal(int sig, long handler);

    static native String getenv(String name);

    static native int unsetenv(String name);

    static native String strerror(int errnum);
}
