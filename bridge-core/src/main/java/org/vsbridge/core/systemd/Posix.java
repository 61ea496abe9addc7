package org.vsbridge.core.systemd;

import com.sun.jna.Native;
import com.sun.jna.Platform;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The few libc calls the systemd integration needs (notify datagrams, inherited sockets, the journal check),
 * direct-mapped with JNA. None of them is on the data path: they run at start-up, on a signal, or every few
 * seconds for the watchdog.
 */
final class Posix {

    static final int AF_UNIX = 1;
    static final int AF_INET = 2;
    static final int AF_INET6 = 10;
    static final int SOCK_STREAM = 1;
    static final int SOCK_DGRAM = 2;
    static final int SOCK_CLOEXEC = 0x80000;
    static final int MSG_NOSIGNAL = 0x4000;
    static final int SOL_SOCKET = 1;
    static final int SO_TYPE = 3;
    static final int SO_ACCEPTCONN = 30;
    static final int F_GETFD = 1;
    static final int F_SETFD = 2;
    static final int FD_CLOEXEC = 1;
    /** Size of {@code struct sockaddr_un}: a 2-byte family and 108 bytes of path. */
    static final int SOCKADDR_UN_SIZE = 110;
    static final int SUN_PATH_MAX = 108;
    /** {@code struct stat} is 144 bytes on x86-64 and 128 on the generic ABI (aarch64); st_dev and st_ino
     *  are the first two 8-byte fields on both. */
    private static final int STAT_SIZE = 256;

    static {
        Native.register(Platform.C_LIBRARY_NAME);
    }

    private Posix() {
    }

    static native int socket(int domain, int type, int protocol);

    static native long sendto(int fd, byte[] buf, long len, int flags, byte[] addr, int addrlen);

    static native int close(int fd);

    static native int fcntl(int fd, int cmd, int arg);

    static native int getsockopt(int fd, int level, int name, int[] value, int[] length);

    static native int getsockname(int fd, byte[] addr, int[] length);

    static native int fstat(int fd, byte[] stat);

    static native int unsetenv(String name);

    /** sigaction(2); {@code act} null only reads the current action into {@code old} (struct sigaction, 152 bytes
     *  on x86-64 and aarch64, the handler first). */
    static native int sigaction(int sig, com.sun.jna.Pointer act, byte[] old);

    /** signal(2) with a handler value such as SIG_DFL (0). */
    static native long signal(int sig, long handler);

    static final long SIG_DFL = 0;
    static final long SIG_IGN = 1;
    static final int SIGACTION_SIZE = 152;

    /**
     * Sets {@code sig} back to its default action if the parent left it ignored (nohup, some service managers);
     * returns whether it was ignored. A JVM installs no handler for a signal that arrived ignored.
     */
    static boolean unignore(final int sig) {
        final byte[] old = new byte[SIGACTION_SIZE];
        if (sigaction(sig, null, old) != 0) {
            return false;
        }
        final long handler = java.nio.ByteBuffer.wrap(old).order(java.nio.ByteOrder.nativeOrder()).getLong(0);
        if (handler != SIG_IGN) {
            return false;
        }
        signal(sig, SIG_DFL);
        return true;
    }

    static native String strerror(int errnum);

    static IOException error(final String what) {
        final int errno = Native.getLastError();
        return new IOException(what + ": " + strerror(errno) + " (errno " + errno + ")");
    }

    /**
     * A {@code sockaddr_un} for {@code name}: a path, or an abstract name written with a leading '@' as systemd
     * does ({@code NOTIFY_SOCKET=@/org/freedesktop/systemd1/notify/...}). Returns the address length to pass.
     */
    static int sockaddrUn(final String name, final byte[] addr) {
        final boolean isAbstract = name.startsWith("@");
        final byte[] path = (isAbstract ? name.substring(1) : name).getBytes(StandardCharsets.UTF_8);
        // Abstract: a leading NUL then the name, no terminator; path: the name and its NUL. One extra byte either way.
        final int pathBytes = path.length + 1;
        if (pathBytes > SUN_PATH_MAX) {
            throw new IllegalArgumentException("unix socket name too long (" + path.length + " bytes, max "
                + (SUN_PATH_MAX - 1) + "): " + name);
        }
        Arrays.fill(addr, (byte) 0);
        // sa_family_t is host order; every Linux target of this project is little-endian.
        addr[0] = (byte) AF_UNIX;
        addr[1] = 0;
        System.arraycopy(path, 0, addr, isAbstract ? 3 : 2, path.length);
        return 2 + pathBytes;
    }

    /** {@code st_dev} and {@code st_ino} of an open fd. */
    static long[] devIno(final int fd) throws IOException {
        final byte[] stat = new byte[STAT_SIZE];
        if (fstat(fd, stat) != 0) {
            throw error("fstat(" + fd + ")");
        }
        return new long[] {littleEndianLong(stat, 0), littleEndianLong(stat, 8)};
    }

    private static long littleEndianLong(final byte[] b, final int off) {
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = (v << 8) | (b[off + i] & 0xFFL);
        }
        return v;
    }
}
