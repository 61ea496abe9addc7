package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler.Sharable;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The Netty pipeline of each connection of a {@link SocketChardev}, [TLS] [HTTP + websocket | telnet] chardev, and
 * its last handler: handshakes (TLS with its authorization, websocket), then connected (OPENED), the bytes read,
 * writability, and the disconnect (CLOSED, and a server accepts again, a client reconnects).
 */
final class SocketPipeline {

    private static final Logger LOG = Logger.getLogger(SocketChardev.class.getName());

    private final SocketChardev s;
    private final ConnectionHandler handler = new ConnectionHandler();
    final ChannelInitializer<Channel> initializer = new ChannelInitializer<>() {
        @Override
        protected void initChannel(final Channel ch) {
            buildPipeline(ch);
        }
    };

    SocketPipeline(final SocketChardev s) {
        this.s = s;
    }

    /** The pipeline reads like the options: [TLS] [HTTP + websocket | telnet] chardev. */
    void buildPipeline(final Channel ch) {
        ch.config().setRecvByteBufAllocator(s.loan.gatedReads(ch.config().getRecvByteBufAllocator(), ch));
        final var p = ch.pipeline();
        if (s.tls != null) {
            final InetSocketAddress peer = s.tlsPeer;
            p.addLast("tls", peer == null ? s.tls.context().newHandler(ch.alloc())
                : s.tls.context().newHandler(ch.alloc(), peer.getHostString(), peer.getPort()));
        }
        if (s.options.websocket()) {
            p.addLast("http", new io.netty.handler.codec.http.HttpServerCodec());
            p.addLast("http-aggregator", new io.netty.handler.codec.http.HttpObjectAggregator(64 * 1024));
            p.addLast("websocket", new io.netty.handler.codec.http.websocketx.WebSocketServerProtocolHandler(
                io.netty.handler.codec.http.websocketx.WebSocketServerProtocolConfig.newBuilder()
                    .websocketPath("/").checkStartsWith(true).subprotocols("binary")
                    .allowExtensions(false).maxFramePayloadLength(1 << 20).build()));
            p.addLast("websocket-bytes", new WebSocketBytes());
        } else if (negotiatesTelnet()) {
            p.addLast("telnet", new TelnetDecoder(s.options.tn3270()));
        }
        p.addLast("chardev", handler);
    }

    /**
     * Telnet (tn3270) is spoken by a server only, as QEMU does: a client with {@code telnet=on} sends no options
     * and passes every byte, IAC included, as data; only its {@code filename} says "telnet".
     */
    boolean negotiatesTelnet() {
        return s.options.server() && (s.options.telnet() || s.options.tn3270());
    }

    /** Handshakes that ended (either way): lets a test know a refused peer has been dealt with. */
    int handshakeAttempts() {
        return handshakesDone;
    }

    private volatile int handshakesDone;

    /** True while a handshake (TLS, websocket) must finish before the peer counts as connected. */
    private boolean needsHandshake() {
        return s.tls != null || s.options.websocket();
    }

