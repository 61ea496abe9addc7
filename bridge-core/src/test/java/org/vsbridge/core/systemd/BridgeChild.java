package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.vsbridge.core.Main;

/**
 * The bridge ({@link Main} on this test's class path, see {@link ChildJvm}) as a child process with the default
 * signal dispositions (a parent that ignores SIGINT or SIGTERM would otherwise hand that on, and the JVM would not
 * install its handlers). Standard output and standard error go to one file in the test's directory.
 */
final class BridgeChild implements AutoCloseable {

    /** Guards against a hang only: every wait ends as soon as what it waits for is there. */
    static final Duration HANG_GUARD = Duration.ofSeconds(90);

    private final Process process;
    private final Path out;

    private BridgeChild(final Process process, final Path out) {
        this.process = process;
        this.out = out;
    }

    static BridgeChild start(final Path dir, final String name, final String... args) throws IOException {
        final List<String> cmd = new ArrayList<>(List.of("env", "--default-signal=HUP,INT,TERM"));
        cmd.addAll(ChildJvm.command(Main.class, args));
        final Path out = dir.resolve(name + ".out");
        final Process p = new ProcessBuilder(cmd)
            .directory(dir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectErrorStream(true)
            .redirectOutput(out.toFile())
            .start();
        return new BridgeChild(p, out);
    }

    /** Runs the bridge to its end and returns it (for runs that exit by themselves, such as refusals). */
    static BridgeChild run(final Path dir, final String name, final String... args) throws Exception {
        final BridgeChild child = start(dir, name, args);
        child.exitStatus();
        return child;
    }

    Process process() {
        return process;
    }

    String output() {
        try {
            return Files.readString(out, StandardCharsets.UTF_8);
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits until the output has a line containing {@code text}; fails at once if the process ends first. */
    void awaitLine(final String text) {
        await().atMost(HANG_GUARD).pollInterval(Duration.ofMillis(20)).until(() -> {
            if (output().contains(text)) {
                return true;
            }
            assertTrue(process.isAlive(), () -> "exited (" + process.exitValue() + ") before printing '" + text
                + "':\n" + output());
            return false;
        });
    }

    /** The exit status, once the process has ended by itself or after a signal. */
    int exitStatus() throws InterruptedException {
        assertTrue(process.waitFor(HANG_GUARD.toSeconds(), TimeUnit.SECONDS), () -> "did not exit:\n" + output());
        return process.exitValue();
    }

    /** Sends a signal by name ({@code INT}, {@code TERM}, ...). */
    void signal(final String name) throws Exception {
        final Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).start();
        assertTrue(kill.waitFor(30, TimeUnit.SECONDS) && kill.exitValue() == 0, "kill -" + name + " failed");
    }

    /** Lines of the output that contain {@code text}. */
    List<String> lines(final String text) {
        return output().lines().filter(l -> l.contains(text)).toList();
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
    }
}
