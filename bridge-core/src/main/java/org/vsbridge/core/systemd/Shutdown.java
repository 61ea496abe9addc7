package org.vsbridge.core.systemd;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import sun.misc.Signal;
import org.vsbridge.libc.Proc;

/**
 * The service's way out. SIGTERM (and SIGINT) ask the main thread to stop instead of running the JVM's default
 * handler, which would exit with status 143 that systemd counts as a failure; SIGHUP reopens the log file
 * instead of ending the process (the JVM's default for HUP).
 *
 * <p>{@link #run(Runnable)} then sends {@code STOPPING=1} and runs the close action (stop the rings, flush
 * what they hold to the chardevs, close the sockets) on its own thread with a time bound: if closing hangs,
 * the process halts with status 1 after the bound rather than waiting for systemd's SIGKILL. It runs once;
 * later calls (a shutdown hook after {@code System.exit}) wait for the first to finish.
 */
public final class Shutdown {

    private static final Logger LOG = Logger.getLogger(Shutdown.class.getName());
    /** Below the unit's TimeoutStopSec=20, above the engine's own worst case (a control command times out
     *  after 10 s). */
    public static final Duration DEFAULT_BOUND = Duration.ofSeconds(15);

    private final SdNotify notify;
    private final Duration bound;
    private final AtomicBoolean started = new AtomicBoolean();
    private final CountDownLatch done = new CountDownLatch(1);

    public Shutdown(final SdNotify notify, final Duration bound) {
        this.notify = notify;
        this.bound = bound;
    }

    /**
     * Installs the handlers: TERM and INT run {@code requestStop} (it should only wake the main thread), HUP runs
     * {@code hangup} (e.g. {@link Logs#reopen()}). Handlers run on a JVM signal thread.
     */
    public static void installSignalHandlers(final Runnable requestStop, final Runnable hangup) {
        final AtomicBoolean requested = new AtomicBoolean();
        final sun.misc.SignalHandler stop = sig -> {
            if (requested.compareAndSet(false, true)) {
                LOG.info("SIG" + sig.getName() + ": shutting down");
                requestStop.run();
            } else {
                LOG.info("SIG" + sig.getName() + ": shutdown already in progress");
            }
        };
        // A parent that ignores these (nohup) passes SIG_IGN on, and the JVM would then install nothing: the stop
        // and the log reopen would be lost without a word. QEMU takes them over whatever it inherited; so do we.
        for (final String name : new String[] {"TERM", "INT", "HUP"}) {
            final Signal signal = new Signal(name);
            if (Proc.unignore(signal.getNumber())) {
                LOG.info("SIG" + name + " was ignored by the parent process; the bridge handles it");
            }
        }
        Signal.handle(new Signal("TERM"), stop);
        Signal.handle(new Signal("INT"), stop);
        Signal.handle(new Signal("HUP"), sig -> hangup.run());
    }

    /**
     * Sends {@code STOPPING=1} and runs {@code close} within the bound. Returns normally when it finished (the
     * caller then exits 0); halts the process with status 1 when it did not.
     */
    public void run(final Runnable close) {
        if (!started.compareAndSet(false, true)) {
            awaitDone();
            return;
        }
        notify.stopping("stopping: flushing ports, closing sockets");
        final Thread closer = new Thread(() -> {
            try {
                close.run();
            } catch (final RuntimeException e) {
                LOG.log(Level.SEVERE, "shutdown: closing failed: " + e, e);
            } finally {
                done.countDown();
            }
        }, "vsb-close");
        closer.setDaemon(true);
        closer.start();
        final boolean finished;
        try {
            finished = done.await(bound.toNanos(), TimeUnit.NANOSECONDS);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (!finished) {
            LOG.severe("shutdown did not finish within " + bound.toMillis() + " ms; exiting now (bytes still in "
                + "the port rings may be lost)");
            // halt: System.exit would wait for shutdown hooks that may be the very thing that hangs.
            Runtime.getRuntime().halt(1);
        }
        LOG.info("shutdown complete");
    }

    private void awaitDone() {
        try {
            if (!done.await(bound.toNanos(), TimeUnit.NANOSECONDS)) {
                Runtime.getRuntime().halt(1);
            }
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
