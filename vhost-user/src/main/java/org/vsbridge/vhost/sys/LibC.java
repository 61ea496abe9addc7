package org.vsbridge.vhost.sys;

import com.sun.jna.Native;
import com.sun.jna.Platform;

/**
 * Direct-mapped libc entry points (JNA {@code Native.register}, about 4x cheaper than interface mapping).
 * Pointers are passed as plain {@code long} process addresses so the data path allocates nothing;
 * callers read errno with {@link Native#getLastError()} right after a call returns -1.
 * Package-private: everything else goes through {@link Sys}, which turns errno into IOException.
 */
final class LibC {

    static {
        Native.register(Platform.C_LIBRARY_NAME);
    }

    private LibC() {
    }

    static native long read(int fd, long buf, long count);

    static native long write(int fd, long buf, long count);

    static native int close(int fd);

    static native int eventfd(int initval, int flags);

    static native int epoll_create1(int flags);

    static native int epoll_ctl(int epfd, int op, int fd, long event);

    static native int epoll_wait(int epfd, long events, int maxevents, int timeout);

    static native int poll(long fds, long nfds, int timeout);

    static native int socket(int domain, int type, int protocol);

    static native int socketpair(int domain, int type, int protocol, int[] sv);

    static native int bind(int fd, byte[] addr, int addrlen);

    static native int connect(int fd, byte[] addr, int addrlen);

    static native int listen(int fd, int backlog);

    static native int accept4(int fd, long addr, long addrlen, int flags);

    static native int shutdown(int fd, int how);

    static native long recvmsg(int fd, long msghdr, int flags);

    static native long sendmsg(int fd, long msghdr, int flags);

    static native long mmap(long addr, long length, int prot, int flags, int fd, long offset);

    static native int munmap(long addr, long length);

    static native int memfd_create(String name, int flags);

    static native int ftruncate(int fd, long length);

    static native long lseek(int fd, long offset, int whence);

    static native int unlink(String path);

    static native int fcntl(int fd, int cmd, int arg);

    static native String strerror(int errnum);

    static native long sysconf(int name);
}
