package org.vsbridge.chardev;

import io.netty.channel.Channel;
import io.netty.channel.ChannelException;
import io.netty.channel.EventLoop;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * The addresses of a {@link SocketChardev}: what its options allow, how they resolve (port, host, family, unix
 * paths and abstract names, passed descriptors), and the names QEMU gives them in {@code filename}.
 */
final class SocketEndpoints {

    private SocketEndpoints() {
    }

    /** Linux {@code sun_path} holds 108 bytes including the terminating NUL. */
    static final int UNIX_PATH_MAX = 108;

    /** What this class cannot do is refused by name (vsock addresses go to {@link VsockChardev}). */
    static void requireBuilt(final ChardevBackend.Socket o, final EventLoop loop) throws ChardevException {
        if (o.addr() instanceof SocketAddressLegacy.Unix u && u.abstractNamespace()) {
            if (!Transports.isEpoll(loop)) {
                throw new ChardevException("abstract unix sockets need the native epoll transport");
            }
        }
        if (o.addr() instanceof SocketAddressLegacy.Inet inet && Boolean.TRUE.equals(inet.mptcp())) {
            Mptcp.requireAvailable(loop);
        }
        if (o.addr() instanceof SocketAddressLegacy.Fd && !Transports.isEpoll(loop)) {
            throw new ChardevException("sockets passed as file descriptors need the native epoll transport");
        }
        if (o.addr() instanceof SocketAddressLegacy.Vsock) {
            throw new IllegalArgumentException("vsock addresses are opened by VsockChardev");
        }
    }

    static int resolveFd(final SocketAddressLegacy.Fd fd, final ChardevObjects objects)
        throws ChardevException {
        final int n;
        if (fd.str().chars().allMatch(Character::isDigit) && !fd.str().isEmpty()) {
            try {
                n = Integer.parseInt(fd.str());
            } catch (final NumberFormatException e) {
                throw new ChardevException("Invalid file descriptor number '" + fd.str() + "'");
            }
        } else {
            n = objects.namedFd(fd.str());
        }
        final int family = Sockets.familyOrNone(n);
        if (family != Sockets.AF_UNIX && family != Sockets.AF_INET && family != Sockets.AF_INET6) {
            throw new ChardevException("File descriptor '" + fd.str() + "' is not a unix or inet socket");
        }
        return n;
    }

    static boolean isUnixFd(final int fd) {
        return Sockets.familyOrNone(fd) == Sockets.AF_UNIX;
    }

