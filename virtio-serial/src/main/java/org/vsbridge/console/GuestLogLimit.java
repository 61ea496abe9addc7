package org.vsbridge.console;

import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A rate limit for log lines a guest can trigger at will (control messages, PORT_OPEN toggles): at most
 * {@link #BURST} lines per {@link #WINDOW_NANOS} per limit, then one line that says how many were suppressed.
 * A hostile guest must not be able to fill the host's journal. Worker thread only, no allocation when
 * suppressing.
 */
final class GuestLogLimit {

    static final int BURST = 10;
    static final long WINDOW_NANOS = 10_000_000_000L;

    private final Logger log;
    private final long windowNanos;
    private long windowStart = Long.MIN_VALUE;
    private int lines;
    private long suppressed;

    GuestLogLimit(final Logger log) {
        this(log, WINDOW_NANOS);
    }

    GuestLogLimit(final Logger log, final long windowNanos) {
        this.log = log;
        this.windowNanos = windowNanos;
    }

    void log(final Level level, final Supplier<String> message) {
        final long now = System.nanoTime();
        if (windowStart == Long.MIN_VALUE || now - windowStart >= windowNanos) {
            windowStart = now;
            lines = 0;
        }
        if (lines >= BURST) {
            suppressed++;
            return;
        }
        lines++;
        if (suppressed > 0) {
            final long n = suppressed;
            suppressed = 0;
            log.log(level, () -> message.get() + " (" + n + " similar guest-triggered lines suppressed)");
        } else {
            log.log(level, message);
        }
    }

    /** Lines suppressed since the last line that went out. */
    long suppressed() {
        return suppressed;
    }
}
