package org.vsbridge.vhost.testing;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.awaitility.Awaitility;

/**
 * Collects the java.util.logging records of one logger subtree (e.g. {@code org.vsbridge}) while open, so a test
 * can check that a fault was reported with its reason. Close it to detach.
 */
public final class LogCapture extends Handler implements AutoCloseable {

    /** How long the waits here wait: only a guard against a hang, never a measurement. */
    public static final Duration TIMEOUT = Duration.ofSeconds(30);

    private final Logger logger;
    private final List<String> lines = new ArrayList<>();

    private LogCapture(final Logger logger) {
        this.logger = logger;
        setLevel(Level.ALL);
    }

    public static LogCapture of(final String loggerName) {
        final LogCapture c = new LogCapture(Logger.getLogger(loggerName));
        c.logger.addHandler(c);
        return c;
    }

    @Override
    public void publish(final LogRecord record) {
        if (record.getLevel().intValue() < Level.INFO.intValue()) {
            return;
        }
        String msg = record.getMessage();
        final Object[] params = record.getParameters();
        if (params != null) {
            for (int i = 0; i < params.length; i++) {
                msg = msg.replace("{" + i + "}", String.valueOf(params[i]));
            }
        }
        synchronized (lines) {
            lines.add(record.getLevel() + " " + msg);
            lines.notifyAll();
        }
    }

    /** Lines so far (level, space, message). */
    public List<String> lines() {
        synchronized (lines) {
            return new ArrayList<>(lines);
        }
    }

    /** The first line containing every one of {@code needles}, waiting for it (30 s hang guard); fails with all
     *  lines. */
    public String await(final String... needles) throws InterruptedException {
        final long deadline = System.nanoTime() + TIMEOUT.toNanos();
        synchronized (lines) {
            while (true) {
                for (final String l : lines) {
                    boolean all = true;
                    for (final String n : needles) {
                        all &= l.contains(n);
                    }
                    if (all) {
                        return l;
                    }
                }
                final long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("no log line containing " + List.of(needles) + " in:\n"
                        + String.join("\n", lines));
                }
                lines.wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    /** Waits for a condition (30 s hang guard); fails with {@code what}. */
    public static void awaitTrue(final BooleanSupplier condition, final String what) throws InterruptedException {
        Awaitility.await(what).atMost(TIMEOUT).pollInterval(Duration.ofMillis(5)).until(condition::getAsBoolean);
    }

    @Override
    public void flush() {
    }

    @Override
    public void close() {
        logger.removeHandler(this);
    }
}
