package org.vsbridge.chardev;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code socket} over TCP or a Unix socket, server or client, as one Netty pipeline per connection.
 *
 * <p>A server serves one client at a time, like QEMU: while a client is connected the listener stops accepting
 * (auto-read off), so a second client waits in the backlog until the first one leaves. A client connects once
 * at creation; a failed connect fails the creation. Connect = OPENED, disconnect = CLOSED to the frontend.
 *
 * <p>Backpressure: a write is always queued; {@link #write} returns false once the connection's outbound buffer
 * passes the high water mark, and {@link ChardevFrontend#writable()} follows when it drains below the low one
 * (or when the peer leaves, since writes are then dropped). Input stops with auto-read off while the frontend
 * has paused it or none is attached.
 */
public final class SocketChardev extends AbstractChardev {

    private static final Logger LOG = Logger.getLogger(SocketChardev.class.getName());

    /** Outbound bytes queued per connection before {@link #write} says "stop": between 256 KiB and 1 MiB. */
    static final WriteBufferWaterMark WATER_MARK = new WriteBufferWaterMark(256 * 1024, 1024 * 1024);

    /** Linux {@code sun_path} holds 108 bytes including the terminating NUL. */
    private static final int UNIX_PATH_MAX = 108;

    private final ChardevBackend.Socket options;
    private final ConnectionHandler handler = new ConnectionHandler();
    private final Promise<Void> firstClient;

    /** Server only; set once bound. */
    private volatile Channel listener;
    /** Event loop only. */
    private Channel connection;
    private boolean writeBlocked;
    private String disconnectedName;

    private volatile String filename;
    private volatile boolean connected;
    private volatile SocketAddress localAddress;

    private SocketChardev(final String id, final EventLoop loop, final Logfile logfile,
                          final ChardevBackend.Socket options) {
        super(id, ChardevKind.SOCKET, loop, logfile);
        this.options = options;
        this.firstClient = loop.newPromise();
        this.disconnectedName = "disconnected:" + describe(options.addr(), null, options.server());
        this.filename = disconnectedName;
    }

    /** Binds or connects; a server with {@code wait} returns once its first client is connected. */
    static SocketChardev open(final String id, final EventLoop loop, final Logfile logfile,
                              final ChardevBackend.Socket options) throws ChardevException {
        requireBuilt(options);
        if (loop.inEventLoop()) {
            throw new ChardevException("socket chardev '" + id + "' cannot be opened from its own event loop");
        }
        final SocketChardev chardev = new SocketChardev(id, loop, logfile, options);
        try {
            if (options.server()) {
                chardev.listen();
            } else {
                chardev.connect();
            }
        } catch (final ChardevException | RuntimeException e) {
            chardev.close();
            throw e;
        }
        return chardev;
    }

    /** The parts of {@code socket} a later version builds are refused by name. */
    private static void requireBuilt(final ChardevBackend.Socket o) throws ChardevException {
        final String option = o.telnet() ? "telnet" : o.tn3270() ? "tn3270" : o.websocket() ? "websocket"
            : o.tlsCreds() != null ? "tls-creds" : o.reconnectMs() > 0 ? "reconnect" : null;
        if (option != null) {
            throw new ChardevException("the bridge does not support socket option '" + option + "' yet");
        }
        if (o.addr() instanceof SocketAddressLegacy.Unix u && u.abstractNamespace()) {
            throw new ChardevException("the bridge does not support abstract unix sockets yet");
        }
        if (!(o.addr() instanceof SocketAddressLegacy.Unix) && !(o.addr() instanceof SocketAddressLegacy.Inet)) {
            throw new ChardevException("the bridge does not support socket address type '" + o.addr().type()
                + "' yet");
        }
    }

    // ------------------------------------------------------------------ opening

    private void listen() throws ChardevException {
        final ServerBootstrap b = new ServerBootstrap()
            .group(loop, loop)
            // QEMU listens with a backlog of 1: one client served, the next one queued by the kernel.
            .option(ChannelOption.SO_BACKLOG, 1)
            .handler(new AcceptGate())
            .childOption(ChannelOption.AUTO_READ, false)
            .childOption(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
            .childHandler(handler);
        final SocketAddress bindAddress;
        final String where;
        if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            checkUnixPath(unix.path());
            removeStaleSocket(unix.path(), where(unix));
            b.channel(Transports.serverDomainSocketChannel(loop));
            bindAddress = Transports.domainSocketAddress(loop, unix.path());
            where = where(unix);
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) options.addr();
            b.channel(Transports.serverSocketChannel(loop))
                .option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, options.nodelay());
            final int port = port(inet, true);
            bindAddress = inet.host().isEmpty() ? new InetSocketAddress(port)
                : new InetSocketAddress(resolve(inet), port);
            where = "Failed to bind socket";
        }
        final ChannelFuture bound = b.bind(bindAddress).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            throw new ChardevException(where + ": " + reason(bound.cause()));
        }
        listener = bound.channel();
        localAddress = listener.localAddress();
        // The server shows its real address from now on (port 0 resolved), like QEMU's socket_local_address.
        loop.submit(this::bound).syncUninterruptibly();
        if (options.waitForClient()) {
            LOG.log(Level.INFO, "chardev ''{0}'': waiting for connection on: {1}", new Object[] {id, filename});
            try {
                firstClient.await();
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new ChardevException("interrupted while waiting for connection on: " + filename);
            }
            if (!firstClient.isSuccess()) {
                throw new ChardevException("closed while waiting for connection on: " + filename);
            }
        } else {
            LOG.log(Level.INFO, "chardev ''{0}'': listening on {1}", new Object[] {id, filename});
        }
    }

    private void bound() {
        disconnectedName = "disconnected:" + describe(options.addr(), listener.localAddress(), true);
        if (connection == null) {
            filename = disconnectedName;
        }
    }

    private void connect() throws ChardevException {
        final Bootstrap b = new Bootstrap()
            .group(loop)
            .option(ChannelOption.AUTO_READ, false)
            .option(ChannelOption.WRITE_BUFFER_WATER_MARK, WATER_MARK)
            .handler(handler);
        final SocketAddress remote;
        final String where;
        if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            checkUnixPath(unix.path());
            b.channel(Transports.domainSocketChannel(loop));
            remote = Transports.domainSocketAddress(loop, unix.path());
            where = "Failed to connect to '" + unix.path() + "'";
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) options.addr();
            b.channel(Transports.socketChannel(loop)).option(ChannelOption.TCP_NODELAY, options.nodelay());
            remote = new InetSocketAddress(resolve(inet), port(inet, false));
            where = "Failed to connect to '" + inet.host() + ":" + inet.port() + "'";
        }
        final ChannelFuture f = b.connect(remote).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new ChardevException(where + ": " + reason(f.cause()));
        }
        // NIO completes the connect promise before channelActive runs (in the same loop task): wait for it.
        loop.submit(() -> { }).syncUninterruptibly();
    }

    private static int port(final SocketAddressLegacy.Inet inet, final boolean server) throws ChardevException {
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

    private static InetAddress resolve(final SocketAddressLegacy.Inet inet) throws ChardevException {
        try {
            return InetAddress.getByName(inet.host().isEmpty() ? null : inet.host());
        } catch (final UnknownHostException e) {
            throw new ChardevException("address resolution failed for " + inet.host() + ":" + inet.port()
                + ": Name or service not known");
        }
    }

    private static void checkUnixPath(final String path) throws ChardevException {
        if (path.getBytes(StandardCharsets.UTF_8).length >= UNIX_PATH_MAX) {
            throw new ChardevException("UNIX socket path '" + path + "' is too long");
        }
        if (path.isEmpty()) {
            throw new ChardevException("the bridge does not support unix sockets with an empty path");
        }
    }

    private static String where(final SocketAddressLegacy.Unix unix) {
        return "Failed to bind socket to " + unix.path();
    }

    /**
     * A socket file left by an earlier run would make bind fail; QEMU unlinks it first, and so does Netty's epoll
     * bind. Any other kind of file is refused instead of being deleted.
     */
    private static void removeStaleSocket(final String path, final String where) throws ChardevException {
        final Path p = Path.of(path);
        final Object mode;
        try {
            mode = Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (final IOException | UnsupportedOperationException | IllegalArgumentException e) {
            return; // missing (the usual case) or no way to tell: bind reports any real problem
        }
        if (!(mode instanceof Integer m) || (m & 0170000) != 0140000) {
            throw new ChardevException(where + ": Address already in use (a file that is not a socket is there)");
        }
        try {
            Files.delete(p);
            LOG.log(Level.FINE, "removed stale socket {0}", path);
        } catch (final IOException e) {
            throw new ChardevException("Failed to unlink socket " + path + ": " + FileChardev.reason(e));
        }
    }

    static String reason(final Throwable t) {
        return Errno.reason(t);
    }

    // ------------------------------------------------------------------ Chardev

    @Override
    public String filename() {
        return filename;
    }

    @Override
    public boolean isOpen() {
        return connected;
    }

    public boolean isServer() {
        return options.server();
    }

    /** The listening address of a server (real port when bound to 0), or the local end of a client. */
    public SocketAddress localAddress() {
        return localAddress;
    }

    @Override
    protected void inputStateChanged() {
        final Channel c = connection;
        if (c != null) {
            c.config().setAutoRead(inputWanted());
        }
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        final Channel c = connection;
        if (c == null || !c.isActive()) {
            // No peer (or it is leaving and channelInactive is on its way): dropped, as QEMU drops; only the
            // logfile kept it.
            data.release();
            return true;
        }
        c.writeAndFlush(data, c.voidPromise());
        if (!c.isWritable()) {
            writeBlocked = true;
            return false;
        }
        return true;
    }

    @Override
    protected void doClose() {
        final Channel c = connection;
        connection = null;
        connected = false;
        if (c != null) {
            // Close after what is already queued reaches the peer: shutdown must not drop accepted guest output.
            c.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        }
        final Channel l = listener;
        if (l != null) {
            l.close();
            if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
                try {
                    Files.deleteIfExists(Path.of(unix.path()));
                } catch (final IOException e) {
                    LOG.log(Level.WARNING, "chardev ''{0}'': could not remove {1}: {2}",
                        new Object[] {id, unix.path(), e.getMessage()});
                }
            }
        }
        firstClient.tryFailure(new IOException("chardev closed"));
        filename = disconnectedName;
    }

    // ------------------------------------------------------------------ filename

    /**
     * QEMU's {@code qemu_chr_socket_address}: {@code tcp:HOST:PORT[,server=on]} or {@code unix:PATH[,server=on]};
     * a server names its bound address.
     */
    private static String describe(final SocketAddressLegacy addr, final SocketAddress bound, final boolean server) {
        final String suffix = server ? ",server=on" : "";
        if (addr instanceof SocketAddressLegacy.Unix unix) {
            return "unix:" + unix.path() + suffix;
        }
        if (addr instanceof SocketAddressLegacy.Inet inet) {
            if (bound instanceof InetSocketAddress b) {
                return "tcp:" + SocketNames.numericHost(b.getAddress()) + ":" + b.getPort() + suffix;
            }
            return "tcp:" + inet.host() + ":" + inet.port() + suffix;
        }
        return addr.type() + suffix;
    }

    /** QEMU's {@code qemu_chr_compute_filename} for a connected socket. */
    private String connectedName(final Channel c) {
        final String suffix = options.server() ? ",server=on" : "";
        if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            if (options.server()) {
                return "unix:" + unix.path() + suffix;
            }
            final String peer = Transports.domainSocketPath(c.remoteAddress());
            return "unix:" + (peer != null ? peer : unix.path());
        }
        if (c.localAddress() instanceof InetSocketAddress local
            && c.remoteAddress() instanceof InetSocketAddress remote) {
            return "tcp:" + SocketNames.hostPort(local) + suffix + " <-> " + SocketNames.hostPort(remote);
        }
        return "unknown";
    }

    // ------------------------------------------------------------------ pipeline

    /** On the listener: stop accepting as soon as a client is taken, so the next one stays in the backlog. */
    private final class AcceptGate extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
            ctx.channel().config().setAutoRead(false);
            if (connection != null || isClosed()) {
                // Accepted in the same batch as the current client: QEMU would not have taken it.
                LOG.log(Level.WARNING, "chardev ''{0}'': second client while one is connected, closing it", id);
                ((Channel) msg).close();
                return;
            }
            ctx.fireChannelRead(msg);
        }

        @Override
        public void exceptionCaught(final ChannelHandlerContext ctx, final Throwable cause) {
            LOG.log(Level.WARNING, "chardev ''{0}'': accept failed: {1}", new Object[] {id, reason(cause)});
        }
    }

    /** One instance serves every connection of this chardev (at most one at a time). */
    @Sharable
    private final class ConnectionHandler extends ChannelInboundHandlerAdapter {

        @Override
        public void channelActive(final ChannelHandlerContext ctx) {
            final Channel c = ctx.channel();
            if (connection != null || isClosed()) {
                c.close();
                return;
            }
            connection = c;
            if (!options.server()) {
                localAddress = c.localAddress();
            }
            filename = connectedName(c);
            connected = true;
            LOG.log(Level.INFO, "chardev ''{0}'': connected: {1}", new Object[] {id, filename});
            firstClient.trySuccess(null);
            c.config().setAutoRead(inputWanted());
            if (frontend != null) {
                frontend.opened();
            }
        }

        @Override
        public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
            final ChardevFrontend f = frontend;
            if (ctx.channel() != connection || f == null || !(msg instanceof ByteBuf buf)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            f.received(buf);
        }

        @Override
        public void channelInactive(final ChannelHandlerContext ctx) {
            if (ctx.channel() != connection) {
                return;
            }
            connection = null;
            connected = false;
            filename = disconnectedName;
            LOG.log(Level.INFO, "chardev ''{0}'': disconnected, now {1}", new Object[] {id, filename});
            final ChardevFrontend f = frontend;
            if (f != null) {
                f.closed();
                if (writeBlocked) {
                    // Writes are dropped from now on, so nothing holds the frontend back any more.
                    writeBlocked = false;
                    f.writable();
                }
            }
            writeBlocked = false;
            final Channel l = listener;
            if (l != null && !isClosed()) {
                l.config().setAutoRead(true); // accept the next client (maybe already in the backlog)
            }
        }

        @Override
        public void channelWritabilityChanged(final ChannelHandlerContext ctx) {
            final Channel c = ctx.channel();
            if (c == connection && c.isWritable() && writeBlocked) {
                writeBlocked = false;
                final ChardevFrontend f = frontend;
                if (f != null) {
                    f.writable();
                }
            }
        }

        @Override
        public void exceptionCaught(final ChannelHandlerContext ctx, final Throwable cause) {
            LOG.log(Level.WARNING, "chardev ''{0}'': connection error, disconnecting: {1}",
                new Object[] {id, reason(cause)});
            ctx.close();
        }
    }
}
