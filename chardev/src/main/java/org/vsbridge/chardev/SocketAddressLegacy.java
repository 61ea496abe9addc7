package org.vsbridge.chardev;

/**
 * The socket address of a {@code socket} or {@code udp} chardev: QAPI's {@code SocketAddressLegacy}, a union on
 * {@code type} ({@code inet}, {@code unix}, {@code vsock}, {@code fd}).
 */
public sealed interface SocketAddressLegacy {

    /** The QAPI {@code type} of this address. */
    String type();

    /**
     * {@code InetSocketAddress}. {@code host} and {@code port} are strings as in QAPI (a port may be a service
     * name); the optional members are null when absent.
     */
    record Inet(String host, String port, Boolean numeric, Integer to, Boolean ipv4, Boolean ipv6,
                Boolean keepAlive, Boolean mptcp) implements SocketAddressLegacy {

        public Inet(final String host, final String port) {
            this(host, port, null, null, null, null, null, null);
        }

        @Override
        public String type() {
            return "inet";
        }
    }

    /** {@code UnixSocketAddress}; {@code abstract} and {@code tight} only mean something on Linux. */
    record Unix(String path, boolean abstractNamespace, boolean tight) implements SocketAddressLegacy {

        public Unix(final String path) {
            this(path, false, true);
        }

        @Override
        public String type() {
            return "unix";
        }
    }

    /** {@code VsockSocketAddress}: context id and port, as strings like QAPI has them. */
    record Vsock(String cid, String port) implements SocketAddressLegacy {
        @Override
        public String type() {
            return "vsock";
        }
    }

    /** {@code String}: a file descriptor number or the name of a monitor fd. */
    record Fd(String str) implements SocketAddressLegacy {
        @Override
        public String type() {
            return "fd";
        }
    }
}
