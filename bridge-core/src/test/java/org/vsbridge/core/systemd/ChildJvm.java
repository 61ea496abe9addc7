package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/** The command line of a child JVM running a test main class on this test's class path, and a way to reach its sockets. */
final class ChildJvm {

    /**
     * Signals the child must treat as the service would. An ignored disposition survives exec (a build run under
     * {@code nohup} ignores SIGHUP), and the JVM then leaves such a signal ignored instead of installing the
     * handler asked for. The child therefore starts with the default dispositions, as systemd starts the service,
     * whatever this JVM inherited.
     */
    private static final String DEFAULT_SIGNALS = "--default-signal=HUP,INT,TERM";

    private ChildJvm() {
    }

    static List<String> command(final Class<?> main, final String... args) {
        final List<String> cmd = new ArrayList<>();
        cmd.add("/usr/bin/env");
        cmd.add(DEFAULT_SIGNALS);
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--add-exports");
        cmd.add("java.base/jdk.internal.misc=ALL-UNNAMED");
        cmd.add("-Xshare:auto");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-cp");
        cmd.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        return cmd;
    }

    /**
     * Connects to a socket the child creates. The file appears at bind(), before listen(): until then a connect
     * is refused, so refusals are retried too. The bound only guards against a hang (a JVM starting on a busy
     * machine).
     */
    static SocketChannel connectWhenListening(final Path socket) {
        return await(socket + " listening").atMost(Duration.ofSeconds(60)).pollInterval(Duration.ofMillis(10))
            .until(() -> tryConnect(socket), Objects::nonNull);
    }

    /** A connection to {@code socket}, or null while nothing listens there. */
    private static SocketChannel tryConnect(final Path socket) throws IOException {
        final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.connect(UnixDomainSocketAddress.of(socket));
            return ch;
        } catch (final SocketException e) {
            ch.close();
            return null;
        }
    }
}
