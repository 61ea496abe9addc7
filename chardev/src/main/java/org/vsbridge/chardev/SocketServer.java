package org.vsbridge.chardev;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.unix.UnixChannel;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * The listening side of a server {@link SocketChardev}: binds (or takes a passed or inherited listening socket),
 * accepts one client at a time (the next waits in the backlog, as in QEMU), and on chardev-change to the very same
 * address hands its listening socket over to the replacement instead of closing it.
 */
final class SocketServer {

    private static final Logger LOG = Logger.getLogger(SocketChardev.class.getName());

    private final SocketChardev s;

    SocketServer(final SocketChardev s) {
        this.s = s;
    }

    void listen() throws ChardevException {
        final ServerBootstrap b = new ServerBootstrap()
            .group(s.loop, s.loop)
            // QEMU listens with a backlog of 1: one client served, the next one queued by the kernel.
            .option(ChannelOption.SO_BACKLOG, 1)
            .handler(new AcceptGate())
            .childOption(ChannelOption.AUTO_READ, false)
            .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, SocketChardev.WATER_MARK)
            .childHandler(s.pipeline.initializer);
        final SocketChardev from = s.predecessor;
        final int inherited = from == null || s.fdNumber >= 0 ? -1 : from.server.lendListener(s);
        SocketAddress bindAddress = null;
        String unixFile = null;
        final String where;
        if (s.fdNumber >= 0) {
            if (!Sockets.isListening(s.fdNumber)) {
                throw new ChardevException("File descriptor '" + ((SocketAddressLegacy.Fd) s.options.addr()).str()
                    + "' is not a listening socket");
            }
            final int fd = s.fdNumber;
            if (SocketEndpoints.isUnixFd(fd)) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(fd, true));
            } else {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerSocketChannel(fd));
            }
            where = "Failed to listen on fd " + fd;
        } else if (s.options.addr() instanceof SocketAddressLegacy.Unix unix) {
            SocketEndpoints.checkUnixPath(unix.path());
            if (inherited >= 0) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(inherited, true));
            } else if (unix.abstractNamespace() && !unix.tight()) {
                // Netty's native bind reads a byte past a name that fills sun_path: the channel comes listening.
                final int fd = SocketEndpoints.listenPadded(unix);
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(fd, true));
            } else if (unix.abstractNamespace()) {
                bindAddress = new io.netty.channel.unix.DomainSocketAddress("\0" + unix.path());
                b.channel(Transports.serverDomainSocketChannel(s.loop));
            } else {
                SocketEndpoints.removeStaleSocket(unix.path());
                unixFile = unix.path();
            }
            where = SocketEndpoints.where(unix);
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) s.options.addr();
            final int port = SocketEndpoints.port(inet, true);
            // An empty host with no family asked for listens on both families, as QEMU does (its filename names
            // 0.0.0.0: see describe); else on the one address it resolves to.
            final InetAddress host = SocketEndpoints.anyFamily(inet) ? null : SocketEndpoints.resolve(inet);
            if (inherited >= 0) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerSocketChannel(inherited));
            } else if (Boolean.TRUE.equals(inet.mptcp())) {
                Mptcp.probe(host);
                b.channelFactory(Mptcp.serverFactory(host));
            } else {
                b.channelFactory(Transports.serverSocketChannelFactory(s.loop, host));
            }
            b.option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, s.options.nodelay());
            if (Boolean.TRUE.equals(inet.keepAlive())) {
                b.childOption(ChannelOption.SO_KEEPALIVE, true);
            }
            bindAddress = host == null ? new InetSocketAddress(port) : new InetSocketAddress(host, port);
            where = "Failed to find an available port"; // QEMU's words for an inet listener (any port of the range)
        }
        ChannelFuture bound;
        if (unixFile != null) {
            try {
                bound = Transports.bindUnix(b, s.loop, unixFile, 1);
            } catch (final IOException e) {
                throw new ChardevException(where + ": " + e.getMessage());
            }
        } else {
            bound = bindAddress == null || inherited >= 0 ? b.register() : b.bind(bindAddress);
        }
        bound.awaitUninterruptibly();
        final Integer to = s.options.addr() instanceof SocketAddressLegacy.Inet inet ? inet.to() : null;
        if (!bound.isSuccess() && to != null && bindAddress instanceof InetSocketAddress first
            && first.getPort() > 0) {
            // 'to': QEMU tries each port up to this one and takes the first that binds.
            for (int p = first.getPort() + 1; p <= to && !bound.isSuccess(); p++) {
                bound = b.bind(new InetSocketAddress(first.getAddress(), p)).awaitUninterruptibly();
            }
            if (!bound.isSuccess()) {
                throw new ChardevException("Failed to find an available port: " + SocketEndpoints.reason(bound.cause()));
            }
        }
        if (!bound.isSuccess()) {
            throw new ChardevException(where + ": " + SocketEndpoints.reason(bound.cause()));
        }
        s.listener = bound.channel();
        s.localAddress = s.listener.localAddress();
        if (s.options.addr() instanceof SocketAddressLegacy.Unix unix && !unix.abstractNamespace() && inherited < 0) {
            // (A taken-over socket's file stays the predecessor's until it closes: see doClose.)
            s.ownFile = UnixSocketFile.identity(Path.of(unix.path()));
        }
        // The server shows its real address from now on (port 0 resolved), like QEMU's socket_local_address.
        s.loop.submit(this::bound).syncUninterruptibly();
        if (s.options.waitForClient()) {
            LOG.log(Level.INFO, "chardev ''{0}'': waiting for connection on: {1}", new Object[] {s.id, s.filename});
            try {
                s.firstClient.await();
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ChardevException("interrupted while waiting for connection on: " + s.filename);
            }
            if (!s.firstClient.isSuccess()) {
                throw new ChardevException("closed while waiting for connection on: " + s.filename);
            }
        } else {
            LOG.log(Level.INFO, "chardev ''{0}'': listening on {1}", new Object[] {s.id, s.filename});
        }
    }

    private void bound() {
        s.disconnectedName = "disconnected:" + SocketEndpoints.describe(s.options, s.options.addr(), s.listener.localAddress(), true);
        if (s.connection == null) {
            s.filename = s.disconnectedName;
        }
    }

    /**
     * Opener thread: lends the listening socket (a duplicate descriptor) to {@code successor} when both listen on
     * the same address, and stops accepting on it; -1 when there is nothing to lend. Clients waiting in the backlog
     * stay there for the successor.
     */
    int lendListener(final SocketChardev successor) {
        if (!Transports.isEpoll(s.loop) || !Transports.isEpoll(successor.loop) || s.listener == null || s.isClosed()
            || !s.options.server() || !successor.options.server() || !SocketEndpoints.sameAddress(s.options.addr(), successor.options.addr())) {
            return -1;
        }
        try {
            return s.loop.submit(() -> {
                final Channel l = s.listener;
                if (s.isClosed() || s.lentTo != null || !(l instanceof UnixChannel unix)) {
                    return -1;
                }
                final int fd = Sys.dup(unix.fd().intValue());
                s.lentTo = successor;
                l.config().setAutoRead(false);
                LOG.log(Level.FINE, "chardev ''{0}'': listening socket handed over to its replacement", s.id);
                return fd;
            }).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        } catch (final java.util.concurrent.ExecutionException | java.util.concurrent.RejectedExecutionException e) {
            LOG.log(Level.FINE, "chardev ''{0}'': cannot hand over its listening socket: {1}",
                new Object[] {s.id, SocketEndpoints.reason(e.getCause() != null ? e.getCause() : e)});
            return -1;
        }
    }

    /** The successor closed before it replaced this chardev: accept again. */
    void listenerReturned(final SocketChardev successor) {
        try {
            s.loop.execute(() -> {
                if (s.lentTo != successor) {
                    return;
                }
                s.lentTo = null;
                final Channel l = s.listener;
                if (l != null && !s.isClosed() && s.connection == null && s.handshaking == null) {
                    l.config().setAutoRead(true);
                }
            });
        } catch (final java.util.concurrent.RejectedExecutionException e) {
            // the loop is gone, and this chardev with it
        }
    }

    /** On the listener: stop accepting as soon as a client is taken, so the next one stays in the backlog. */
    @Sharable // no per-channel state; 'to' binds several listeners in turn
    private final class AcceptGate extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
            ctx.channel().config().setAutoRead(false);
            if (s.connection != null || s.handshaking != null || s.isClosed()) {
                // Accepted in the same batch as the current client: QEMU would not have taken it.
                LOG.log(Level.WARNING, "chardev ''{0}'': second client while one is connected, closing it", s.id);
                ((Channel) msg).close();
                return;
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void exceptionCaught(final ChannelHandlerContext ctx, final Throwable cause) {
            LOG.log(Level.WARNING, "chardev ''{0}'': accept failed: {1}", new Object[] {s.id, SocketEndpoints.reason(cause)});
        }
    }
}
