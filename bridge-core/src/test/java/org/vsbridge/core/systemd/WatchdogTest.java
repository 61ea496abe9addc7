package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WatchdogTest {

    /** Only a guard against a hang, never a measurement. */
    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    /** Waits until the watchdog has begun check number {@code n}. */
    private static void awaitChecks(final AtomicInteger checks, final int n) {
        await("check " + n).atMost(TIMEOUT).pollInterval(Duration.ofMillis(5)).until(checks::get, c -> c >= n);
    }

    @Test
    void timeoutComesFromWatchdogUsecForThisPid() {
        assertEquals(Duration.ofSeconds(10), Watchdog.timeout(Map.of("WATCHDOG_USEC", "10000000"), 42));
        assertEquals(Duration.ofSeconds(10),
            Watchdog.timeout(Map.of("WATCHDOG_USEC", "10000000", "WATCHDOG_PID", "42"), 42));
        assertNull(Watchdog.timeout(Map.of("WATCHDOG_USEC", "10000000", "WATCHDOG_PID", "43"), 42));
        assertNull(Watchdog.timeout(Map.of(), 42));
        assertThrows(IllegalArgumentException.class, () -> Watchdog.timeout(Map.of("WATCHDOG_USEC", "ten"), 42));
        assertThrows(IllegalArgumentException.class, () -> Watchdog.timeout(Map.of("WATCHDOG_USEC", "0"), 42));
    }

    @Test
    void pingsOnlyWhileAlive() throws IOException {
        final String path = dir.resolve("notify").toString();
        final AtomicBoolean alive = new AtomicBoolean(true);
        final AtomicInteger checks = new AtomicInteger();
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path)) {
            final Watchdog watchdog = new Watchdog(notify, Duration.ofMillis(10), () -> {
                checks.incrementAndGet();
                return alive.get();
            });
            try {
                assertEquals("WATCHDOG=1", manager.receive(30_000));
                assertEquals("WATCHDOG=1", manager.receive(30_000));
                alive.set(false);
                // Once a check has seen "dead", the count of pings must stop moving for further checks. The checks
                // run one after the other on one thread, each followed by its ping or none: once check seen + 2 has
                // begun, check seen + 1 (begun after "dead") is over.
                final int seen = checks.get();
                awaitChecks(checks, seen + 2);
                final long pingsWhenDead = watchdog.pings();
                awaitChecks(checks, checks.get() + 5);
                assertEquals(pingsWhenDead, watchdog.pings());
                alive.set(true);
                final long before = watchdog.pings();
                await("a ping once alive again").atMost(TIMEOUT).pollInterval(Duration.ofMillis(5))
                    .until(watchdog::pings, n -> n > before);
            } finally {
                watchdog.close();
            }
        }
    }

    @Test
    void aThrowingCheckCountsAsDead() {
        final AtomicInteger checks = new AtomicInteger();
        final Watchdog watchdog = new Watchdog(SdNotify.disabled(), Duration.ofMillis(5), () -> {
            checks.incrementAndGet();
            throw new IllegalStateException("event loop gone");
        });
        try {
            awaitChecks(checks, 3);
            assertEquals(0, watchdog.pings());
        } finally {
            watchdog.close();
        }
        assertNotNull(watchdog.period());
    }
}
