package org.vsbridge.nativetest;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.awaitility.core.ConditionTimeoutException;
import org.vsbridge.nativetest.kit.Waits;

/**
 * The native frontend (vsb-frontend) as a child process: its stdout lines are collected as they come,
 * commands go to its stdin, its stderr goes to a file in the test directory.
 */
final class FrontendProcess implements AutoCloseable {

    /** One RESULT line: cumulative bytes and FNV-1a sums per port. */
    record Result(int port, String name, long txBytes, String txSum, long rxBytes, String rxSum, long rxDiscarded,
                  String badDesc) {
    }

    private static final Pattern RESULT = Pattern.compile(
        "RESULT run=(\\d+) port=(\\d+) name=(\\S+) tx_bytes=(\\d+) tx_sum=(\\p{XDigit}{16}) rx_bytes=(\\d+) "
            + "rx_sum=(\\p{XDigit}{16}) rx_discarded=(\\d+) bad_desc=(\\S+)");

    private final Process process;
    private final Path stderr;
    private final List<String> lines = new ArrayList<>();
    private final OutputStream stdin;

    private FrontendProcess(final Process process, final Path stderr) {
        this.process = process;
        this.stderr = stderr;
        this.stdin = process.getOutputStream();
        final Thread reader = new Thread(this::readStdout, "frontend-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    static Path executable() {
        final String dir = System.getProperty("native.dir");
        if (dir == null) {
            throw new IllegalStateException("system property native.dir is not set (run through Maven)");
        }
        return Path.of(dir, "vsb-frontend");
    }

    static Path testBackendExecutable() {
        return executable().resolveSibling("vsb-test-backend");
    }

    static FrontendProcess start(final Path dir, final String name, final List<String> args) throws IOException {
        final List<String> cmd = new ArrayList<>();
        cmd.add(executable().toString());
        cmd.addAll(args);
        final Path err = dir.resolve(name + ".stderr");
        final Process p = new ProcessBuilder(cmd)
            .directory(dir.toFile())
            .redirectError(err.toFile())
            .start();
        System.out.println("[" + name + "] " + String.join(" ", cmd));
        return new FrontendProcess(p, err);
    }

    private void readStdout() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                synchronized (lines) {
                    lines.add(line);
                }
            }
        } catch (final IOException e) {
            // the process went away; what was read stays
        } finally {
            synchronized (lines) {
                lines.add(null); // end marker
            }
        }
    }

    /** Sends one command line on stdin (--stdin mode). */
    void command(final String line) throws IOException {
        stdin.write((line + "\n").getBytes(StandardCharsets.US_ASCII));
        stdin.flush();
    }

    /** Number of stdout lines so far: pass it to {@link #awaitLine(String, int, Duration)} to look only later. */
    int mark() {
        synchronized (lines) {
            return lines.size();
        }
    }

    String awaitLine(final String regex, final Duration timeout) {
        return awaitLine(regex, 0, timeout);
    }

    /** Waits for a stdout line matching {@code regex} at or after line {@code from}; fails with the full output. */
    String awaitLine(final String regex, final int from, final Duration timeout) {
        final Pattern p = Pattern.compile(regex);
        try {
            return Waits.upTo(timeout, "a frontend line matching /" + regex + "/")
                .until(() -> firstMatch(p, from, regex), java.util.Objects::nonNull);
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError("no frontend line matching /" + regex + "/ within " + timeout + "\n" + transcript(), e);
        }
    }

    /** The first line from {@code from} on that matches, or null; fails once the output ended without one. */
    private String firstMatch(final Pattern p, final int from, final String regex) {
        synchronized (lines) {
            for (int i = from; i < lines.size(); i++) {
                final String l = lines.get(i);
                if (l == null) {
                    throw new AssertionError("frontend ended (exit " + exitCodeText() + ") before printing a line matching /"
                        + regex + "/\n" + transcript());
                }
                if (p.matcher(l).find()) {
                    return l;
                }
            }
        }
        return null;
    }

    /** The lines matching {@code regex} so far. */
    List<String> linesMatching(final String regex) {
        final Pattern p = Pattern.compile(regex);
        final List<String> out = new ArrayList<>();
        synchronized (lines) {
            for (final String l : lines) {
                if (l != null && p.matcher(l).find()) {
                    out.add(l);
                }
            }
        }
        return out;
    }

    /** Waits for the process to end and returns its exit code; fails with the transcript on timeout. */
    int awaitExit(final Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("frontend still running after " + timeout + "\n" + transcript());
        }
        // The reader sees the end of the output just after the exit.
        Waits.upTo(Duration.ofSeconds(10), "the end of the frontend's output").until(() -> {
            synchronized (lines) {
                return !lines.isEmpty() && lines.get(lines.size() - 1) == null;
            }
        });
        return process.exitValue();
    }

    void assertExitsCleanly(final Duration timeout) throws InterruptedException {
        final int code = awaitExit(timeout);
        if (code != 0) {
            throw new AssertionError("frontend exited with " + code + "\n" + transcript());
        }
    }

    /** The last RESULT line of each port. */
    Map<Integer, Result> results() {
        final Map<Integer, Result> out = new HashMap<>();
        for (final String l : linesMatching("^RESULT ")) {
            final Matcher m = RESULT.matcher(l);
            if (m.find()) {
                final int port = Integer.parseInt(m.group(2));
                out.put(port, new Result(port, m.group(3), Long.parseLong(m.group(4)), m.group(5),
                    Long.parseLong(m.group(6)), m.group(7), Long.parseLong(m.group(8)), m.group(9)));
            }
        }
        return out;
    }

    Result result(final int port) {
        final Result r = results().get(port);
        if (r == null) {
            throw new AssertionError("no RESULT line for port " + port + "\n" + transcript());
        }
        return r;
    }

    /** The guest-side MB/s of the last THROUGHPUT line of a port: {tx, rx}. */
    double[] throughput(final int port) {
        final List<String> l = linesMatching("^THROUGHPUT run=\\d+ port=" + port + " ");
        if (l.isEmpty()) {
            return new double[] {0, 0};
        }
        final Matcher m = Pattern.compile("tx_mbps=([0-9.]+) rx_mbps=([0-9.]+)").matcher(l.get(l.size() - 1));
        return m.find() ? new double[] {Double.parseDouble(m.group(1)), Double.parseDouble(m.group(2))} : new double[] {0, 0};
    }

    boolean isAlive() {
        return process.isAlive();
    }

    private String exitCodeText() {
        return process.isAlive() ? "still running" : String.valueOf(process.exitValue());
    }

    /** stdout and stderr so far, for failure messages. */
    String transcript() {
        final StringBuilder b = new StringBuilder("--- frontend stdout ---\n");
        synchronized (lines) {
            for (final String l : lines) {
                if (l != null) {
                    b.append(l).append('\n');
                }
            }
        }
        b.append("--- frontend stderr ---\n").append(stderrText());
        return b.toString();
    }

    String stderrText() {
        try {
            return Files.exists(stderr) ? Files.readString(stderr, StandardCharsets.UTF_8) : "";
        } catch (final IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    Optional<Integer> exitCode() {
        return process.isAlive() ? Optional.empty() : Optional.of(process.exitValue());
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(5, TimeUnit.SECONDS);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
