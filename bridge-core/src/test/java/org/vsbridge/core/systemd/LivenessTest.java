package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.Transports;

class LivenessTest {

    @TempDir
    Path dir;

    @Test
    void aStuckOrStoppedEventLoopIsNotAlive() throws InterruptedException {
        final EventLoopGroup group = Transports.newEventLoopGroup(2, "liveness-test");
        final CountDownLatch release = new CountDownLatch(1);
        try {
            assertTrue(Liveness.eventLoopsAlive(group, 30_000));
            // Block one loop in a handler, as a bug would.
            group.next().execute(() -> {
                try {
                    release.await();
                } catch (final InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            assertFalse(Liveness.eventLoopsAlive(group, 100));
            release.countDown();
            assertTrue(Liveness.eventLoopsAlive(group, 30_000));
        } finally {
            release.countDown();
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
        assertFalse(Liveness.eventLoopsAlive(group, 100));
    }

    @Test
    void statusIsSentWhenItChanges() throws IOException {
        final String path = dir.resolve("notify").toString();
        final AtomicReference<String> line = new AtomicReference<>("1 port");
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path);
             StatusReporter reporter = new StatusReporter(notify, line::get, "1 port", Duration.ofMillis(10))) {
            line.set("1 port; frontend connected");
            assertEquals("STATUS=1 port; frontend connected", manager.receive(30_000));
            line.set("1 port; guest opened 1");
            final String next = manager.receive(30_000);
            assertNotNull(next);
            assertEquals("STATUS=1 port; guest opened 1", next);
            assertNotNull(reporter);
        }
    }
}
