package org.vsbridge.core.systemd;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps {@code systemctl status} current: polls a status line (ports, guest opens, chardev and frontend
 * connections) every period and sends {@code STATUS=} when it changed. Does nothing when notifications are off.
 */
public final class StatusReporter implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(StatusReporter.class.getName());

    private final SdNotify notify;
    private final Supplier<String> status;
    private final ScheduledExecutorService timer;
    private String last;

    public StatusReporter(final SdNotify notify, final Supplier<String> status, final String initial,
                          final Duration period) {
        this.notify = notify;
        this.status = status;
        this.last = initial;
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            final Thread t = new Thread(r, "vsb-status");
            t.setDaemon(true);
            return t;
        });
        if (notify.enabled()) {
            timer.scheduleWithFixedDelay(this::poll, period.toMillis(), period.toMillis(), TimeUnit.MILLISECONDS);
        }
    }

    private void poll() {
        try {
            final String now = status.get();
            if (!Objects.equals(now, last)) {
                last = now;
                notify.status(now);
            }
        } catch (final RuntimeException e) {
            LOG.log(Level.FINE, "status line failed: " + e, e);
        }
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
