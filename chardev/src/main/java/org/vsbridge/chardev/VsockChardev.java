package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * {@code socket} with a {@code vsock} address, client side: an {@code AF_VSOCK} stream socket connected through
 * JNA (Netty has no vsock transport) and then served like any descriptor. Its {@code filename} is
 * {@code vsock:CID:PORT} until connected and {@code unknown} after, as QEMU computes it for a family it cannot
 * print. A vsock server, and telnet, websocket or TLS over vsock, are refused.
 */
final class VsockChardev extends FdChardev {

    private final String address;

    private VsockChardev(final String id, final EventLoop loop, final Logfile logfile, final int fd,
                         final String address) {
        super(id, ChardevKind.SOCKET, loop, logfile, fd, fd);
        this.address = address;
    }

    static VsockChardev open(final String id, final EventLoop loop, final Logfile logfile,
                             final ChardevBackend.Socket options) throws ChardevException {
        final SocketAddressLegacy.Vsock vsock = (SocketAddressLegacy.Vsock) options.addr();
        if (options.server()) {
            throw new ChardevException("the bridge does not support vsock server sockets: connect to a vsock "
                + "listener (server=off), or use a unix or tcp socket");
        }
        if (options.telnet() || options.tn3270() || options.websocket() || options.reconnectMs() > 0) {
            throw new ChardevException("the bridge supports vsock sockets only as plain byte streams "
                + "(no telnet, tn3270, websocket or reconnect)");
        }
        requireEpoll(loop, ChardevKind.SOCKET);
        final int cid = number(vsock.cid(), "cid");
        final int port = number(vsock.port(), "port");
        final String address = "vsock:" + vsock.cid() + ":" + vsock.port();
        int fd = -1;
        try {
            fd = Sockets.socket(Sockets.AF_VSOCK, Sockets.SOCK_STREAM | Sockets.SOCK_CLOEXEC, 0);
            final byte[] sa = Sockets.sockaddrVm(cid, port);
            Sockets.connect(fd, sa, sa.length);
            Sys.setNonBlocking(fd);
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new ChardevException("Failed to connect to '" + address + "': " + e.reason());
        }
        final VsockChardev chardev = new VsockChardev(id, loop, logfile, fd, address);
        try {
            chardev.register();
        } catch (final ChardevException e) {
            chardev.close();
            throw e;
        }
        return chardev;
    }

    /** An unsigned 32-bit cid or port, as its bits in an int. */
    private static int number(final String value, final String what) throws ChardevException {
        long n = -1;
        try {
            n = Long.parseLong(value);
        } catch (final NumberFormatException e) {
            // refused below
        }
        if (n < 0 || n > 0xFFFFFFFFL) {
            throw new ChardevException("Failed to parse " + what + " '" + value + "'");
        }
        return (int) n;
    }

    @Override
    public String filename() {
        return isOpen() ? "unknown" : "disconnected:" + address;
    }
}
