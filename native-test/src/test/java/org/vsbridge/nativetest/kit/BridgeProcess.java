package org.vsbridge.nativetest.kit;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.awaitility.core.ConditionTimeoutException;

/**
 * The real bridge jar as a child JVM, started as a user starts it ({@code java -jar}: the jar's manifest must
 * carry what the JVM needs) from a private copy of the jar, with stdout and stderr (its log) appended to a file.
 *
 * <p>The child JVM gets, before {@code -jar}: the words of system property {@code bridge.jvmArgs} (the build puts
 * a JaCoCo agent there, {@code -javaagent:...=destfile=...,append=true}: each bridge appends to the one file, so
 * several may run at once, and a bridge killed with SIGKILL adds nothing); those of {@code vsb.bridgeJvm} (A/B
 * options of the benchmark); and the options of the {@link DataPath} of the run ({@code -Dvsb.path=ring}).
 * {@code -Dvsb.bridge.logLevel=FINE} adds {@code --log-level}. The child starts with every signal at its default
 * disposition ({@code env --default-signal}): a JVM started from a parent that ignores SIGHUP or SIGINT (a
 * background job, nohup, a CI runner) would otherwise inherit that and never install its handlers.
 */
public final class BridgeProcess implements AutoCloseable {

    private final Process process;
    private final Path log;
    private final List<String> command;

    private BridgeProcess(final Process process, final Path log, final List<String> command) {
        this.process = process;
        this.log = log;
        this.command = command;
    }

    /** The bridge jar the build made (system property {@code bridge.jar}). */
    public static Path jar() {
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

    /** The JVM options every bridge child gets (see the class comment). */
    public static List<String> jvmOptions() {
        final List<String> out = new ArrayList<>();
        words(System.getProperty("bridge.jvmArgs"), out);
        words(System.getProperty("vsb.bridgeJvm"), out);
        out.addAll(DataPath.current().jvmOptions());
        return out;
    }

    private static void words(final String text, final List<String> out) {
        if (text != null) {
            for (final String w : text.trim().split("\\s+")) {
                if (!w.isEmpty()) {
                    out.add(w);
                }
            }
        }
    }

    /** The bridge of {@link #jar()} with {@code args}, working in {@code dir}, logging to {@code dir/bridge.log}. */
    public static BridgeProcess start(final Path dir, final List<String> args) throws IOException {
        return start(jar(), dir, dir.resolve("bridge.log"), args);
    }

    /** The bridge of {@code jar} (copied into {@code dir}) with {@code args}, working in {@code dir}. */
    public static BridgeProcess start(final Path jar, final Path dir, final Path log, final List<String> args)
        throws IOException {
        // A private copy: the shared jar may be rebuilt while this bridge runs, and a jar replaced under a running
        // JVM breaks its class loading.
        final Path copy = dir.resolve("vhost-serial-bridge.jar");
        if (!copy.equals(jar)) {
            Files.copy(jar, copy, StandardCopyOption.REPLACE_EXISTING);
        }
        final List<String> cmd = new ArrayList<>(List.of("env", "--default-signal"));
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvmOptions());
        cmd.add("-jar");
        cmd.add(copy.toString());
        cmd.addAll(args);
        final String level = System.getProperty("vsb.bridge.logLevel");
        if (level != null && !level.isBlank()) {
            cmd.addAll(List.of("--log-level", level));
        }
        final Process p = new ProcessBuilder(cmd)
            .directory(dir.toFile())
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
        System.out.println("[bridge] " + String.join(" ", cmd));
        return new BridgeProcess(p, log, List.copyOf(cmd));
    }

    /** Waits until the bridge accepts connections on {@code socket} (its vhost-user socket, say). */
    public BridgeProcess awaitListening(final Path socket, final Duration timeout) throws IOException {
        try {
            Waits.upTo(timeout, "the bridge listening on " + socket).pollInterval(Duration.ofMillis(50)).until(() -> {
                if (!process.isAlive()) {
                    throw new IOException("the bridge exited with status " + process.exitValue()
                        + " before listening on " + socket + ":\n" + log());
                }
                try (SocketChannel probe = Endpoint.unix(socket).open()) {
                    return true;
                } catch (final IOException notYet) {
                    return false;
                }
            });
        } catch (final ConditionTimeoutException e) {
            throw new IOException("the bridge did not listen on " + socket + " within " + timeout + ":\n" + log(), e);
        } catch (final RuntimeException e) {
            if (e.getCause() instanceof IOException io) {
                throw io;
            }
            throw e;
        }
        return this;
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public long pid() {
        return process.pid();
    }

    /** The command line, {@code env} and JVM options included. */
    public List<String> command() {
        return command;
    }

    public void assertAlive() {
        if (!process.isAlive()) {
            throw new AssertionError("the bridge exited with " + process.exitValue() + "\n" + logTail(80));
        }
    }

    /** The bridge's log so far. */
    public String log() {
        try {
            return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "(no bridge log)";
        } catch (final IOException e) {
            return "(bridge log unreadable: " + e + ")";
        }
    }

    /** The last {@code maxLines} lines of the log, for failure messages. */
    public String logTail(final int maxLines) {
        if (!Files.exists(log)) {
            return "(no bridge log)";
        }
        final List<String> all = log().lines().toList();
        final List<String> tail = all.subList(Math.max(0, all.size() - maxLines), all.size());
        return "--- bridge log (last " + tail.size() + " of " + all.size() + " lines) ---\n" + String.join("\n", tail);
    }

    /** Log lines containing {@code needle}, for asserting that the bridge reported something. */
    public List<String> logLinesContaining(final String needle) {
        return log().lines().filter(l -> l.contains(needle)).toList();
    }

    /** Waits for a log line containing {@code needle}; returns it. */
    public String awaitLogLine(final String needle, final Duration timeout) {
        try {
            return Waits.upTo(timeout, "a bridge log line with '" + needle + "'").pollInterval(Duration.ofMillis(20))
                .until(() -> logLinesContaining(needle).stream().findFirst().orElse(null), java.util.Objects::nonNull);
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError("no bridge log line with '" + needle + "' within " + timeout + "\n" + logTail(60), e);
        }
    }

    /** SIGKILL (no clean-up of any kind), then waits for the process to be gone. */
    public void kill() throws InterruptedException {
        process.destroyForcibly(); // SIGKILL on Linux
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            throw new AssertionError("the bridge survived SIGKILL for 10 s");
        }
    }

    /** SIGTERM, then the exit status (or -1 if it did not exit within {@code timeout}). */
    public int terminate(final Duration timeout) throws InterruptedException {
        process.destroy();
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS) ? process.exitValue() : -1;
    }

    /** SIGTERM, SIGKILL after 10 s. */
    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(10, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(10, TimeUnit.SECONDS);
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }
}
