package org.vsbridge.nativetest;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.nativetest.kit.BridgeProcess;
import org.vsbridge.nativetest.kit.Fnv1a64;

/**
 * The embedded default (the jar without options) in a real terminal, a tmux pane of 100x30, with vsb-frontend as
 * the guest: it behaves as QEMU's {@code -nographic} console. Ctrl-C is a byte for the guest, C-a h prints the keys
 * on the terminal, C-a C-a sends one Ctrl-A, the guest's console has the pane's size and gets a RESIZE when the
 * pane changes, log lines go to ./vhost-serial-bridge.log instead of the terminal, and C-a x stops the bridge with
 * status 0 and the terminal's settings as they were.
 */
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class EmbeddedConsoleTest {

    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    private Path tmuxSocket;

    private String tmux(final String... args) throws IOException, InterruptedException {
        final List<String> cmd = new ArrayList<>(List.of("tmux", "-S", tmuxSocket.toString()));
        cmd.addAll(List.of(args));
        final Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "tmux " + String.join(" ", args) + " hangs");
        assertEquals(0, p.exitValue(), "tmux " + String.join(" ", args) + ": " + out);
        return out;
    }

    private String pane() throws IOException, InterruptedException {
        return tmux("capture-pane", "-p", "-J", "-t", "console");
    }

    private String read(final String name) {
        try {
            final Path p = dir.resolve(name);
            return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8).trim() : "";
        } catch (final IOException e) {
            return "";
        }
    }

    @Test
    void theEmbeddedConsoleFeelsLikeQemuNographic() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tmux")) || System.getenv("CI") != null, "tmux not installed");
        tmuxSocket = dir.resolve("tmux.sock");
        final Path jar = dir.resolve("vhost-serial-bridge.jar");
        Files.copy(BridgeProcess.jar(), jar, StandardCopyOption.REPLACE_EXISTING);
        final String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // The shell around the bridge records the terminal settings before and after, and the exit status.
        final String script = "stty -g > stty.before; env --default-signal=HUP,INT,TERM " + java + " "
            + String.join(" ", BridgeProcess.jvmOptions()) + " -jar " + jar
            + "; echo $? > status; stty -g > stty.after; exec sleep 600";
        tmux("new-session", "-d", "-s", "console", "-x", "100", "-y", "30", "-c", dir.toString(), "sh", "-c", script);
        try (FrontendProcess guest = FrontendProcess.start(dir, "guest", List.of("--socket",
            dir.resolve("vhost-serial-bridge.sock").toString(), "--port", "0", "--stdin", "--no-verify"))) {
            // The console's size is the pane's: in config space and in the RESIZE (rows first, what Linux reads).
            guest.awaitLine("^CONFIG cols=100 rows=30 ", WAIT);
            guest.awaitLine("^EVENT resize port=0 first=30 second=100$", WAIT);
            final String stderrLine = pane();
            assertTrue(stderrLine.contains("logs go to " + dir.resolve("vhost-serial-bridge.log")), stderrLine);

            // Ctrl-C, C-a h (help on the terminal, nothing to the guest), C-a C-a: the guest gets 0x03 0x01.
            guest.command("rx 0 2");
            tmux("send-keys", "-t", "console", "C-c");
            tmux("send-keys", "-t", "console", "C-a", "h");
            await().atMost(WAIT).until(() -> pane().contains("C-a x    stop vhost-serial-bridge"));
            tmux("send-keys", "-t", "console", "C-a", "C-a");
            guest.command("wait");
            guest.awaitLine("^IDLE$", WAIT);
            final int mark = guest.mark();
            guest.command("status");
            guest.awaitLine("^STATUS$", mark, WAIT);
            final Fnv1a64 sum = new Fnv1a64();
            sum.update(new byte[] {0x03, 0x01}, 0, 2);
            final FrontendProcess.Result r = guest.result(0);
            assertEquals(2, r.rxBytes(), "exactly Ctrl-C and one Ctrl-A reach the guest\n" + guest.transcript());
            assertEquals(sum.hex(), r.rxSum(), guest.transcript());

            // SIGWINCH: a smaller pane is a RESIZE for the guest.
            tmux("resize-window", "-t", "console", "-x", "90", "-y", "25");
            guest.awaitLine("^EVENT resize port=0 first=25 second=90$", WAIT);

            // C-a x: a clean stop, status 0, the terminal as it was.
            tmux("send-keys", "-t", "console", "C-a", "x");
            await().atMost(WAIT).until(() -> !read("stty.after").isEmpty());
            assertEquals("0", read("status"), pane());
            assertEquals(read("stty.before"), read("stty.after"), "the terminal is restored");
            final String end = pane();
            assertTrue(end.contains("stopped by C-a x"), end);
            assertFalse(end.contains(" INFO "), "no log line on the console:\n" + end);
            final String log = read("vhost-serial-bridge.log");
            assertTrue(log.contains("terminal size 100x30") && log.contains("shutdown complete"), log);
        } finally {
            new ProcessBuilder("tmux", "-S", tmuxSocket.toString(), "kill-server").start().waitFor(30, TimeUnit.SECONDS);
        }
    }
}
