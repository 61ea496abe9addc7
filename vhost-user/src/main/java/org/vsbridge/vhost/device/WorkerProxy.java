package org.vsbridge.vhost.device;

import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.NoOpIdleStrategy;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.queue.QueueCounters;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.ToLongFunction;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The control side's handle on a device worker (Aeron's proxy pattern): every method offers a command into the
 * worker's queue, wakes it and waits for the answer, so the control thread never touches a ring. Runs the
 * worker on its own thread ({@code vsb-worker-<name>}) for the lifetime of the server.
 *
 * <p>Failures come back as {@link IOException} with the reason; the caller turns them into an error reply.
 */
public final class WorkerProxy implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(WorkerProxy.class.getName());

    /** How long the control thread waits for the worker. The worker answers within one loop iteration; this is
     *  a safety net against a device that blocks its thread, not a protocol timeout. */
    public static final long COMMAND_TIMEOUT_MS = 10_000;

    private final DeviceWorker worker;
    private final AgentRunner runner;

    public WorkerProxy(final String name, final VirtioDevice device) throws IOException {
        this.worker = new DeviceWorker(name, device);
        // The agent sleeps in epoll_wait itself, so the runner needs no idle strategy of its own.
        this.runner = new AgentRunner(NoOpIdleStrategy.INSTANCE,
            t -> LOG.log(Level.SEVERE, worker.roleName() + ": unexpected error", t), null, worker);
        AgentRunner.startOnThread(runner);
    }

    public QueueCounters counters() {
        return worker.counters();
    }

    private long call(final String what, final ToLongFunction<DeviceWorker> op) throws IOException {
        try {
            return worker.submit(op).get(COMMAND_TIMEOUT_MS, TimeUnit.MILLISECONDS);
        } catch (final ExecutionException e) {
            final Throwable cause = e.getCause() instanceof UncheckedIOException u ? u.getCause() : e.getCause();
            throw new IOException(what + ": " + cause.getMessage(), cause);
        } catch (final TimeoutException e) {
            throw new IOException(what + ": worker " + worker.roleName() + " did not answer within "
                + COMMAND_TIMEOUT_MS + " ms");
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(what + ": interrupted");
        }
    }

    /** Control thread: where {@link org.vsbridge.vhost.device.DeviceContext#configChanged()} goes (null = no
     *  backend request channel). Takes effect at once; no worker round trip. */
    public void setConfigNotifier(final java.util.function.BooleanSupplier notifier) {
        worker.setConfigNotifier(notifier);
    }

    /** SET_FEATURES: acked virtio bits including bit 30 if acked. */
    public void setFeatures(final long acked) throws IOException {
        call("SET_FEATURES", w -> {
            w.setFeatures(acked);
            return 0;
        });
    }

    /** New memory table; once this returns the worker no longer refers to the previous table. */
    public void setMemoryTable(final GuestMemory table) throws IOException {
        call("memory table", w -> {
            w.setMemoryTable(table);
            return 0;
        });
    }

    /** SET_INFLIGHT_FD: the queues keep their in-flight state in {@code region} (null: none). */
    public void setInflight(final org.vsbridge.vhost.queue.InflightRegion region) throws IOException {
        call("SET_INFLIGHT_FD", w -> {
            w.setInflight(region);
            return 0;
        });
    }

    public void setVringNum(final int index, final int num) throws IOException {
        call("SET_VRING_NUM", w -> {
            w.q(index).setSize(num);
            return 0;
        });
    }

    public void setVringAddr(final int index, final long descUva, final long availUva, final long usedUva)
        throws IOException {
        call("SET_VRING_ADDR", w -> {
            w.q(index).setAddresses(descUva, availUva, usedUva);
            return 0;
        });
    }

    /** SET_VRING_BASE: {@code base} in the layout's encoding (split: next avail; packed: see PackedVirtqueue). */
    public void setVringBase(final int index, final int base) throws IOException {
        call("SET_VRING_BASE", w -> {
            w.q(index).setBase(base);
            return 0;
        });
    }

    /** GET_VRING_BASE: stops the ring (drops kick and call fds), keeps its state, returns next_avail (packed: both
     *  positions with their wrap counters, as SET_VRING_BASE takes them). */
    public int getVringBase(final int index) throws IOException {
        return (int) call("GET_VRING_BASE", w -> w.getBase(index));
    }

    /** SET_VRING_KICK: the worker takes ownership of {@code fd} (-1 = NOFD: poll the ring). Starts the ring. */
    public void setVringKick(final int index, final int fd) throws IOException {
        call("SET_VRING_KICK", w -> {
            try {
                w.setKick(index, fd);
            } catch (final IOException e) {
                throw new UncheckedIOException(e);
            }
            return 0;
        });
    }

    /** SET_VRING_CALL: the worker takes ownership of {@code fd} (-1 = none) and closes the previous one. */
    public void setVringCall(final int index, final int fd) throws IOException {
        call("SET_VRING_CALL", w -> {
            Sys.closeQuietly(w.q(index).replaceCallFd(fd));
            return 0;
        });
    }

    public void setVringErr(final int index, final int fd) throws IOException {
        call("SET_VRING_ERR", w -> {
            Sys.closeQuietly(w.q(index).replaceErrFd(fd));
            return 0;
        });
    }

    public void setVringEnable(final int index, final boolean enable) throws IOException {
        call("SET_VRING_ENABLE", w -> {
            w.q(index).setEnabled(enable);
            return 0;
        });
    }

    /** Stop all queues, forget ring state, reset the device. {@code dropMemory}: also forget the memory table
     *  (disconnect); the caller unmaps it after this returns. */
    public void reset(final boolean dropMemory) throws IOException {
        call("reset", w -> {
            w.resetAll(dropMemory);
            return 0;
        });
    }

    public void statusChanged(final int status) throws IOException {
        call("SET_STATUS", w -> {
            w.statusChanged(status);
            return 0;
        });
    }

    /** Test and diagnostics: a one-line description of queue {@code index} as the worker sees it. */
    public String describeQueue(final int index) throws IOException {
        final String[] out = new String[1];
        call("describe", w -> {
            out[0] = w.q(index).toString();
            return 0;
        });
        return out[0];
    }

    /** Test and diagnostics: is queue {@code index} broken. */
    public boolean isBroken(final int index) throws IOException {
        return call("isBroken", w -> w.q(index).isBroken() ? 1 : 0) != 0;
    }

    @Override
    public void close() {
        worker.requestStop();
        runner.close();
    }
}