    /** After the TLS handshake: the authz object decides on the client certificate's distinguished name. */
    private boolean authorized(final Channel c) {
        if (s.authz == null) {
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
                + "refuses it", new Object[] {s.id, s.options.tlsAuthz()});
            return false;
        }
        if (!s.authz.isAllowed(dn)) {
            LOG.log(Level.WARNING, "chardev ''{0}'': TLS x509 authz check for {1} is denied",
                new Object[] {s.id, dn});
            return false;
        }
        return true;
    }

    /** One instance serves every connection of this chardev (at most one at a time). */
    @Sharable
    private final class ConnectionHandler extends ChannelInboundHandlerAdapter {

        @Override
        public void channelActive(final ChannelHandlerContext ctx) {
            final Channel c = ctx.channel();
            if (s.connection != null || s.handshaking != null || s.isClosed()) {
                c.close();
                return;
            }
            if (needsHandshake()) {
                s.handshaking = c;
                c.config().setAutoRead(true); // the handshake needs to read; input is held until ready
                return;
            }
            ready(ctx);
        }

        @Override
        public void userEventTriggered(final ChannelHandlerContext ctx, final Object evt) {
            final Channel c = ctx.channel();
            if (evt == TelnetDecoder.BREAK) {
                if (c == s.connection && s.frontend != null) {
                    s.frontend.breakReceived();
                }
                return;
            }
            if (c != s.handshaking) {
                ctx.fireUserEventTriggered(evt);
                return;
            }
            if (evt instanceof io.netty.handler.ssl.SslHandshakeCompletionEvent done) {
                handshakesDone++;
                if (!done.isSuccess()) {
                    final InetSocketAddress peer = s.tlsPeer;
                    LOG.log(Level.WARNING, "chardev ''{0}'': TLS handshake failed{1}: {2}",
                        new Object[] {s.id, peer == null ? "" : " with host " + peer.getHostString() + " port "
                            + peer.getPort(), SocketEndpoints.reason(done.cause())});
                    c.close();
                    return;
                }
                if (!authorized(c)) {
                    c.close();
                    return;
                }
                if (!s.options.websocket()) {
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
            s.handshaking = null;
            if (s.connection != null || s.isClosed()) {
                c.close();
                return;
            }
            if (negotiatesTelnet()) {
                c.writeAndFlush(TelnetDecoder.init(s.options.tn3270()), c.voidPromise());
            }
            s.connection = c;
            if (!s.options.server()) {
                s.localAddress = c.localAddress();
            }
            s.filename = SocketEndpoints.connectedName(s.options, c);
            s.connected = true;
            LOG.log(Level.INFO, "chardev ''{0}'': connected: {1}", new Object[] {s.id, s.filename});
            s.firstClient.trySuccess(null);
            s.loan.applyInputState(c);
            if (s.frontend != null) {
                s.frontend.opened();
            }
        }

        @Override
        public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
            final ChardevFrontend f = s.frontend;
            if (ctx.channel() != s.connection || f == null || !(msg instanceof ByteBuf buf)) {
                ReferenceCountUtil.release(msg);
                return;
            }
            f.received(buf);
        }

        @Override
        public void channelInactive(final ChannelHandlerContext ctx) {
            if (ctx.channel() == s.handshaking) {
                s.handshaking = null;
                final Channel l = s.listener;
                if (l != null && !s.isClosed() && s.lentTo == null) {
                    l.config().setAutoRead(true);
                }
                s.client.scheduleReconnect();
                return;
            }
            if (ctx.channel() != s.connection) {
                return;
            }
            s.connection = null;
            s.connected = false;
            s.filename = s.disconnectedName;
            LOG.log(Level.INFO, "chardev ''{0}'': disconnected, now {1}", new Object[] {s.id, s.filename});
            final ChardevFrontend f = s.frontend;
            if (f != null) {
                f.closed();
                if (s.writeBlocked) {
                    // Writes are dropped from now on, so nothing holds the frontend back any more.
                    s.writeBlocked = false;
                    f.writable();
                }
            }
            s.writeBlocked = false;
            final Channel l = s.listener;
            if (l != null && !s.isClosed() && s.lentTo == null) {
                l.config().setAutoRead(true); // accept the next client (maybe already in the backlog)
            }
            s.client.scheduleReconnect();
        }

        @Override
        public void channelWritabilityChanged(final ChannelHandlerContext ctx) {
            final Channel c = ctx.channel();
            if (c == s.connection && c.isWritable() && s.writeBlocked) {
                s.writeBlocked = false;
                final ChardevFrontend f = s.frontend;
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
                new Object[] {s.id, SocketEndpoints.reason(cause)});
            ctx.close();
        }

        /** Event loop only: the connection whose error was logged. */
        private Channel failedChannel;
    }
}
