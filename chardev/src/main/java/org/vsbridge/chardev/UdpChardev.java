package org.vsbridge.chardev;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.socket.DatagramPacket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code udp}: guest output goes as datagrams to {@code remote}; datagrams arriving on {@code local} (any
 * sender, as QEMU) are input. Always open; its {@code filename} is {@code udp}. Each write is one datagram (at
 * most 64 KiB, the most the bridge hands a chardev at once).
 */
final class UdpChardev extends AbstractChardev {

    private static final Logger LOG = Logger.getLogger(UdpChardev.class.getName());

    private final Channel channel;
    private final InetSocketAddress remote;

    private UdpChardev(final String id, final EventLoop loop, final Logfile logfile, final Channel channel,
                       final InetSocketAddress remote) {
        super(id, ChardevKind.UDP, loop, logfile);
        this.channel = channel;
        this.remote = remote;
    }

    static UdpChardev open(final String id, final EventLoop loop, final Logfile logfile,
                           final ChardevBackend.Udp options) throws ChardevException {
        if (!(options.remote() instanceof SocketAddressLegacy.Inet r)) {
            throw new ChardevException("socket type unsupported for datagram");
        }
        if (options.local() != null && !(options.local() instanceof SocketAddressLegacy.Inet)) {
            throw new ChardevException("socket type unsupported for datagram");
        }
        final SocketAddressLegacy.Inet l = (SocketAddressLegacy.Inet) options.local();
        final InetSocketAddress remote = new InetSocketAddress(resolve(r.host()), port(r.port(), 1));
        final InetSocketAddress local = l == null ? new InetSocketAddress(0)
            : new InetSocketAddress(l.host().isEmpty() ? null : resolve(l.host()), port(l.port(), 0));
        final UdpChardev[] self = new UdpChardev[1];
        final Bootstrap b = new Bootstrap().group(loop).channel(Transports.datagramChannel(loop))
            .option(ChannelOption.AUTO_READ, false)
            .handler(new SimpleChannelInboundHandler<DatagramPacket>(false) {
                @Override
                protected void channelRead0(final ChannelHandlerContext ctx, final DatagramPacket msg) {
                    self[0].received(msg.content());
                }

                @Override
                public void exceptionCaught(final ChannelHandlerContext ctx, final Throwable cause) {
                    LOG.log(Level.WARNING, "chardev ''{0}'': udp error: {1}", new Object[] {id, Errno.reason(cause)});
                }
            });
        final ChannelFuture bound = b.bind(local).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            throw new ChardevException("Failed to bind socket: " + Errno.reason(bound.cause()));
        }
        self[0] = new UdpChardev(id, loop, logfile, bound.channel(), remote);
        return self[0];
    }

    private static InetAddress resolve(final String host) throws ChardevException {
        try {
            return InetAddress.getByName(host);
        } catch (final UnknownHostException e) {
            throw new ChardevException("address resolution failed for " + host + ": Name or service not known");
        }
    }

    private static int port(final String port, final int min) throws ChardevException {
        try {
            final int p = Integer.parseInt(port);
            if (p >= min && p <= 65535) {
                return p;
            }
        } catch (final NumberFormatException e) {
            // fall through
        }
        throw new ChardevException("Port '" + port + "' out of range");
    }

    /** The bound local address (the real port when bound to 0). */
    InetSocketAddress localAddress() {
        return (InetSocketAddress) channel.localAddress();
    }

    private void received(final ByteBuf data) {
        final ChardevFrontend f = frontend;
        if (f == null || !data.isReadable()) {
            data.release();
            return;
        }
        f.received(data);
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    protected void inputStateChanged() {
        channel.config().setAutoRead(inputWanted());
        if (inputWanted()) {
            channel.read();
        }
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        if (!data.isReadable()) {
            data.release();
            return true;
        }
        channel.writeAndFlush(new DatagramPacket(data, remote), channel.voidPromise());
        return true; // a datagram socket never pushes back; the kernel drops what it cannot send, as for QEMU
    }

    @Override
    protected void doClose() {
        channel.close();
    }
}
