package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A bridge started by a parent that ignores HUP, INT and TERM (nohup, a shell's background job) still reopens its
 * log on SIGHUP and stops gracefully on SIGTERM, as QEMU does: a JVM alone would leave inherited ignored signals
 * ignored, losing both without a word.
 */
class InheritedSignalsTest {

    @TempDir
    Path dir;

    @Test
    void signalsIgnoredByTheParentAreHandled() throws Exception {
        final String path = dir.resolve("notify").toString();
        final Path log = dir.resolve("bridge.log");
        final List<String> cmd = new ArrayList<>(ChildJvm.command(ServiceProbe.class, "signals",
            dir.resolve("closed").toString(), log.toString()));
        assertEquals("/usr/bin/env", cmd.get(0));
        cmd.set(1, "--ignore-signal=HUP,INT,TERM");
        try (NotifyListener manager = new NotifyListener(path)) {
            final ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile());
            pb.environment().put("NOTIFY_SOCKET", path);
            final Process p = pb.start();
            try {
                assertNotNull(manager.awaitContaining("READY=1", 30_000), "no READY=1");
                Files.move(log, dir.resolve("bridge.log.1"));
                new ProcessBuilder("kill", "-HUP", Long.toString(p.pid())).start().waitFor();
                await("the log file reopened").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(20))
                    .until(() -> Files.exists(log) && Files.readString(log).contains("reopened log file"));
                p.destroy();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "SIGTERM did not stop it");
                assertEquals(0, p.exitValue());
                final String before = Files.readString(dir.resolve("bridge.log.1"));
                assertTrue(before.contains("SIGHUP was ignored by the parent process"), before);
                assertTrue(Files.readString(log).contains("SIGTERM: shutting down"));
            } finally {
                p.destroyForcibly();
            }
        }
    }
}
