package org.vsbridge.chardev;

import io.netty.bootstrap.Bootstrap;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The connecting side of a client {@link SocketChardev}: connects once at creation (a failure fails the creation),
 * or with {@code reconnect} keeps trying in the background and connects again after each disconnect.
 */
final class SocketClient {

    private static final Logger LOG = Logger.getLogger(SocketChardev.class.getName());

    private final SocketChardev s;
    /** Event loop only: a client reconnect is scheduled. */
    private io.netty.util.concurrent.ScheduledFuture<?> reconnectTimer;
    private Bootstrap clientBootstrap;
    private SocketAddress clientRemote;

    SocketClient(final SocketChardev s) {
        this.s = s;
    }

    /** Event loop: no more reconnects (the chardev closes). */
    void cancel() {
        if (reconnectTimer != null) {
            reconnectTimer.cancel(false);
            reconnectTimer = null;
        }
    }

    void connect() throws ChardevException {
        final Bootstrap b = new Bootstrap()
            .group(s.loop)
            .option(ChannelOption.AUTO_READ, false)
            .option(ChannelOption.WRITE_BUFFER_WATER_MARK, SocketChardev.WATER_MARK)
            .handler(s.pipeline.initializer);
        final SocketAddress remote;
        final String where;
        if (s.fdNumber >= 0) {
            final int fd = s.fdNumber;
            if (SocketEndpoints.isUnixFd(fd)) {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollDomainSocketChannel(fd));
            } else {
                b.channelFactory(() -> new io.netty.channel.epoll.EpollSocketChannel(fd));
            }
            final ChannelFuture f = b.register().awaitUninterruptibly();
            if (!f.isSuccess()) {
                throw new ChardevException("Failed to use fd " + fd + ": " + SocketEndpoints.reason(f.cause()));
            }
            s.loop.submit(() -> { }).syncUninterruptibly();
            return;
        } else if (s.options.addr() instanceof SocketAddressLegacy.Unix unix) {
            SocketEndpoints.checkUnixPath(unix.path());
            if (unix.abstractNamespace() && !unix.tight()) {
                // Netty refuses to connect to an address that fills sun_path: the channel comes connected.
                b.channelFactory(() -> new io.netty.channel.epoll.EpollDomainSocketChannel(SocketEndpoints.connectPadded(unix)));
                remote = null;
            } else {
                b.channel(Transports.domainSocketChannel(s.loop));
                remote = unix.abstractNamespace() ? new io.netty.channel.unix.DomainSocketAddress("\0" + unix.path())
                    : Transports.domainSocketAddress(s.loop, unix.path());
            }
            where = "Failed to connect to '" + unix.path() + "'";
        } else {
            final SocketAddressLegacy.Inet inet = (SocketAddressLegacy.Inet) s.options.addr();
            b.option(ChannelOption.TCP_NODELAY, s.options.nodelay());
            if (Boolean.TRUE.equals(inet.keepAlive())) {
                b.option(ChannelOption.SO_KEEPALIVE, true);
            }
            if (inet.host().isEmpty()) {
                // QEMU's client resolves no host at all, where Java would take an empty name as the any-address.
                throw new ChardevException("address resolution failed for :" + inet.port()
                    + ": Name or service not known");
            }
            remote = new InetSocketAddress(SocketEndpoints.resolve(inet), SocketEndpoints.port(inet, false));
            if (Boolean.TRUE.equals(inet.mptcp())) {
                final InetAddress to = ((InetSocketAddress) remote).getAddress();
                if (s.options.reconnectMs() <= 0) {
                    Mptcp.probe(to); // with reconnect, as QEMU, each attempt fails on its own instead
                }
                b.channelFactory(Mptcp.clientFactory(to));
            } else {
                b.channel(Transports.socketChannel(s.loop));
            }
            if (s.tls != null) {
                // QEMU's char-socket hands the inet host, as written, to its TLS client session: the certificate
                // must name that host (checked with verify-peer, see TlsCredentials).
                s.tlsPeer = InetSocketAddress.createUnresolved(SocketEndpoints.unbracketed(inet.host()), SocketEndpoints.port(inet, false));
            }
            where = "Failed to connect to '" + inet.host() + ":" + inet.port() + "'";
        }
        if (s.options.reconnectMs() > 0) {
            // As QEMU with reconnect: creation succeeds at once, the connection comes (and comes back) later.
            clientBootstrap = b;
            clientRemote = remote;
            s.loop.execute(this::reconnectNow);
            return;
        }
        final ChannelFuture f = connect(b, remote).awaitUninterruptibly();
        if (!f.isSuccess()) {
            throw new ChardevException(where + ": " + SocketEndpoints.reason(f.cause()));
        }
        // NIO completes the connect promise before channelActive runs (in the same loop task): wait for it.
        s.loop.submit(() -> { }).syncUninterruptibly();
    }

    /** A connect to {@code remote}, or the registration of a channel its factory connected (remote null). */
    private static ChannelFuture connect(final Bootstrap b, final SocketAddress remote) {
        return remote == null ? b.register() : b.connect(remote);
    }

    /** Event loop: one connect attempt of a reconnecting client; a failure schedules the next. */
    private void reconnectNow() {
        reconnectTimer = null;
        if (s.isClosed() || s.connection != null || s.handshaking != null) {
            return;
        }
        connect(clientBootstrap, clientRemote).addListener((ChannelFuture f) -> {
            if (!f.isSuccess()) {
                LOG.log(Level.INFO, "chardev ''{0}'': Unable to connect character device {0}: {1}",
                    new Object[] {s.id, SocketEndpoints.reason(f.cause())});
                // A channel that could not even be made fails on Netty's global executor: back to the loop.
                if (s.loop.inEventLoop()) {
                    scheduleReconnect();
                } else {
                    s.loop.execute(this::scheduleReconnect);
                }
            }
        });
    }

    void scheduleReconnect() {
        if (clientBootstrap != null && !s.isClosed() && reconnectTimer == null) {
            reconnectTimer = s.loop.schedule(this::reconnectNow, s.options.reconnectMs(),
                java.util.concurrent.TimeUnit.MILLISECONDS);
        }
    }
}
