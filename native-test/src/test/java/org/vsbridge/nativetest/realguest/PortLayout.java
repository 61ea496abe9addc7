package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import org.vsbridge.nativetest.kit.Endpoint;

/**
 * The three ports every real-guest run configures, wherever they live (bridge or QEMU):
 * a console (port 0, {@code /dev/hvc0} in the guest), {@code org.test.1} on a Unix socket and
 * {@code org.test.2} on a TCP socket. Both backends use the same device ids, so QMP
 * {@code VSERPORT_CHANGE} events look the same.
 */
record PortLayout(Path dir, Endpoint console, Endpoint port1, Endpoint port2, Endpoint qmp, Path vhostSocket) {
    static final String CONSOLE_ID = "con0";
    static final String PORT1_ID = "port1";
    static final String PORT2_ID = "port2";
    static final String PORT1_NAME = "org.test.1";
    static final String PORT2_NAME = "org.test.2";
    static final String CONSOLE_TTY = "hvc0";

    static PortLayout in(final Path dir) throws IOException {
        return new PortLayout(dir,
            Endpoint.unix(dir.resolve("con.sock")),
            Endpoint.unix(dir.resolve("p1.sock")),
            Endpoint.tcp(freeTcpPort()),
            Endpoint.unix(dir.resolve("qmp.sock")),
            dir.resolve("bridge.sock"));
    }

    private static int freeTcpPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
