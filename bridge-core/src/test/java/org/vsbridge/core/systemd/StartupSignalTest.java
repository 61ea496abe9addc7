package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A stop request while the bridge still starts: a server chardev with the command line's default {@code wait=on}
 * blocks start-up until its first client, and SIGTERM (systemctl stop) or SIGINT (Ctrl-C) must end that wait and
 * the process with status 0, with no client ever connecting.
 */
class StartupSignalTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"TERM", "INT"})
    void aStopRequestEndsTheWaitForTheFirstClient(final String signal) throws Exception {
        final Path chardev = dir.resolve("c0.sock");
        try (BridgeChild bridge = BridgeChild.start(dir, "bridge", "--socket-path", dir.resolve("v.sock").toString(),
            "--chardev", "socket,id=c0,path=" + chardev + ",server=on",
            "--device", "virtserialport,chardev=c0,name=a")) {
            bridge.awaitLine("waiting for connection");
            if (signal.equals("TERM")) {
                bridge.process().destroy(); // SIGTERM
            } else {
                bridge.signal(signal);
            }
            assertEquals(0, bridge.exitStatus(), bridge.output());
            assertEquals(1, bridge.lines("SIG" + signal + ": shutting down").size(), bridge.output());
            assertEquals(1, bridge.lines("stopped during start-up").size(), bridge.output());
            assertTrue(bridge.lines("chardev 'c0': connected").isEmpty(), bridge.output());
            assertTrue(bridge.lines("\tat ").isEmpty(), bridge.output());
        }
        assertFalse(Files.exists(chardev), "the chardev's socket file is removed");
    }
}
