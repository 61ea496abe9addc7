package org.vsbridge.chardev;

import io.netty.channel.Channel;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoEventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioDomainSocketChannel;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.SocketAddress;
import java.net.UnixDomainSocketAddress;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * The Netty transport of this process: native epoll on Linux when its library loads, NIO otherwise, and the
 * channel classes and Unix socket addresses that match a group. Domain sockets work with both: epoll has its own,
 * NIO uses the JDK 16+ Unix channels ({@link NioDomainSocketChannel}).
 */
public final class Transports {

    private static final Logger LOG = Logger.getLogger(Transports.class.getName());

    private Transports() {
    }

    /** The NIO fallback is logged once per process (a WARNING on Linux, where epoll is expected). */
    private static final java.util.concurrent.atomic.AtomicBoolean NIO_TOLD =
        new java.util.concurrent.atomic.AtomicBoolean();

    static boolean isLinux(final String osName) {
        return osName != null && osName.toLowerCase(java.util.Locale.ROOT).startsWith("linux");
    }

    /**
     * The line that says why the process runs NIO: Netty's reason (in a minimal root file system often an
     * UnsatisfiedLinkError for {@code libdl.so.2}, the innermost cause naming the library) and what needs epoll.
     */
    static String noEpollMessage(final Throwable cause) {
        Throwable root = cause;
        while (root != null && root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        final String reason = cause == null ? "unknown reason"
            : root == cause ? cause.toString() : cause + " (" + root + ")";
        return "native epoll transport not available: " + reason + "; using NIO: pty, pipe, serial and vsock"
            + " chardevs, abstract and fd sockets and QMP uid= need epoll (docs/configuration.md, \"Host libraries\")";
    }

    /** True when the native epoll transport is usable here. */
    public static boolean epollAvailable() {
        return Epoll.isAvailable();
    }

    /**
     * A group of {@code threads} event loops named {@code name-N}: epoll when available, else NIO. Threads are
     * daemons; the owner shuts the group down.
     */
    public static EventLoopGroup newEventLoopGroup(final int threads, final String name) {
        final DefaultThreadFactory factory = new DefaultThreadFactory(name, true);
        final EventLoopGroup group;
        if (Epoll.isAvailable()) {
            group = new MultiThreadIoEventLoopGroup(threads, factory, EpollIoHandler.newFactory());
        } else {
            if (!NIO_TOLD.getAndSet(true)) {
                final Level level = isLinux(System.getProperty("os.name")) ? Level.WARNING : Level.INFO;
                LOG.log(level, noEpollMessage(Epoll.unavailabilityCause()));
            }
            group = new MultiThreadIoEventLoopGroup(threads, factory, NioIoHandler.newFactory());
        }
        // Each loop's first buffer sets up its allocator cache, which took ~100 ms on a busy machine. With direct
        // input a loop may read nothing until a peer closes, and that close must be seen at once: pay it now.
        for (final io.netty.util.concurrent.EventExecutor loop : group) {
            loop.execute(() -> io.netty.buffer.ByteBufAllocator.DEFAULT.ioBuffer(2048).release());
        }
        return group;
    }

    /** True when {@code group} (or event loop) runs the epoll transport. */
    public static boolean isEpoll(final EventLoopGroup group) {
        return Epoll.isAvailable() && group instanceof IoEventLoopGroup io && io.isIoType(EpollIoHandler.class);
    }

    public static Class<? extends ServerChannel> serverSocketChannel(final EventLoopGroup group) {
        return isEpoll(group) ? EpollServerSocketChannel.class : NioServerSocketChannel.class;
    }

    /**
     * A factory of listening TCP channels for {@code host}: an IPv4 address gets an IPv4 socket, as QEMU's (on a
     * default, dual-stack socket, epoll turns a bind to 0.0.0.0 into one to "::", which listens on IPv6 too); any
     * other address, or null for the wildcard, the default one.
     */
    public static io.netty.channel.ChannelFactory<ServerChannel> serverSocketChannelFactory(
        final EventLoopGroup group, final java.net.InetAddress host) {
        final boolean v4 = host instanceof java.net.Inet4Address;
        if (isEpoll(group)) {
            return v4 ? () -> new EpollServerSocketChannel(io.netty.channel.socket.SocketProtocolFamily.INET)
                : EpollServerSocketChannel::new;
        }
        return v4 ? () -> new NioServerSocketChannel(java.nio.channels.spi.SelectorProvider.provider(),
            io.netty.channel.socket.SocketProtocolFamily.INET) : NioServerSocketChannel::new;
    }

    public static Class<? extends Channel> socketChannel(final EventLoopGroup group) {
        return isEpoll(group) ? EpollSocketChannel.class : NioSocketChannel.class;
    }

    public static Class<? extends io.netty.channel.socket.DatagramChannel> datagramChannel(
        final EventLoopGroup group) {
        return isEpoll(group) ? io.netty.channel.epoll.EpollDatagramChannel.class
            : io.netty.channel.socket.nio.NioDatagramChannel.class;
    }

    public static Class<? extends ServerChannel> serverDomainSocketChannel(final EventLoopGroup group) {
        return isEpoll(group) ? EpollServerDomainSocketChannel.class : NioServerDomainSocketChannel.class;
    }

    public static Class<? extends Channel> domainSocketChannel(final EventLoopGroup group) {
        return isEpoll(group) ? EpollDomainSocketChannel.class : NioDomainSocketChannel.class;
    }

    /**
     * Binds {@code b}, a server bootstrap, to the unix socket file {@code path} (the caller has made sure nothing
     * else is there). Netty's own unix server channels, epoll and NIO alike, delete their path when they close,
     * whatever file is there by then; so on epoll the socket is bound and listened here and handed to Netty as a
     * listening descriptor, and its owner removes the file itself, only while it is still its own
     * ({@link UnixSocketFile#removeIfOwn}). The NIO fallback still deletes the path at close.
     *
     * @throws IOException with the strerror text of a failed bind or listen as its message (epoll)
     */
    public static io.netty.channel.ChannelFuture bindUnix(final io.netty.bootstrap.ServerBootstrap b,
                                                          final EventLoopGroup group, final String path,
                                                          final int backlog) throws java.io.IOException {
        if (!isEpoll(group)) {
            return b.channel(NioServerDomainSocketChannel.class).bind(UnixDomainSocketAddress.of(path));
        }
        final byte[] name = path.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        final byte[] sockaddr = new byte[2 + name.length + 1];
        sockaddr[0] = (byte) Sockets.AF_UNIX;
        System.arraycopy(name, 0, sockaddr, 2, name.length);
        final int fd;
        try {
            fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_STREAM | Sockets.SOCK_NONBLOCK | Sockets.SOCK_CLOEXEC, 0);
        } catch (final ErrnoException e) {
            throw new java.io.IOException(e.reason(), e);
        }
        try {
            Sockets.bind(fd, sockaddr, sockaddr.length);
            Sockets.listen(fd, backlog);
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new java.io.IOException(e.reason(), e);
        }
        return b.channelFactory(() -> new EpollServerDomainSocketChannel(fd, true)).register();
    }

    /** The Unix socket address type the group's channels take. */
    public static SocketAddress domainSocketAddress(final EventLoopGroup group, final String path) {
        return isEpoll(group) ? new DomainSocketAddress(path) : UnixDomainSocketAddress.of(path);
    }

    /** The path of a Unix socket address of either transport, or null (unnamed socket, other address type). */
    public static String domainSocketPath(final SocketAddress address) {
        final String path;
        if (address instanceof DomainSocketAddress d) {
            path = d.path();
        } else if (address instanceof UnixDomainSocketAddress u) {
            path = u.getPath().toString();
        } else {
            path = null;
        }
        return path == null || path.isEmpty() ? null : path;
    }
}
