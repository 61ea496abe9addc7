package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A socket the bridge cannot bind is one line worded like QEMU's, the same for the vhost-user, chardev and QMP
 * sockets, and never a stack trace: a TCP port in use (status 75, a restart may find it free) and a unix socket in a
 * directory that does not exist (status 1: the configuration can never start).
 */
class BindFailureTest {

    @TempDir
    Path dir;

    /** The one line that names the failure; no other line mentions it and no stack trace is printed. */
    private static String theLine(final BridgeChild bridge) {
        final List<String> lines = new java.util.ArrayList<>(bridge.lines("Failed to bind socket"));
        lines.addAll(bridge.lines("Failed to find an available port"));
        assertEquals(1, lines.size(), bridge.output());
        assertTrue(bridge.lines("\tat ").isEmpty(), bridge.output());
        assertTrue(bridge.lines("Exception").isEmpty(), bridge.output());
        return lines.get(0);
    }

    @ParameterizedTest
    @ValueSource(strings = {"qmp", "chardev"})
    void aTcpPortInUseIsOneLineAndARetry(final String which) throws Exception {
        try (ServerSocketChannel taken = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            final int port = ((InetSocketAddress) taken.getLocalAddress()).getPort();
            final String vhost = dir.resolve("v.sock").toString();
            final BridgeChild bridge = which.equals("qmp")
                ? BridgeChild.run(dir, which, "--socket-path", vhost, "--chardev", "null,id=c0",
                    "--device", "virtserialport,chardev=c0,name=a",
                    "--qmp", "tcp:127.0.0.1:" + port + ",server=on,wait=off")
                : BridgeChild.run(dir, which, "--socket-path", vhost,
                    "--chardev", "socket,id=c0,host=127.0.0.1,port=" + port + ",server=on,wait=off",
                    "--device", "virtserialport,chardev=c0,name=a");
            assertEquals(75, bridge.exitStatus(), bridge.output());
            final String prefix = which.equals("qmp") ? "QMP" : "-chardev c0";
            final String line = theLine(bridge);
            assertTrue(line.endsWith(" " + prefix + ": Failed to find an available port: Address already in use"), line);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"vhost-user", "chardev", "qmp"})
    void aUnixSocketInAMissingDirectoryIsOneLineAndFinal(final String which) throws Exception {
        final Path missing = dir.resolve("no-such-dir").resolve(which + ".sock");
        final Path vhost = which.equals("vhost-user") ? missing : dir.resolve("v.sock");
        final Path chardev = which.equals("chardev") ? missing : dir.resolve("c.sock");
        final Path qmp = which.equals("qmp") ? missing : dir.resolve("q.qmp");
        final BridgeChild bridge = BridgeChild.run(dir, which, "--socket-path", vhost.toString(),
            "--chardev", "socket,id=c0,path=" + chardev + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c0,name=a",
            "--qmp", "unix:" + qmp + ",server=on,wait=off");
        assertEquals(1, bridge.exitStatus(), bridge.output());
        final String prefix = switch (which) {
            case "vhost-user" -> "vhost-user";
            case "chardev" -> "-chardev c0";
            default -> "QMP";
        };
        assertEquals("vhost-serial-bridge: " + prefix + ": Failed to bind socket to " + missing
            + ": No such file or directory", theLine(bridge));
    }
}
