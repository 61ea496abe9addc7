package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** sd_notify datagrams received on a real AF_UNIX datagram socket, as systemd receives them. */
class SdNotifyTest {

    @TempDir
    Path dir;

    @Test
    void statesArriveAsOneDatagramEachOnAPathSocket() throws IOException {
        final String path = dir.resolve("notify").toString();
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path)) {
            assertTrue(notify.enabled());
            assertTrue(notify.ready("2 ports; waiting for the frontend"));
            assertEquals("READY=1\nSTATUS=2 ports; waiting for the frontend", manager.receive(30_000));
            assertTrue(notify.status("frontend connected\nsecond line"));
            assertEquals("STATUS=frontend connected second line", manager.receive(30_000));
            assertTrue(notify.watchdog());
            assertEquals("WATCHDOG=1", manager.receive(30_000));
            assertTrue(notify.stopping(null));
            assertEquals("STOPPING=1", manager.receive(30_000));
        }
    }

    @Test
    void aWatchdogPingToAManagerThatDoesNotReadFailsInsteadOfBlocking() throws IOException {
        final String path = dir.resolve("notify").toString();
        try (NotifyListener manager = new NotifyListener(path); SdNotify notify = SdNotify.to(path)) {
            // The manager never reads: once its queue is full a blocking sendto would wait for ever (and hold the
            // notifier's lock through shutdown). The ping must come back false instead.
            assertTimeoutPreemptively(Duration.ofMinutes(2), () -> {
                int sent = 0;
                while (notify.watchdog()) {
                    sent++;
                    assertTrue(sent < 1_000_000, "the manager's queue never filled");
                }
            });
            assertEquals("WATCHDOG=1", manager.receive(30_000));
        }
    }

    @Test
    void abstractNamesWork() throws IOException {
        final String name = "@vsb-notify-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        try (NotifyListener manager = new NotifyListener(name); SdNotify notify = SdNotify.to(name)) {
            assertTrue(notify.ready(null));
            assertEquals("READY=1", manager.receive(30_000));
        }
    }

    @Test
    void disabledNotifierSendsNothing() {
        final SdNotify notify = SdNotify.disabled();
        assertFalse(notify.enabled());
        assertFalse(notify.ready("x"));
        assertFalse(notify.watchdog());
    }

    @Test
    void aVanishedManagerIsAFailedSendNotACrash() throws IOException {
        final String path = dir.resolve("gone").toString();
        try (SdNotify notify = SdNotify.to(path)) {
            assertFalse(notify.ready(null));
            assertFalse(notify.stopping(null));
        }
    }

    @Test
    void unsupportedAddressesAreRefused() {
        final IOException e = assertThrows(IOException.class, () -> SdNotify.to("vsock:2:1234"));
        assertTrue(e.getMessage().contains("NOTIFY_SOCKET=vsock:2:1234"), e.getMessage());
        assertThrows(IOException.class, () -> SdNotify.to("/" + "x".repeat(200)));
    }
}
