package org.vsbridge.nativetest.soak;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** One vsb-frontend process in --stdin mode: commands in, stdout lines collected, stderr appended to a file. */
final class SoakFrontend implements AutoCloseable {

    record Result(long txBytes, String txSum, long rxBytes, String rxSum) {
    }

    private static final Pattern RESULT = Pattern.compile(
        "^RESULT run=\\d+ port=(\\d+) name=\\S+ tx_bytes=(\\d+) tx_sum=(\\p{XDigit}{16}) rx_bytes=(\\d+) "
            + "rx_sum=(\\p{XDigit}{16})");

    private final Process process;
    private final OutputStream stdin;
    private final List<String> lines = new ArrayList<>();

    SoakFrontend(final Path executable, final List<String> args, final Path stderr) throws IOException {
        final List<String> cmd = new ArrayList<>();
        cmd.add(executable.toString());
        cmd.addAll(args);
        process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.appendTo(stderr.toFile())).start();
        stdin = process.getOutputStream();
        final Thread t = new Thread(this::readStdout, "soak-frontend-stdout");
        t.setDaemon(true);
        t.start();
    }

    private void readStdout() {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
            StandardCharsets.UTF_8))) {
            String l;
            while ((l = r.readLine()) != null) {
                synchronized (lines) {
                    lines.add(l);
                    lines.notifyAll();
                }
            }
        } catch (final IOException e) {
            // process gone
        } finally {
            synchronized (lines) {
                lines.add(null);
                lines.notifyAll();
            }
        }
    }

    void command(final String line) throws IOException {
        stdin.write((line + "\n").getBytes(StandardCharsets.US_ASCII));
        stdin.flush();
    }

    int mark() {
        synchronized (lines) {
            return lines.size();
        }
    }

    /** The first line at or after {@code from} matching {@code regex}; throws with the reason on end or timeout. */
    String await(final String regex, final int from, final long timeoutMs) throws IOException, InterruptedException {
        final Pattern p = Pattern.compile(regex);
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        synchronized (lines) {
            int i = from;
            while (true) {
                while (i < lines.size()) {
                    final String l = lines.get(i++);
                    if (l == null) {
                        throw new IOException("frontend ended before /" + regex + "/ (exit "
                            + (process.isAlive() ? "?" : process.exitValue()) + ")");
                    }
                    if (p.matcher(l).find()) {
                        return l;
                    }
                }
                final long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new IOException("no frontend line /" + regex + "/ within " + timeoutMs + " ms");
                }
                lines.wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    /** The last RESULT of each port printed at or after {@code from}. */
    Map<Integer, Result> results(final int from) {
        final Map<Integer, Result> out = new HashMap<>();
        synchronized (lines) {
            for (int i = from; i < lines.size(); i++) {
                final String l = lines.get(i);
                final Matcher m = l == null ? null : RESULT.matcher(l);
                if (m != null && m.find()) {
                    out.put(Integer.parseInt(m.group(1)), new Result(Long.parseLong(m.group(2)), m.group(3),
                        Long.parseLong(m.group(4)), m.group(5)));
                }
            }
        }
        return out;
    }

    /** Exit code, or -1 if it did not exit within the timeout (then it is killed). */
    int awaitExit(final long timeoutMs) throws InterruptedException {
        if (!process.waitFor(timeoutMs, TimeUnit.MILLISECONDS)) {
            close();
            return -1;
        }
        synchronized (lines) {
            final long deadline = System.nanoTime() + 5_000_000_000L;
            while ((lines.isEmpty() || lines.get(lines.size() - 1) != null) && System.nanoTime() < deadline) {
                lines.wait(100);
            }
        }
        return process.exitValue();
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
