package org.vsbridge.nativetest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** The real bridge jar as a child process; stdout and stderr (its log) go to bridge.log in the test directory. */
final class BridgeProcess implements AutoCloseable {

    private final Process process;
    private final Path log;

    private BridgeProcess(final Process process, final Path log) {
        this.process = process;
        this.log = log;
    }

    static Path jar() {
        final String jar = System.getProperty("bridge.jar");
        if (jar == null) {
            throw new IllegalStateException("system property bridge.jar is not set (run through Maven)");
        }
        final Path p = Path.of(jar);
        if (!Files.isRegularFile(p)) {
            throw new IllegalStateException("bridge jar " + p + " does not exist: build it with mvn package -DskipTests");
        }
        return p;
    }

    static BridgeProcess start(final Path dir, final List<String> args) throws IOException {
        final List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-jar");
        // A private copy: the shared jar may be rebuilt while this bridge runs, and a jar replaced under a running
        // JVM breaks its class loading.
        final Path copy = dir.resolve("vhost-serial-bridge.jar");
        Files.copy(jar(), copy, StandardCopyOption.REPLACE_EXISTING);
        cmd.add(copy.toString());
        cmd.addAll(args);
        final Path log = dir.resolve("bridge.log");
        final Process p = new ProcessBuilder(cmd)
            .directory(dir.toFile())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
        System.out.println("[bridge] " + String.join(" ", cmd));
        return new BridgeProcess(p, log);
    }

    boolean isAlive() {
        return process.isAlive();
    }

    void assertAlive() {
        if (!process.isAlive()) {
            throw new AssertionError("the bridge exited with " + process.exitValue() + "\n" + logTail(80));
        }
    }

    String logTail(final int maxLines) {
        try {
            if (!Files.exists(log)) {
                return "(no bridge log)";
            }
            final List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            final List<String> tail = all.subList(Math.max(0, all.size() - maxLines), all.size());
            return "--- bridge log (last " + tail.size() + " of " + all.size() + " lines) ---\n" + String.join("\n", tail);
        } catch (final IOException e) {
            return "(bridge log unreadable: " + e + ")";
        }
    }

    /** Log lines containing {@code needle}, for asserting that the bridge reported something. */
    List<String> logLinesContaining(final String needle) {
        try {
            final List<String> out = new ArrayList<>();
            for (final String l : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                if (l.contains(needle)) {
                    out.add(l);
                }
            }
            return out;
        } catch (final IOException e) {
            return List.of();
        }
    }

    /** SIGKILL (no clean-up of any kind), then waits for the process to be gone. */
    void kill() throws InterruptedException {
        process.destroyForcibly(); // SIGKILL on Linux
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            throw new AssertionError("the bridge survived SIGKILL for 10 s");
        }
    }

    /** SIGTERM, then the exit status (or -1 if it did not exit within {@code timeout}). */
    int terminate(final java.time.Duration timeout) throws InterruptedException {
        process.destroy();
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(5, TimeUnit.SECONDS);
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }
}
