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
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.unix.UnixChannel;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
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

    /** How long a closing connection may take to hand its queued output to the peer. */
    static final long CLOSE_FLUSH_MS = 10_000;

    /** Linux {@code sun_path} holds 108 bytes including the terminating NUL. */
    private static final int UNIX_PATH_MAX = 108;

    private final ChardevBackend.Socket options;
    private final TlsCredentials tls;
    private final Authorizer authz;
    private final ConnectionHandler handler = new ConnectionHandler();
    private final ChannelInitializer<Channel> initializer = new ChannelInitializer<>() {
        @Override
        protected void initChannel(final Channel ch) {
            buildPipeline(ch);
        }
    };
    private final Promise<Void> firstClient;

    /** Server only; set once bound. */
    private volatile Channel listener;
    /** Server on a unix path: the identity of the socket file it bound, removed at close only if still there. */
    private volatile Object ownFile;
    /** Event loop only. */
    private Channel connection;
    /** Event loop only: the input lent to the frontend ({@link #openDirectInput()}) and its connection, or null. */
    private DirectInput lentInput;
    private Channel lentOn;
    /** Event loop only: the connection whose reader saw its end; not lent again. */
    private Channel endedOn;
    /** Event loop only: the hang-up poll while input is paused, or null. */
    private ScheduledFuture<?> hangupWatch;
    static final long HANGUP_POLL_MS = 200;
    /** Event loop only: accepted or connected, TLS or websocket handshake still running. */
    private Channel handshaking;
    private boolean writeBlocked;
    /** Event loop only: a client reconnect is scheduled. */
    private io.netty.util.concurrent.ScheduledFuture<?> reconnectTimer;
    private Bootstrap clientBootstrap;
    private SocketAddress clientRemote;
    /** Client with TLS: the host and port its certificate check names (the {@code host} option, unresolved). */
    private volatile InetSocketAddress tlsPeer;
    private String disconnectedName;

    private volatile String filename;
    private volatile boolean connected;
    private volatile SocketAddress localAddress;

    private SocketChardev(final String id, final EventLoop loop, final Logfile logfile,
                          final ChardevBackend.Socket options, final TlsCredentials tls, final Authorizer authz) {
        super(id, ChardevKind.SOCKET, loop, logfile);
        this.options = options;
        this.tls = tls;
        this.authz = authz;
        this.firstClient = loop.newPromise();
        this.disconnectedName = "disconnected:" + describe(options.addr(), null, options.server());
        this.filename = disconnectedName;
    }

    /** Binds or connects; a server with {@code wait} returns once its first client is connected. */
    static SocketChardev open(final String id, final EventLoop loop, final Logfile logfile,
                              final ChardevBackend.Socket options, final ChardevObjects objects)
        throws ChardevException {
        return open(id, loop, logfile, options, objects, null);
    }

    /**
     * As {@link #open(String, EventLoop, Logfile, ChardevBackend.Socket, ChardevObjects)}, in place of
     * {@code predecessor} (chardev-change): a server on the very address the predecessor listens on takes over its
     * listening socket instead of binding a second one, which would fail with "Address already in use".
     */
    static SocketChardev open(final String id, final EventLoop loop, final Logfile logfile,
                              final ChardevBackend.Socket options, final ChardevObjects objects,
                              final SocketChardev predecessor) throws ChardevException {
        requireBuilt(options, loop);
        if (loop.inEventLoop()) {
            throw new ChardevException("socket chardev '" + id + "' cannot be opened from its own event loop");
        }
        TlsCredentials tls = null;
        Authorizer authz = null;
        if (options.tlsCreds() != null) {
            tls = objects.tlsCreds(options.tlsCreds());
            if (tls.isServer() != options.server()) {
                throw new ChardevException("Expecting TLS credentials with a " + (options.server() ? "server"
                    : "client") + " endpoint");
            }
            if (options.tlsAuthz() != null) {
                authz = objects.authz(options.tlsAuthz());
            }
        }
        final SocketChardev chardev = new SocketChardev(id, loop, logfile, options, tls, authz);
        chardev.fdNumber = options.addr() instanceof SocketAddressLegacy.Fd fd ? resolveFd(fd, objects) : -1;
        chardev.predecessor = predecessor;
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

    /** What this class cannot do is refused by name (vsock addresses go to {@link VsockChardev}). */
    private static void requireBuilt(final ChardevBackend.Socket o, final EventLoop loop) throws ChardevException {
        if (o.addr() instanceof SocketAddressLegacy.Unix u && u.abstractNamespace()) {
            if (!Transports.isEpoll(loop)) {
                throw new ChardevException("abstract unix sockets need the native epoll transport");
            }
        }
        refuseMptcp(o);
        if (o.addr() instanceof SocketAddressLegacy.Fd && !Transports.isEpoll(loop)) {
            throw new ChardevException("sockets passed as file descriptors need the native epoll transport");
        }
        if (o.addr() instanceof SocketAddressLegacy.Vsock) {
            throw new IllegalArgumentException("vsock addresses are opened by VsockChardev");
        }
    }

    private static void refuseMptcp(final ChardevBackend.Socket o) throws ChardevException {
        if (o.addr() instanceof SocketAddressLegacy.Inet inet && Boolean.TRUE.equals(inet.mptcp())) {
            throw new ChardevException("the bridge does not support 'mptcp' (multipath TCP) sockets");
        }
    }

    /** Event loop only after open: the descriptor of an {@code fd} address, -1 otherwise. */
    private int fdNumber = -1;

    private static int resolveFd(final SocketAddressLegacy.Fd fd, final ChardevObjects objects)
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
        final int family = Posix.socketFamily(n);
        if (family != Posix.AF_UNIX && family != Posix.AF_INET && family != Posix.AF_INET6) {
            throw new ChardevException("File descriptor '" + fd.str() + "' is not a unix or inet socket");
        }
        return n;
    }

    private static boolean isUnixFd(final int fd) {
        return Posix.socketFamily(fd) == Posix.AF_UNIX;
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
            .childHandler(initializer);
        final SocketChardev from = predecessor;
        final int inherited = from == null || fdNumber >= 0 ? -1 : from.lendListener(this);
        SocketAddress bindAddress = null;
        String unixFile = null;
        final String where;
        if (fdNumber >= 0) {
            if (!Posix.isListening(fdNumber)) {
                throw new ChardevException("File descriptor '" + ((SocketAddressLegacy.Fd) options.addr()).str()
                    + "' is not a listening socket");
            }
            final int fd = fdNumber;
            if (isUnixFd(fd)) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(fd, true));
            } else {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerSocketChannel(fd));
            }
            where = "Failed to listen on fd " + fd;
        } else if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            checkUnixPath(unix.path());
            if (inherited >= 0) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(inherited, true));
            } else if (unix.abstractNamespace() && !unix.tight()) {
                // Netty's native bind reads a byte past a name that fills sun_path: the channel comes listening.
                final int fd = listenPadded(unix);
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerDomainSocketChannel(fd, true));
            } else if (unix.abstractNamespace()) {
                bindAddress = new io.netty.channel.unix.DomainSocketAddress("\0" + unix.path());
                b.channel(Transports.serverDomainSocketChannel(loop));
            } else {
                removeStaleSocket(unix.path());
                unixFile = unix.path();
            }
            where = where(unix);
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) options.addr();
            final int port = port(inet, true);
            // An empty host with no family asked for listens on both families, as QEMU does (its filename names
            // 0.0.0.0: see describe); else on the one address it resolves to.
            final InetAddress host = anyFamily(inet) ? null : resolve(inet);
            if (inherited >= 0) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollServerSocketChannel(inherited));
            } else {
                b.channelFactory(Transports.serverSocketChannelFactory(loop, host));
            }
            b.option(ChannelOption.SO_REUSEADDR, true)
                .childOption(ChannelOption.TCP_NODELAY, options.nodelay());
            if (Boolean.TRUE.equals(inet.keepAlive())) {
                b.childOption(ChannelOption.SO_KEEPALIVE, true);
            }
            bindAddress = host == null ? new InetSocketAddress(port) : new InetSocketAddress(host, port);
            where = "Failed to bind socket";
        }
        ChannelFuture bound;
        if (unixFile != null) {
            try {
                bound = Transports.bindUnix(b, loop, unixFile, 1);
            } catch (final IOException e) {
                throw new ChardevException(where + ": " + e.getMessage());
            }
        } else {
            bound = bindAddress == null || inherited >= 0 ? b.register() : b.bind(bindAddress);
        }
        bound.awaitUninterruptibly();
        final Integer to = options.addr() instanceof SocketAddressLegacy.Inet inet ? inet.to() : null;
        if (!bound.isSuccess() && to != null && bindAddress instanceof InetSocketAddress first
            && first.getPort() > 0) {
            // 'to': QEMU tries each port up to this one and takes the first that binds.
            for (int p = first.getPort() + 1; p <= to && !bound.isSuccess(); p++) {
                bound = b.bind(new InetSocketAddress(first.getAddress(), p)).awaitUninterruptibly();
            }
            if (!bound.isSuccess()) {
                throw new ChardevException("Failed to find an available port: " + reason(bound.cause()));
            }
        }
        if (!bound.isSuccess()) {
            throw new ChardevException(where + ": " + reason(bound.cause()));
        }
        listener = bound.channel();
        localAddress = listener.localAddress();
        if (options.addr() instanceof SocketAddressLegacy.Unix unix && !unix.abstractNamespace() && inherited < 0) {
            // (A taken-over socket's file stays the predecessor's until it closes: see doClose.)
            ownFile = UnixSocketFile.identity(Path.of(unix.path()));
        }
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
            .handler(initializer);
        final SocketAddress remote;
        final String where;
        if (fdNumber >= 0) {
            final int fd = fdNumber;
            if (isUnixFd(fd)) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollDomainSocketChannel(fd));
            } else {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollSocketChannel(fd));
            }
            final ChannelFuture f = b.register().awaitUninterruptibly();
            if (!f.isSuccess()) {
                throw new ChardevException("Failed to use fd " + fd + ": " + reason(f.cause()));
            }
            loop.submit(() -> { }).syncUninterruptibly();
            return;
        } else if (options.addr() instanceof SocketAddressLegacy.Unix unix) {
            checkUnixPath(unix.path());
            if (unix.abstractNamespace() && !unix.tight()) {
                // Netty refuses to connect to an address that fills sun_path: the channel comes connected.
                b.channelFactory(() -> new io.netty.channel.epoll.EpollDomainSocketChannel(connectPadded(unix)));
                remote = null;
            } else {
                b.channel(Transports.domainSocketChannel(loop));
                remote = unix.abstractNamespace() ? new io.netty.channel.unix.DomainSocketAddress("\0" + unix.path())
                    : Transports.domainSocketAddress(loop, unix.path());
            }
            where = "Failed to connect to '" + unix.path() + "'";
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) options.addr();
            b.channel(Transports.socketChannel(loop)).option(ChannelOption.TCP_NODELAY, options.nodelay());
            if (Boolean.TRUE.equals(inet.keepAlive())) {
                b.option(ChannelOption.SO_KEEPALIVE, true);
            }
            if (inet.host().isEmpty()) {
                // QEMU's client resolves no host at all, where Java would take an empty name as the any-address.
                throw new ChardevException("address resolution failed for :" + inet.port()
                    + ": Name or service not known");
            }
            remote = new InetSocketAddress(resolve(inet), port(inet, false));
            if (tls != null) {
                // QEMU's char-socket hands the inet host, as written, to its TLS client session: the certificate
                // must name that host (checked with verify-peer, see TlsCredentials).
                tlsPeer = InetSocketAddress.createUnresolved(unbracketed(inet.host()), port(inet, false));
            }
            where = "Failed to connect to '" + inet.host() + ":" + inet.port() + "'";
        }
        if (options.reconnectMs() > 0) {
            // As QEMU with reconnect: creation succeeds at once, the connection comes (and comes back) later.
            clientBootstrap = b;
            clientRemote = remote;
            loop.execute(this::reconnectNow);
            return;
        }
        final ChannelFuture f = connect(b, remote).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new ChardevException(where + ": " + reason(f.cause()));
        }
        // NIO completes the connect promise before channelActive runs (in the same loop task): wait for it.
        loop.submit(() -> { }).syncUninterruptibly();
    }

    /** A connect to {@code remote}, or the registration of a channel its factory connected (remote null). */
    private static ChannelFuture connect(final Bootstrap b, final SocketAddress remote) {
        return remote == null ? b.register() : b.connect(remote);
    }

    /** A non-blocking AF_UNIX socket connected to the padded abstract name of {@code unix} (tight=off). */
    private static int connectPadded(final SocketAddressLegacy.Unix unix) {
        final int fd = Posix.socket(Posix.AF_UNIX, Posix.SOCK_STREAM | Posix.SOCK_NONBLOCK | Posix.SOCK_CLOEXEC, 0);
        try {
            Posix.connect(fd, paddedSockaddr(unix), 2 + UNIX_PATH_MAX);
            return fd;
        } catch (final com.sun.jna.LastErrorException e) {
            Posix.closeQuietly(fd);
            throw new io.netty.channel.ChannelException(Posix.reason(e), e);
        }
    }

    /** A non-blocking AF_UNIX socket listening (backlog 1, as QEMU) on the padded abstract name of {@code unix}. */
    private static int listenPadded(final SocketAddressLegacy.Unix unix) throws ChardevException {
        final int fd = Posix.socket(Posix.AF_UNIX, Posix.SOCK_STREAM | Posix.SOCK_NONBLOCK | Posix.SOCK_CLOEXEC, 0);
        try {
            Posix.bind(fd, paddedSockaddr(unix), 2 + UNIX_PATH_MAX);
            Posix.listen(fd, 1);
            return fd;
        } catch (final com.sun.jna.LastErrorException e) {
            Posix.closeQuietly(fd);
            throw new ChardevException(where(unix) + ": " + Posix.reason(e));
        }
    }

    /**
     * {@code struct sockaddr_un} of an abstract name with {@code tight=off}: a NUL, the name, and NULs up to the end
     * of {@code sun_path}, the whole field being the address (a different name than the tight one).
     */
    private static byte[] paddedSockaddr(final SocketAddressLegacy.Unix unix) {
        final byte[] name = unix.path().getBytes(StandardCharsets.UTF_8);
        final byte[] sockaddr = new byte[2 + UNIX_PATH_MAX];
        sockaddr[0] = (byte) Posix.AF_UNIX;
        System.arraycopy(name, 0, sockaddr, 3, name.length);
        return sockaddr;
    }

    /** Event loop: one connect attempt of a reconnecting client; a failure schedules the next. */
    private void reconnectNow() {
        reconnectTimer = null;
        if (isClosed() || connection != null || handshaking != null) {
            return;
        }
        connect(clientBootstrap, clientRemote).addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                LOG.log(Level.INFO, "chardev ''{0}'': Unable to connect character device {0}: {1}",
                    new Object[] {id, reason(f.cause())});
                scheduleReconnect();
            }
        });
    }

    private void scheduleReconnect() {
        if (clientBootstrap != null && !isClosed() && reconnectTimer == null) {
            reconnectTimer = loop.schedule(this::reconnectNow, options.reconnectMs(),
                java.util.concurrent.TimeUnit.MILLISECONDS);
        }
    }

    /** The pipeline reads like the options: [TLS] [HTTP + websocket | telnet] chardev. */
    private void buildPipeline(final Channel ch) {
        ch.config().setRecvByteBufAllocator(new GatedReads(ch.config().getRecvByteBufAllocator(), ch));
        final var p = ch.pipeline();
        if (tls != null) {
            final InetSocketAddress peer = tlsPeer;
            p.addLast("tls", peer == null ? tls.context().newHandler(ch.alloc())
                : tls.context().newHandler(ch.alloc(), peer.getHostString(), peer.getPort()));
        }
        if (options.websocket()) {
            p.addLast("http", new io.netty.handler.codec.http.HttpServerCodec());
            p.addLast("http-aggregator", new io.netty.handler.codec.http.HttpObjectAggregator(64 * 1024));
            p.addLast("websocket", new io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler(
                io.netty.handler.codec.http.websocketx.WebSocketServerProtocolConfig.newBuilder()
                    .websocketPath("/").checkStartsWith(true).subprotocols("binary")
                    .allowExtensions(false).maxFramePayloadLength(1 << 20).build()));
            p.addLast("websocket-bytes", new WebSocketBytes());
        } else if (negotiatesTelnet()) {
            p.addLast("telnet", new TelnetDecoder(options.tn3270()));
        }
        p.addLast("chardev", handler);
    }

    /**
     * Telnet (tn3270) is spoken by a server only, as QEMU does: a client with {@code telnet=on} sends no options
     * and passes every byte, IAC included, as data; only its {@code filename} says "telnet".
     */
    private boolean negotiatesTelnet() {
        return options.server() && (options.telnet() || options.tn3270());
    }

    /** Handshakes that ended (either way): lets a test know a refused peer has been dealt with. */
    int handshakeAttempts() {
        return handshakesDone;
    }

    private volatile int handshakesDone;

    /** True while a handshake (TLS, websocket) must finish before the peer counts as connected. */
    private boolean needsHandshake() {
        return tls != null || options.websocket();
    }

    /** After the TLS handshake: the authz object decides on the client certificate's distinguished name. */
    private boolean authorized(final Channel c) {
        if (authz == null) {
            return true;
        }
        final io.netty.handler.ssl.SslHandler ssl = c.pipeline().get(io.netty.handler.ssl.SslHandler.class);
        String dn = null;
        try {
            final java.security.cert.Certificate[] chain = ssl.engine().getSession().getPeerCertificates();
            if (chain.length > 0 && chain[0] instanceof java.security.cert.X509Certificate x509) {
                dn = x509.getSubjectX500Principal().getName(javax.security.auth.x500.X500Principal.RFC2253);
            }
        } catch (final javax.net.ssl.SSLPeerUnverifiedException e) {
            dn = null;
        }
        if (dn == null) {
            LOG.log(Level.WARNING, "chardev ''{0}'': TLS client sent no certificate, authorization ''{1}'' "
                + "refuses it", new Object[] {id, options.tlsAuthz()});
            return false;
        }
        if (!authz.isAllowed(dn)) {
            LOG.log(Level.WARNING, "chardev ''{0}'': TLS x509 authz check for {1} is denied",
                new Object[] {id, dn});
            return false;
        }
        return true;
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

    /**
     * The address of {@code host}, restricted as QEMU's inet options say: {@code ipv4}/{@code ipv6} pick the
     * family (an empty host is that family's any-address), {@code numeric} forbids a name lookup.
     */
    private static InetAddress resolve(final SocketAddressLegacy.Inet inet) throws ChardevException {
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
    private static boolean anyFamily(final SocketAddressLegacy.Inet inet) {
        return inet.host().isEmpty() && inet.ipv4() == null && inet.ipv6() == null;
    }

    /** An IPv6 literal without the brackets the option may carry. */
    private static String unbracketed(final String host) {
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
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
     * A socket file left by an earlier run would make bind fail: it is removed when nobody listens on it. A live
     * socket or any other kind of file is refused (the cause says so: retrying cannot help).
     */
    private static void removeStaleSocket(final String path) throws ChardevException {
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
        refuseMptcp(o);
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
            applyInputState(c);
        }
    }

    private void applyInputState(final Channel c) {
        final boolean read = inputWanted() && lentOn != c;
        c.config().setAutoRead(read);
        if (!read && lentOn != c) {
            watchHangup(c); // while lent, the reader sees the peer leave
        }
    }

    @Override
    public DirectInput openDirectInput() {
        final Channel c = connection;
        if (lentInput != null || c == null || !c.isActive() || !(c instanceof UnixChannel unix) || !offersDirectOutput()
            || isClosed() || c == endedOn || !EpollInterest.switchable(c)) {
            return null;
        }
        final DirectInput in;
        try {
            in = DirectInput.dup(unix.fd().intValue());
        } catch (final IOException e) {
            LOG.log(Level.FINE, "chardev ''{0}'': no direct input: {1}", new Object[] {id, e.getMessage()});
            return null;
        }
        // Read interest off (auto-read) and half-close interest off: from here on this loop does not read c.
        if (!EpollInterest.halfClose(c, false)) {
            in.giveBack();
            return null;
        }
        lentInput = in;
        lentOn = c;
        applyInputState(c);
        return in;
    }

    @Override
    public void directInputReturned(final DirectInput input) {
        if (input != lentInput) {
            return;
        }
        lentInput = null;
        final Channel c = lentOn;
        lentOn = null;
        if (input.ended()) {
            endedOn = c; // the end of the stream waits in the socket for this loop's read: no new loan
        }
        if (c == connection && c != null && c.isActive()) {
            EpollInterest.halfClose(c, true);
            applyInputState(c);
        }
    }

    /** A read the event loop may not make: the connection failed while its reader was inside a read. */
    private static final class LentInputError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LentInputError() {
            super("socket error while its input is lent and being read", null, false, false);
        }
    }

    /**
     * The reads of every connection go through here. During a loan the event loop watches neither input nor
     * half-close, so the transport reads only on a socket error (epoll reports those whatever the interest): the
     * read claims the input back first and goes ahead when the reader is not inside a read (the reader gives the
     * input back at its next look). When it is, this loop does not read and does not wait: the read fails, and the
     * failing connection is closed.
     */
    private final class GatedReads implements io.netty.channel.RecvByteBufAllocator {
        private final io.netty.channel.RecvByteBufAllocator inner;
        private final Channel channel;

        GatedReads(final io.netty.channel.RecvByteBufAllocator inner, final Channel channel) {
            this.inner = inner;
            this.channel = channel;
        }

        @Override
        public Handle newHandle() {
            final ExtendedHandle h = (ExtendedHandle) inner.newHandle();
            return new ExtendedHandle() {
                @Override
                public io.netty.buffer.ByteBuf allocate(final io.netty.buffer.ByteBufAllocator alloc) {
                    final DirectInput in = lentInput;
                    if (in != null && lentOn == channel && in.lent()) {
                        final boolean first = !in.reclaimRequested();
                        if (!in.claimForLoop()) {
                            throw new LentInputError();
                        }
                        final ChardevFrontend f = frontend;
                        if (first && f != null) {
                            f.directInputReclaimed();
                        }
                    }
                    return h.allocate(alloc);
                }

                @Override
                public void readComplete() {
                    h.readComplete();
                }

                @Override
                public int guess() {
                    return h.guess();
                }

                @Override
                public void reset(final io.netty.channel.ChannelConfig config) {
                    h.reset(config);
                }

                @Override
                public void incMessagesRead(final int numMessages) {
                    h.incMessagesRead(numMessages);
                }

                @Override
                public void lastBytesRead(final int bytes) {
                    h.lastBytesRead(bytes);
                }

                @Override
                public int lastBytesRead() {
                    return h.lastBytesRead();
                }

                @Override
                public void attemptedBytesRead(final int bytes) {
                    h.attemptedBytesRead(bytes);
                }

                @Override
                public int attemptedBytesRead() {
                    return h.attemptedBytesRead();
                }

                @Override
                public boolean continueReading() {
                    return h.continueReading();
                }

                @Override
                public boolean continueReading(final io.netty.util.UncheckedBooleanSupplier maybeMoreDataSupplier) {
                    return h.continueReading(maybeMoreDataSupplier);
                }
            };
        }
    }

    /**
     * While input is paused the transport does not read, so it would not see the peer leave; QEMU watches its
     * sockets for hang-up for the same reason. Without this, a replaced peer waits in the backlog and guest
     * output goes into the dead connection. Polls the socket every {@link #HANGUP_POLL_MS} while paused.
     * (A peer that closed with data still queued towards us counts as gone only once that data is read, because
     * it still belongs to the port; a reset is seen at once.)
     */
    private void watchHangup(final Channel c) {
        if (hangupWatch != null || !(c instanceof UnixChannel unix)) {
            return;
        }
        hangupWatch = c.eventLoop().scheduleAtFixedRate(() -> {
            if (connection != c || inputWanted() || !c.isActive()) {
                hangupWatch.cancel(false);
                hangupWatch = null;
                return;
            }
            if (Posix.peerGone(unix.fd().intValue())) {
                LOG.log(Level.INFO, "chardev ''{0}'': peer hung up while input was paused", id);
                hangupWatch.cancel(false);
                hangupWatch = null;
                c.close();
            }
        }, HANGUP_POLL_MS, HANGUP_POLL_MS, TimeUnit.MILLISECONDS);
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
    public boolean offersDirectOutput() {
        return Transports.isEpoll(loop) && !hasLogfile() && tls == null && !options.websocket() && !options.telnet()
            && !options.tn3270();
    }

    @Override
    public DirectOutput openDirectOutput() {
        final Channel c = connection;
        if (c == null || !c.isActive() || !(c instanceof UnixChannel unix) || hasLogfile() || tls != null
            || options.websocket() || options.telnet() || options.tn3270() || isClosed()) {
            return null;
        }
        try {
            return DirectOutput.dup(unix.fd().intValue());
        } catch (final IOException e) {
            LOG.log(Level.FINE, "chardev ''{0}'': no direct output: {1}", new Object[] {id, e.getMessage()});
            return null;
        }
    }

    @Override
    public boolean outputIdle() {
        final Channel c = connection;
        if (c == null) {
            return true;
        }
        final io.netty.channel.ChannelOutboundBuffer out = c.unsafe().outboundBuffer();
        return out == null || out.totalPendingWriteBytes() == 0;
    }

    @Override
    public void whenOutputFlushed(final Runnable task) {
        final Channel c = connection;
        if (c == null || outputIdle()) {
            task.run();
            return;
        }
        // An empty write completes once every write queued before it is out (or failed with the connection).
        c.writeAndFlush(io.netty.buffer.Unpooled.EMPTY_BUFFER).addListener(f -> task.run());
    }

    @Override
    public java.util.concurrent.CompletableFuture<Void> closeFlushed() {
        final Channel c = connection;
        close();
        final java.util.concurrent.CompletableFuture<Void> done = new java.util.concurrent.CompletableFuture<>();
        if (c == null) {
            done.complete(null);
        } else {
            // doClose closes the connection once its queued output is written, or after CLOSE_FLUSH_MS.
            c.closeFuture().addListener(f -> done.complete(null));
        }
        return done;
    }

    @Override
    protected void doClose() {
        if (reconnectTimer != null) {
            reconnectTimer.cancel(false);
            reconnectTimer = null;
        }
        if (handshaking != null) {
            handshaking.close();
            handshaking = null;
        }
        final Channel c = connection;
        connection = null;
        connected = false;
        if (c != null) {
            // Close after what is already queued reaches the peer: shutdown must not drop accepted guest output.
            c.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
            // A peer that stopped reading would hold the connection (and chardev-change's old backend) forever.
            c.eventLoop().schedule(() -> {
                c.close();
            }, CLOSE_FLUSH_MS, java.util.concurrent.TimeUnit.MILLISECONDS);
        }
        final SocketChardev from = predecessor;
        if (from != null) {
            predecessor = null;
            from.listenerReturned(this); // a change that did not go through: the predecessor accepts again
        }
        final SocketChardev heir = lentTo;
        final Channel l = listener;
        if (l != null && heir != null && !heir.isClosed()) {
            // chardev-change went through: the successor listens on this socket now, and its file is the successor's.
            heir.ownFile = ownFile;
            heir.predecessor = null;
            l.close();
        } else if (l != null) {
            if (options.addr() instanceof SocketAddressLegacy.Unix unix && !unix.abstractNamespace()) {
                try {
                    UnixSocketFile.removeIfOwn(Path.of(unix.path()), ownFile);
                } catch (final IOException e) {
                    LOG.log(Level.WARNING, "chardev ''{0}'': could not remove {1}: {2}",
                        new Object[] {id, unix.path(), e.getMessage()});
                }
            }
            l.close();
        }
        firstClient.tryFailure(new IOException("chardev closed"));
        filename = disconnectedName;
    }

    // ------------------------------------------------------------------ chardev-change on the same address

    /** fcntl command: duplicate with close-on-exec. */
    private static final int F_DUPFD_CLOEXEC = 1030;

    /** The chardev this one replaces (chardev-change) and whose listening socket it may take over, or null. */
    private volatile SocketChardev predecessor;
    /** The successor this server's listening socket is lent to: it does not accept meanwhile. */
    private volatile SocketChardev lentTo;

    /**
     * Opener thread: lends the listening socket (a duplicate descriptor) to {@code successor} when both listen on
     * the same address, and stops accepting on it; -1 when there is nothing to lend. Clients waiting in the backlog
     * stay there for the successor.
     */
    private int lendListener(final SocketChardev successor) {
        if (!Transports.isEpoll(loop) || !Transports.isEpoll(successor.loop) || listener == null || isClosed()
            || !options.server() || !successor.options.server() || !sameAddress(options.addr(), successor.options.addr())) {
            return -1;
        }
        try {
            return loop.submit(() -> {
                final Channel l = listener;
                if (isClosed() || lentTo != null || !(l instanceof UnixChannel unix)) {
                    return -1;
                }
                final int fd = Posix.fcntl(unix.fd().intValue(), F_DUPFD_CLOEXEC, 0);
                lentTo = successor;
                l.config().setAutoRead(false);
                LOG.log(Level.FINE, "chardev ''{0}'': listening socket handed over to its replacement", id);
                return fd;
            }).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        } catch (final java.util.concurrent.ExecutionException | java.util.concurrent.RejectedExecutionException e) {
            LOG.log(Level.FINE, "chardev ''{0}'': cannot hand over its listening socket: {1}",
                new Object[] {id, reason(e.getCause() != null ? e.getCause() : e)});
            return -1;
        }
    }

    /** The successor closed before it replaced this chardev: accept again. */
    private void listenerReturned(final SocketChardev successor) {
        try {
            loop.execute(() -> {
                if (lentTo != successor) {
                    return;
                }
                lentTo = null;
                final Channel l = listener;
                if (l != null && !isClosed() && connection == null && handshaking == null) {
                    l.config().setAutoRead(true);
                }
            });
        } catch (final java.util.concurrent.RejectedExecutionException e) {
            // the loop is gone, and this chardev with it
        }
    }

    /** The same listening address: a unix path (or abstract name) or a host and a fixed port of one family. */
    private static boolean sameAddress(final SocketAddressLegacy a, final SocketAddressLegacy b) {
        if (a instanceof SocketAddressLegacy.Unix x && b instanceof SocketAddressLegacy.Unix y) {
            return x.path().equals(y.path()) && x.abstractNamespace() == y.abstractNamespace()
                && x.tight() == y.tight();
        }
        if (a instanceof SocketAddressLegacy.Inet x && b instanceof SocketAddressLegacy.Inet y) {
            return x.host().equals(y.host()) && x.port().equals(y.port()) && !"0".equals(x.port())
                && java.util.Objects.equals(x.to(), y.to()) && java.util.Objects.equals(x.ipv4(), y.ipv4())
                && java.util.Objects.equals(x.ipv6(), y.ipv6());
        }
        return false;
    }

    // ------------------------------------------------------------------ filename

    /**
     * QEMU's {@code qemu_chr_socket_address}: {@code tcp:HOST:PORT[,server=on]} or {@code unix:PATH[,server=on]};
     * a server names its bound address.
     */
    private String describe(final SocketAddressLegacy addr, final SocketAddress bound, final boolean server) {
        final String suffix = server ? ",server=on" : "";
        if (addr instanceof SocketAddressLegacy.Unix unix) {
            final String abs = unix.abstractNamespace() ? ",abstract=on" + (unix.tight() ? ",tight=on" : "") : "";
            return "unix:" + unix.path() + abs + suffix;
        }
        if (addr instanceof SocketAddressLegacy.Inet inet) {
            if (bound instanceof InetSocketAddress b) {
                // QEMU listens on 0.0.0.0 and :: for an empty host and names the first: the dual-stack socket here
                // is both.
                return protocol() + ":" + (anyFamily(inet) ? "0.0.0.0" : SocketNames.numericHost(b.getAddress()))
                    + ":" + b.getPort() + suffix;
            }
            return protocol() + ":" + inet.host() + ":" + inet.port() + suffix;
        }
        if (addr instanceof SocketAddressLegacy.Fd fd) {
            return "fd:" + fd.str() + suffix;
        }
        return addr.type() + suffix;
    }

    /** QEMU's qemu_chr_socket_protocol. */
    private String protocol() {
        return options.telnet() ? "telnet" : options.websocket() ? "websocket" : "tcp";
    }

    /** QEMU's {@code qemu_chr_compute_filename} for a connected socket. */
    private String connectedName(final Channel c) {
        final String suffix = options.server() ? ",server=on" : "";
        if (c.localAddress() instanceof InetSocketAddress local
            && c.remoteAddress() instanceof InetSocketAddress remote) {
            return protocol() + ":" + SocketNames.hostPort(local) + suffix + " <-> " + SocketNames.hostPort(remote);
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

    // ------------------------------------------------------------------ pipeline

    /** On the listener: stop accepting as soon as a client is taken, so the next one stays in the backlog. */
    @Sharable // no per-channel state; 'to' binds several listeners in turn
    private final class AcceptGate extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
            ctx.channel().config().setAutoRead(false);
            if (connection != null || handshaking != null || isClosed()) {
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
            if (connection != null || handshaking != null || isClosed()) {
                c.close();
                return;
            }
            if (needsHandshake()) {
                handshaking = c;
                c.config().setAutoRead(true); // the handshake needs to read; input is held until ready
                return;
            }
            ready(ctx);
        }

        @Override
        public void userEventTriggered(final ChannelHandlerContext ctx, final Object evt) {
            final Channel c = ctx.channel();
            if (evt == TelnetDecoder.BREAK) {
                if (c == connection && frontend != null) {
                    frontend.breakReceived();
                }
                return;
            }
            if (c != handshaking) {
                ctx.fireUserEventTriggered(evt);
                return;
            }
            if (evt instanceof io.netty.handler.ssl.SslHandshakeCompletionEvent done) {
                handshakesDone++;
                if (!done.isSuccess()) {
                    final InetSocketAddress peer = tlsPeer;
                    LOG.log(Level.WARNING, "chardev ''{0}'': TLS handshake failed{1}: {2}",
                        new Object[] {id, peer == null ? "" : " with host " + peer.getHostString() + " port "
                            + peer.getPort(), reason(done.cause())});
                    c.close();
                    return;
                }
                if (!authorized(c)) {
                    c.close();
                    return;
                }
                if (!options.websocket()) {
                    ready(ctx);
                }
                return;
            }
            if (evt instanceof io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler
                .HandshakeComplete) {
                ready(ctx);
                return;
            }
            ctx.fireUserEventTriggered(evt);
        }

        /** The peer is connected and every handshake is done: OPENED. */
        private void ready(final ChannelHandlerContext ctx) {
            final Channel c = ctx.channel();
            handshaking = null;
            if (connection != null || isClosed()) {
                c.close();
                return;
            }
            if (negotiatesTelnet()) {
                c.writeAndFlush(TelnetDecoder.init(options.tn3270()), c.voidPromise());
            }
            connection = c;
            if (!options.server()) {
                localAddress = c.localAddress();
            }
            filename = connectedName(c);
            connected = true;
            LOG.log(Level.INFO, "chardev ''{0}'': connected: {1}", new Object[] {id, filename});
            firstClient.trySuccess(null);
            applyInputState(c);
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
            if (ctx.channel() == handshaking) {
                handshaking = null;
                final Channel l = listener;
                if (l != null && !isClosed() && lentTo == null) {
                    l.config().setAutoRead(true);
                }
                scheduleReconnect();
                return;
            }
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
            if (l != null && !isClosed() && lentTo == null) {
                l.config().setAutoRead(true); // accept the next client (maybe already in the backlog)
            }
            scheduleReconnect();
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
            // A failed connection fails every write still queued on it, each with its own exception: one line.
            final boolean first = failedChannel != ctx.channel();
            failedChannel = ctx.channel();
            LOG.log(first ? Level.WARNING : Level.FINE, "chardev ''{0}'': connection error, disconnecting: {1}",
                new Object[] {id, reason(cause)});
            ctx.close();
        }

        /** Event loop only: the connection whose error was logged. */
        private Channel failedChannel;
    }
}
