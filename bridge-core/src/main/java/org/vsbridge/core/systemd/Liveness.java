package org.vsbridge.core.systemd;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Liveness probes for the watchdog: a thread is alive when it does work it is given, not merely when it exists.
 * A loop stuck in a handler or dead after an error fails the probe within the timeout.
 */
public final class Liveness {

    private Liveness() {
    }

    /** True when every event loop of {@code group} runs a no-op task within {@code timeoutMs}. */
    public static boolean eventLoopsAlive(final EventLoopGroup group, final long timeoutMs) {
        if (group.isShuttingDown()) {
            return false;
        }
        for (final EventExecutor loop : group) {
            final Future<?> probe;
            try {
                probe = loop.submit(() -> { });
            } catch (final RuntimeException e) {
                return false; // rejected: the loop is shutting down
            }
            try {
                if (!probe.await(timeoutMs, TimeUnit.MILLISECONDS) || !probe.isSuccess()) {
                    probe.cancel(false);
                    return false;
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }
}
