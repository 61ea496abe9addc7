package org.vsbridge.nativetest.realguest;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.io.IOException;

/** Where a host peer finds a chardev that listens: a Unix socket path or a TCP port on loopback. */
record Endpoint(Path unixPath, int tcpPort) {

    static Endpoint unix(final Path path) {
        return new Endpoint(path, 0);
    }

    static Endpoint tcp(final int port) {
        return new Endpoint(null, port);
    }

    SocketChannel open() throws IOException {
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

    /** The address in QEMU's {@code -chardev socket} spelling, without id and server flags. */
    String chardevAddress() {
        return unixPath != null ? "path=" + unixPath : "host=127.0.0.1,port=" + tcpPort;
    }

    @Override
    public String toString() {
        return unixPath != null ? "unix:" + unixPath : "tcp:127.0.0.1:" + tcpPort;
    }
}