    /** A non-blocking AF_UNIX socket connected to the padded abstract name of {@code unix} (tight=off). */
    static int connectPadded(final SocketAddressLegacy.Unix unix) {
        int fd = -1;
        try {
            fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_STREAM | Sockets.SOCK_NONBLOCK | Sockets.SOCK_CLOEXEC, 0);
            Sockets.connect(fd, paddedSockaddr(unix), Sockets.SOCKADDR_UN_SIZE);
            return fd;
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new ChannelException(e.reason(), e);
        }
    }

    /** A non-blocking AF_UNIX socket listening (backlog 1, as QEMU) on the padded abstract name of {@code unix}. */
    static int listenPadded(final SocketAddressLegacy.Unix unix) throws ChardevException {
        int fd = -1;
        try {
            fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_STREAM | Sockets.SOCK_NONBLOCK | Sockets.SOCK_CLOEXEC, 0);
            Sockets.bind(fd, paddedSockaddr(unix), Sockets.SOCKADDR_UN_SIZE);
            Sockets.listen(fd, 1);
            return fd;
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new ChardevException(where(unix) + ": " + e.reason());
        }
    }

    /**
     * {@code struct sockaddr_un} of an abstract name with {@code tight=off}: a NUL, the name, and NULs up to the end
     * of {@code sun_path}, the whole field being the address (a different name than the tight one).
     */
    static byte[] paddedSockaddr(final SocketAddressLegacy.Unix unix) {
        final byte[] name = unix.path().getBytes(StandardCharsets.UTF_8);
        final byte[] sockaddr = new byte[2 + UNIX_PATH_MAX];
        sockaddr[0] = (byte) Sockets.AF_UNIX;
        System.arraycopy(name, 0, sockaddr, 3, name.length);
        return sockaddr;
    }

    static int port(final SocketAddressLegacy.Inet inet, final boolean server) throws ChardevException {
        final int port;
        try {
            port = Integer.parseInt(inet.port());
        } catch (final NumberFormatException e) {
            throw new ChardevException("the bridge does not support service names as port ('" + inet.port()
                + "'): use a number");
        }
        if (port < (server ? 0 : 1) || port > 65535) {
            throw new ChardevException("Port '" + inet.port() + "' out of range");
        }
        return port;
    }

    /**
     * The address of {@code host}, restricted as QEMU's inet options say: {@code ipv4}/{@code ipv6} pick the
     * family (an empty host is that family's any-address), {@code numeric} forbids a name lookup.
     */
    static InetAddress resolve(final SocketAddressLegacy.Inet inet) throws ChardevException {
        final boolean v4 = !Boolean.FALSE.equals(inet.ipv4()) && !(Boolean.TRUE.equals(inet.ipv6())
            && inet.ipv4() == null);
        final boolean v6 = !Boolean.FALSE.equals(inet.ipv6()) && !(Boolean.TRUE.equals(inet.ipv4())
            && inet.ipv6() == null);
        if (!v4 && !v6) {
            throw new ChardevException("address resolution failed for " + inet.host() + ":" + inet.port()
                + ": ipv4=off and ipv6=off leave no address family");
        }
        try {
            if (inet.host().isEmpty()) {
                return InetAddress.getByName(v4 ? "0.0.0.0" : "::");
            }
            final String host = unbracketed(inet.host());
            if (Boolean.TRUE.equals(inet.numeric()) && !(host.matches("\\d{1,3}(\\.\\d{1,3}){3}") || host.contains(":"))) {
                throw new UnknownHostException(host);
            }
            for (final InetAddress a : InetAddress.getAllByName(host)) {
                if ((a instanceof java.net.Inet4Address && v4) || (a instanceof java.net.Inet6Address && v6)) {
                    return a;
                }
            }
            throw new UnknownHostException(host);
        } catch (final UnknownHostException e) {
            throw new ChardevException("address resolution failed for " + inet.host() + ":" + inet.port()
                + ": Name or service not known");
        }
    }

    /** An empty host and neither family asked for: every address of both families. */
    static boolean anyFamily(final SocketAddressLegacy.Inet inet) {
        return inet.host().isEmpty() && inet.ipv4() == null && inet.ipv6() == null;
    }

    /** An IPv6 literal without the brackets the option may carry. */
    static String unbracketed(final String host) {
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }

    static void checkUnixPath(final String path) throws ChardevException {
        if (path.getBytes(StandardCharsets.UTF_8).length >= UNIX_PATH_MAX) {
            throw new ChardevException("UNIX socket path '" + path + "' is too long");
        }
        if (path.isEmpty()) {
            throw new ChardevException("the bridge does not support unix sockets with an empty path");
        }
    }

    static String where(final SocketAddressLegacy.Unix unix) {
        return "Failed to bind socket to " + unix.path();
    }

    /**
     * A socket file left by an earlier run would make bind fail: it is removed when nobody listens on it. A live
     * socket or any other kind of file is refused (the cause says so: retrying cannot help).
     */
    static void removeStaleSocket(final String path) throws ChardevException {
        try {
            UnixSocketFile.removeIfStale(Path.of(path));
        } catch (final UnixSocketFile.InUseException e) {
            throw new ChardevException(e.getMessage(), e);
        } catch (final IOException e) {
            throw new ChardevException("Failed to unlink socket " + path + ": " + FileChardev.reason(e));
        }
    }

    /**
     * What the options alone decide, before anything is opened: port numbers, unix socket paths, and the directory
     * a server's socket file goes to.
     */
    static void checkOpenable(final ChardevBackend.Socket o) throws ChardevException {
        if (o.addr() instanceof SocketAddressLegacy.Inet inet) {
            port(inet, o.server());
        } else if (o.addr() instanceof SocketAddressLegacy.Unix unix) {
            checkUnixPath(unix.path());
            if (o.server() && !unix.abstractNamespace()) {
                final String why = UnixSocketFile.whyNotBindable(Path.of(unix.path()));
                if (why != null) {
                    throw new ChardevException(why);
                }
            }
        }
    }

    static String reason(final Throwable t) {
        return Errno.reason(t);
    }

    /** The same listening address: a unix path (or abstract name) or a host and a fixed port of one family. */
    static boolean sameAddress(final SocketAddressLegacy a, final SocketAddressLegacy b) {
        if (a instanceof SocketAddressLegacy.Unix x && b instanceof SocketAddressLegacy.Unix y) {
            return x.path().equals(y.path()) && x.abstractNamespace() == y.abstractNamespace()
                && x.tight() == y.tight();
        }
        if (a instanceof SocketAddressLegacy.Inet x && b instanceof SocketAddressLegacy.Inet y) {
            return x.host().equals(y.host()) && x.port().equals(y.port()) && !"0".equals(x.port())
                && java.util.Objects.equals(x.to(), y.to()) && java.util.Objects.equals(x.ipv4(), y.ipv4())
                && java.util.Objects.equals(x.ipv6(), y.ipv6())
                && Boolean.TRUE.equals(x.mptcp()) == Boolean.TRUE.equals(y.mptcp()); // one socket: one protocol
        }
        return false;
    }

    /**
     * QEMU's {@code qemu_chr_socket_address}: {@code tcp:HOST:PORT[,server=on]} or {@code unix:PATH[,server=on]};
     * a server names its bound address.
     */
    static String describe(final ChardevBackend.Socket options, final SocketAddressLegacy addr, final SocketAddress bound, final boolean server) {
        final String suffix = server ? ",server=on" : "";
        if (addr instanceof SocketAddressLegacy.Unix unix) {
            final String abs = unix.abstractNamespace() ? ",abstract=on" + (unix.tight() ? ",tight=on" : "") : "";
            return "unix:" + unix.path() + abs + suffix;
        }
        if (addr instanceof SocketAddressLegacy.Inet inet) {
            if (bound instanceof InetSocketAddress b) {
                // QEMU listens on 0.0.0.0 and :: for an empty host and names the first: the dual-stack socket here
                // is both.
                return protocol(options) + ":" + (anyFamily(inet) ? "0.0.0.0" : SocketNames.numericHost(b.getAddress()))
                    + ":" + b.getPort() + suffix;
            }
            return protocol(options) + ":" + inet.host() + ":" + inet.port() + suffix;
        }
        if (addr instanceof SocketAddressLegacy.Fd fd) {
            return "fd:" + fd.str() + suffix;
        }
        return addr.type() + suffix;
    }

    /** QEMU's qemu_chr_socket_protocol. */
    private static String protocol(final ChardevBackend.Socket options) {
        return options.telnet() ? "telnet" : options.websocket() ? "websocket" : "tcp";
    }

    /** QEMU's {@code qemu_chr_compute_filename} for a connected socket. */
    static String connectedName(final ChardevBackend.Socket options, final Channel c) {
        final String suffix = options.server() ? ",server=on" : "";
        if (c.localAddress() instanceof InetSocketAddress local
            && c.remoteAddress() instanceof InetSocketAddress remote) {
            return protocol(options) + ":" + SocketNames.hostPort(local) + suffix + " <-> " + SocketNames.hostPort(remote);
        }
        if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            // QEMU prints sun_path with %s: an abstract name starts with NUL, so it prints as empty.
            if (unix.abstractNamespace()) {
                return "unix:" + suffix;
            }
            if (options.server()) {
                return "unix:" + unix.path() + suffix;
            }
            final String peer = Transports.domainSocketPath(c.remoteAddress());
            return "unix:" + (peer != null ? peer : unix.path());
        }
        if (options.addr() instanceof SocketAddressLegacy.Fd) {
            final String path = Transports.domainSocketPath(options.server() ? c.localAddress() : c.remoteAddress());
            return "unix:" + (path == null ? "" : path) + suffix;
        }
        return "unknown";
    }
}
