package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.EventLoop;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.unix.UnixChannel;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
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
 * <p>The parts: {@link SocketEndpoints} (addresses and names), {@link SocketServer} (listen, accept, hand-over of
 * the listening socket on chardev-change), {@link SocketClient} (connect, reconnect), {@link SocketPipeline} (TLS,
 * websocket, telnet, the connection's handler), {@link SocketInputLoan} (auto-read, hang-up watch, the input loan);
 * this class holds the state they share and the output side.
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

    final ChardevBackend.Socket options;
    final TlsCredentials tls;
    final Authorizer authz;
    final Promise<Void> firstClient;
    final SocketServer server = new SocketServer(this);
    final SocketClient client = new SocketClient(this);
    final SocketPipeline pipeline = new SocketPipeline(this);
    final SocketInputLoan loan = new SocketInputLoan(this);

    /** Server only; set once bound. */
    volatile Channel listener;
    /** Server on a unix path: the identity of the socket file it bound, removed at close only if still there. */
    volatile Object ownFile;
    /** The chardev this one replaces (chardev-change) and whose listening socket it may take over, or null. */
    volatile SocketChardev predecessor;
    /** The successor this server's listening socket is lent to: it does not accept meanwhile. */
    volatile SocketChardev lentTo;
    /** Event loop only. */
    Channel connection;
    /** Event loop only: accepted or connected, TLS or websocket handshake still running. */
    Channel handshaking;
    boolean writeBlocked;
    /** Client with TLS: the host and port its certificate check names (the {@code host} option, unresolved). */
    volatile InetSocketAddress tlsPeer;
    String disconnectedName;

    volatile String filename;
    volatile boolean connected;
    volatile SocketAddress localAddress;
    /** Event loop only after open: the descriptor of an {@code fd} address, -1 otherwise. */
    int fdNumber = -1;

    private SocketChardev(final String id, final EventLoop loop, final Logfile logfile,
                          final ChardevBackend.Socket options, final TlsCredentials tls, final Authorizer authz) {
        super(id, ChardevKind.SOCKET, loop, logfile);
        this.options = options;
        this.tls = tls;
        this.authz = authz;
        this.firstClient = loop.newPromise();
        this.disconnectedName = "disconnected:" + SocketEndpoints.describe(options, options.addr(), null, options.server());
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
        SocketEndpoints.requireBuilt(options, loop);
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
        chardev.fdNumber = options.addr() instanceof SocketAddressLegacy.Fd fd ? SocketEndpoints.resolveFd(fd, objects) : -1;
        chardev.predecessor = predecessor;
        try {
            if (options.server()) {
                chardev.server.listen();
            } else {
                chardev.client.connect();
            }
        } catch (final ChardevException | RuntimeException e) {
            chardev.close();
            throw e;
        }
        return chardev;
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
            loan.applyInputState(c);
        }
    }

    @Override
    public DirectInput openDirectInput() {
        return loan.openDirectInput();
    }

    @Override
    public void directInputReturned(final DirectInput input) {
        loan.directInputReturned(input);
    }

    /** Handshakes that ended (either way): lets a test know a refused peer has been dealt with. */
    int handshakeAttempts() {
        return pipeline.handshakeAttempts();
    }

    /** See {@link SocketEndpoints#checkOpenable}. */
    static void checkOpenable(final ChardevBackend.Socket o) throws ChardevException {
        SocketEndpoints.checkOpenable(o);
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
        client.cancel();
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
            from.server.listenerReturned(this); // a change that did not go through: the predecessor accepts again
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

}
