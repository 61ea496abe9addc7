package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.core.Main;
import org.vsbridge.libc.Sys;
import org.vsbridge.libc.Tty;

/**
 * A {@code stdio} chardev on a terminal, as QEMU's: the bridge's stdin is the slave of a real pty; while it runs the
 * terminal is raw (no canonical mode, no echo; ISIG as {@code signal} says), and after SIGTERM it is as before.
 * {@code stty} reads the settings from outside the bridge.
 */
class StdioTerminalTest {

    @TempDir
    Path dir;

    private static List<String> stty(final String tty) throws Exception {
        final Process p = new ProcessBuilder("stty", "-F", tty, "-a").redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0, out);
        return List.of(out.split("[\\s;]+"));
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aTerminalIsRawWhileTheBridgeRunsAndRestoredAfter(final boolean signal) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/bin/stty")) || System.getenv("CI") != null, "stty not installed");
        final int master = Tty.openMaster(Sys.O_RDWR | Sys.O_NOCTTY);
        try {
            final String tty = Tty.slaveName(master);
            final List<String> before = stty(tty);
            assertTrue(before.contains("icanon") && before.contains("echo") && before.contains("isig"), before.toString());

            final List<String> cmd = new ArrayList<>(ChildJvm.command(Main.class,
                "--socket-path", dir.resolve("v.sock").toString(),
                "--chardev", "stdio,id=s0,signal=" + (signal ? "on" : "off"),
                "--device", "virtconsole,chardev=s0"));
            final Process bridge = new ProcessBuilder(cmd).redirectInput(new File(tty))
                .redirectErrorStream(true).redirectOutput(dir.resolve("out.txt").toFile()).start();
            try {
                ChildJvm.connectWhenListening(dir.resolve("v.sock")).close();
                final List<String> running = stty(tty);
                assertTrue(running.contains("-icanon") && running.contains("-echo") && running.contains("-icrnl")
                    && running.contains("-ixon") && running.contains("cs8"), running.toString());
                assertTrue(running.contains(signal ? "isig" : "-isig"), "signal=" + signal + ": " + running);
                assertTrue(running.contains("opost"), "output processing stays: " + running);
                bridge.destroy(); // SIGTERM
                assertTrue(bridge.waitFor(30, TimeUnit.SECONDS), "did not exit");
                assertEquals(0, bridge.exitValue(), Files.readString(dir.resolve("out.txt")));
            } finally {
                bridge.destroyForcibly();
            }
            assertEquals(before, stty(tty), "the terminal is restored");
        } finally {
            Sys.closeQuietly(master);
        }
    }
}
