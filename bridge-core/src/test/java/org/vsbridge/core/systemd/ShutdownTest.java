package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Signals sent to a real child JVM, notifications read from a real notify socket. */
class ShutdownTest {

    @TempDir
    Path dir;

    @Test
    void closeRunsOnceAndStoppingIsSentFirst() throws IOException {
        final String path = dir.resolve("notify").toString();
        final AtomicInteger closes = new AtomicInteger();
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path)) {
            final Shutdown shutdown = new Shutdown(notify, Duration.ofSeconds(30));
            shutdown.run(closes::incrementAndGet);
            shutdown.run(closes::incrementAndGet);
            assertEquals(1, closes.get());
            final String m = manager.receive(30_000);
            assertNotNull(m);
            assertTrue(m.startsWith("STOPPING=1\nSTATUS="), m);
        }
    }

    @Test
    void sigtermStopsGracefullyWithStatusZero() throws Exception {
        final String path = dir.resolve("notify").toString();
        final Path marker = dir.resolve("closed");
        try (NotifyListener manager = new NotifyListener(path)) {
            final ProcessBuilder pb = new ProcessBuilder(ChildJvm.command(ServiceProbe.class, "signals",
                marker.toString())).redirectErrorStream(true).redirectOutput(dir.resolve("out.txt").toFile());
            pb.environment().put("NOTIFY_SOCKET", path);
            final Process p = pb.start();
            try {
                assertNotNull(manager.awaitContaining("READY=1", 30_000), "no READY=1");
                // SIGHUP must not end the process (the JVM's default would): once its handler has run, the process
                // is still there. (Each signal's handler runs on a thread of its own: sending TERM at once could
                // end the process before the HUP line is written.)
                new ProcessBuilder("kill", "-HUP", Long.toString(p.pid())).start().waitFor();
                await("the SIGHUP handler").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(20))
                    .until(() -> Files.readString(dir.resolve("out.txt")).contains("SIGHUP: logs go to stderr"));
                assertTrue(p.isAlive(), "SIGHUP ended the process");
                new ProcessBuilder("kill", "-TERM", Long.toString(p.pid())).start().waitFor();
                final String stopping = manager.awaitContaining("STOPPING=1", 30_000);
                assertNotNull(stopping, "no STOPPING=1");
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "did not exit");
                final String out = Files.readString(dir.resolve("out.txt"));
                assertEquals(0, p.exitValue(), out);
                assertEquals("closed", Files.readString(marker));
                assertTrue(out.contains("SIGHUP: logs go to stderr; nothing to reopen"), out);
                assertTrue(out.contains("SIGTERM: shutting down"), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    @Test
    void sighupReopensTheLogFileAfterRotation() throws Exception {
        final String path = dir.resolve("notify").toString();
        final Path log = dir.resolve("bridge.log");
        final Path rotated = dir.resolve("bridge.log.1");
        try (NotifyListener manager = new NotifyListener(path)) {
            final ProcessBuilder pb = new ProcessBuilder(ChildJvm.command(ServiceProbe.class, "signals",
                dir.resolve("closed").toString(), log.toString())).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile());
            pb.environment().put("NOTIFY_SOCKET", path);
            final Process p = pb.start();
            try {
                assertNotNull(manager.awaitContaining("READY=1", 30_000), "no READY=1");
                Files.move(log, rotated);
                new ProcessBuilder("kill", "-HUP", Long.toString(p.pid())).start().waitFor();
                await("the log file reopened").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(20))
                    .until(() -> Files.exists(log) && Files.readString(log).contains("reopened log file"));
                p.destroy();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "did not exit");
                assertEquals(0, p.exitValue());
                assertTrue(Files.readString(rotated).contains("probe running"));
                assertTrue(Files.readString(log).contains("SIGTERM: shutting down"));
            } finally {
                p.destroyForcibly();
            }
        }
    }
}
