package org.vsbridge.core.systemd;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The systemd software watchdog ({@code WatchdogSec=}): while {@code WATCHDOG_USEC} is set for this process
 * ({@code WATCHDOG_PID} equal to our pid or unset) it sends {@code WATCHDOG=1} every half interval, but only
 * while the liveness check passes. A process whose device worker or event loops are stuck therefore stops
 * pinging and the service manager restarts it, instead of a timer thread keeping a dead process "alive".
 */
public final class Watchdog implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Watchdog.class.getName());
    public static final String WATCHDOG_USEC = "WATCHDOG_USEC";
    public static final String WATCHDOG_PID = "WATCHDOG_PID";

    private final SdNotify notify;
    private final Duration period;
    private final BooleanSupplier alive;
    private final CountDownLatch stop = new CountDownLatch(1);
    private final AtomicLong pings = new AtomicLong();
    private final Thread thread;

    /** Pings {@code notify} every {@code period} while {@code alive} says so; the thread starts at once. */
    public Watchdog(final SdNotify notify, final Duration period, final BooleanSupplier alive) {
        if (period.isZero() || period.isNegative()) {
            throw new IllegalArgumentException("watchdog period must be positive: " + period);
        }
        this.notify = notify;
        this.period = period;
        this.alive = alive;
        this.thread = new Thread(this::run, "vsb-watchdog");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * The watchdog the environment asks for, or null when there is none (no {@code WATCHDOG_USEC}, or it is for
     * another pid). A malformed value is logged and ignored: the service then runs without a watchdog rather
     * than not at all.
     */
    public static Watchdog fromEnvironment(final SdNotify notify, final BooleanSupplier alive) {
        final Duration timeout;
        try {
            timeout = timeout(System.getenv(), ProcessHandle.current().pid());
        } catch (final IllegalArgumentException e) {
            LOG.warning(e.getMessage() + "; running without the watchdog");
            return null;
        }
        if (timeout == null) {
            return null;
        }
        LOG.info("systemd watchdog: timeout " + timeout.toMillis() + " ms, pinging every " + timeout.toMillis() / 2
            + " ms while the worker and event loops are alive");
        return new Watchdog(notify, timeout.dividedBy(2), alive);
    }

    /** The watchdog timeout {@code env} gives process {@code pid}, or null for none. */
    static Duration timeout(final Map<String, String> env, final long pid) {
        final String usec = env.get(WATCHDOG_USEC);
        if (usec == null || usec.isEmpty()) {
            return null;
        }
        final String watchdogPid = env.get(WATCHDOG_PID);
        if (watchdogPid != null && !watchdogPid.isEmpty()) {
            final long p;
            try {
                p = Long.parseLong(watchdogPid);
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException(WATCHDOG_PID + "=" + watchdogPid + " is not a pid");
            }
            if (p != pid) {
                return null;
            }
        }
        final long micros;
        try {
            micros = Long.parseLong(usec);
        } catch (final NumberFormatException e) {
            throw new IllegalArgumentException(WATCHDOG_USEC + "=" + usec + " is not a number of microseconds");
        }
        if (micros <= 0) {
            throw new IllegalArgumentException(WATCHDOG_USEC + "=" + usec + " must be positive");
        }
        // Below 2 us half an interval rounds to nothing; systemd never sets such a value.
        return Duration.ofNanos(TimeUnit.MICROSECONDS.toNanos(Math.max(micros, 2)));
    }

    public Duration period() {
        return period;
    }

    /** {@code WATCHDOG=1} messages sent so far. */
    public long pings() {
        return pings.get();
    }

    private void run() {
        boolean wasAlive = true;
        do {
            boolean ok;
            try {
                ok = alive.getAsBoolean();
            } catch (final RuntimeException e) {
                if (wasAlive) {
                    LOG.log(Level.WARNING, "watchdog liveness check failed: " + e, e);
                }
                ok = false;
            }
            if (ok) {
                if (!wasAlive) {
                    LOG.warning("watchdog: liveness check passes again; pinging resumed");
                }
                if (notify.watchdog()) {
                    pings.incrementAndGet();
                }
            } else if (wasAlive) {
                LOG.severe("watchdog: the device worker or an event loop is not alive; no longer pinging "
                    + "systemd (it will restart the service when WatchdogSec= runs out)");
            }
            wasAlive = ok;
        } while (!awaitStop());
    }

    private boolean awaitStop() {
        try {
            return stop.await(period.toNanos(), TimeUnit.NANOSECONDS);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        }
    }

    @Override
    public void close() {
        stop.countDown();
        try {
            thread.join(TimeUnit.SECONDS.toMillis(5));
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
