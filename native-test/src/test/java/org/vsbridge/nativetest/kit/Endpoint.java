package org.vsbridge.nativetest.kit;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.io.IOException;
import java.time.Duration;
import org.awaitility.core.ConditionTimeoutException;

/** Where a host peer finds a chardev that listens: a Unix socket path or a TCP port on loopback. */
public record Endpoint(Path unixPath, int tcpPort) {

    public static Endpoint unix(final Path path) {
        return new Endpoint(path, 0);
    }

    public static Endpoint tcp(final int port) {
        return new Endpoint(null, port);
    }

    public SocketChannel open() throws IOException {
        final SocketAddress address;
        final SocketChannel channel;
        if (unixPath != null) {
            address = UnixDomainSocketAddress.of(unixPath);
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } else {
            address = new InetSocketAddress("127.0.0.1", tcpPort);
            channel = SocketChannel.open(StandardProtocolFamily.INET);
        }
        try {
            channel.connect(address);
            return channel;
        } catch (final IOException e) {
            channel.close();
            throw e;
        }
    }

    /**
     * Connects, retrying while nobody listens yet (the chardev or QMP socket is still being set up) for at most
     * {@code timeout}.
     */
    public SocketChannel connect(final Duration timeout) throws IOException {
        final IOException[] last = new IOException[1];
        try {
            return Waits.upTo(timeout, "a connection to " + this).until(() -> {
                try {
                    return open();
                } catch (final IOException e) {
                    last[0] = e;
                    return null;
                }
            }, java.util.Objects::nonNull);
        } catch (final ConditionTimeoutException e) {
            throw new IOException("cannot connect to " + this + " within " + timeout, last[0]);
        }
    }

    /** The address in QEMU's {@code -chardev socket} spelling, without id and server flags. */
    public String chardevAddress() {
        return unixPath != null ? "path=" + unixPath : "host=127.0.0.1,port=" + tcpPort;
    }

    @Override
    public String toString() {
        return unixPath != null ? "unix:" + unixPath : "tcp:127.0.0.1:" + tcpPort;
    }
}
