package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WatchdogTest {

    @TempDir
    Path dir;

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
    void pingsOnlyWhileAlive() throws IOException, InterruptedException {
        final String path = dir.resolve("notify").toString();
        final AtomicBoolean alive = new AtomicBoolean(true);
        final AtomicInteger checks = new AtomicInteger();
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path)) {
            final Watchdog watchdog = new Watchdog(notify, Duration.ofMillis(10), () -> {
                checks.incrementAndGet();
                return alive.get();
            });
            try {
                assertEquals("WATCHDOG=1", manager.receive(5000));
                assertEquals("WATCHDOG=1", manager.receive(5000));
                alive.set(false);
                // Once a check has seen "dead", the count of pings must stop moving for further checks.
                final int seen = checks.get();
                while (checks.get() < seen + 2) {
                    Thread.sleep(5);
                }
                final long pingsWhenDead = watchdog.pings();
                final int later = checks.get();
                while (checks.get() < later + 5) {
                    Thread.sleep(5);
                }
                assertEquals(pingsWhenDead, watchdog.pings());
                alive.set(true);
                final long before = watchdog.pings();
                while (watchdog.pings() == before) {
                    Thread.sleep(5);
                }
                assertTrue(watchdog.pings() > before);
            } finally {
                watchdog.close();
            }
        }
    }

    @Test
    void aThrowingCheckCountsAsDead() throws InterruptedException {
        final AtomicInteger checks = new AtomicInteger();
        final Watchdog watchdog = new Watchdog(SdNotify.disabled(), Duration.ofMillis(5), () -> {
            checks.incrementAndGet();
            throw new IllegalStateException("event loop gone");
        });
        try {
            while (checks.get() < 3) {
                Thread.sleep(5);
            }
            assertEquals(0, watchdog.pings());
        } finally {
            watchdog.close();
        }
        assertNotNull(watchdog.period());
    }
}
