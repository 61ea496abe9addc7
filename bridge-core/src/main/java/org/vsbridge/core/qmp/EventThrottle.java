package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * QEMU's event rate limit (monitor.c, {@code monitor_qapi_event_queue}): per key, the first event goes out
 * at once and opens a window; events inside the window replace each other, and the last one is sent when
 * the window closes, which opens a new window. A window that closes with nothing pending ends the limit.
 */
public final class EventThrottle {

    private final QmpServer server;
    private final String event;
    private final long periodNanos;
    private final ScheduledExecutorService timer;
    private final Map<String, Window> windows = new HashMap<>();

    public EventThrottle(final QmpServer server, final String event, final long periodNanos, final ScheduledExecutorService timer) {
        this.server = server;
        this.event = event;
        this.periodNanos = periodNanos;
        this.timer = timer;
    }

    /** Any thread. */
    public synchronized void emit(final String key, final JsonNode data) {
        final Window window = windows.get(key);
        if (window == null) {
            server.emit(event, data);
            openWindow(key);
        } else {
            window.pending = data;
        }
    }

    private void openWindow(final String key) {
        final Window window = new Window();
        windows.put(key, window);
        timer.schedule(() -> closeWindow(key, window), periodNanos, TimeUnit.NANOSECONDS);
    }

    private synchronized void closeWindow(final String key, final Window window) {
        if (windows.get(key) != window) {
            return;
        }
        windows.remove(key);
        if (window.pending != null) {
            server.emit(event, window.pending);
            openWindow(key);
        }
    }

    private static final class Window {
        JsonNode pending;
    }
}
