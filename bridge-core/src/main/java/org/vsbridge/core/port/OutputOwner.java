package org.vsbridge.core.port;

import io.netty.channel.EventLoop;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.vsbridge.chardev.DirectOutput;

/**
 * Who writes a port's guest output to its chardev's socket: one atomic state. {@code IDLE}: nobody; the worker's next
 * batch may take it. {@code WRITING}: a worker batch holds it, from its first write to its flush, and writes to the
 * socket itself ({@link DirectWriter}). {@code LOOP}: the chardev's event loop holds it and drains the ring through
 * the chardev ({@link RingDrainer}). Bytes in the ring are always older than bytes the worker writes directly,
 * because the worker writes directly only when it holds {@code WRITING} and the ring is empty.
 *
 * <p>The event loop never waits for a worker batch: when it needs the output while the worker holds it, it leaves a
 * task here ({@link #acquireOrWhenReleased}) and the worker's {@link #workerRelease} posts that task to the loop.
 * The hand-over is that message; no thread spins or polls for it.
 */
final class OutputOwner {

    static final int IDLE = 0;
    static final int WRITING = 1;
    static final int LOOP = 2;

    private final AtomicInteger state = new AtomicInteger(LOOP);
    /** Tasks of event loops that want the output back from a worker batch; posted by the worker's release. */
    private final AtomicReference<Runnable> whenReleased = new AtomicReference<>();

    /** The guest-to-host ring: producer the worker, consumer the event loop. */
    final StreamRing ring;
    /**
     * The socket for direct output, or null. Changed by the event loop only while it holds LOOP; used by the
     * worker only while it holds WRITING. IDLE implies non-null.
     */
    DirectOutput direct;
    /** Direct output stopped (a write failed as the peer left, or the device cannot watch the socket): stay on the
     *  ring path until the chardev's next connection. */
    volatile boolean directFailed;
    /** The worker could not place everything (ring full, or exact delivery waits for the socket). */
    volatile boolean blocked;
    /** Exact delivery (set by the worker, see {@link PortLink#setExactDelivery}). */
    volatile boolean exact;
    /** The bound chardev's kind offers direct output: exact delivery waits for a connection that does. */
    volatile boolean directKind;
    /** A worker in exact delivery waits for the direct socket to take bytes again. */
    final AtomicBoolean writableWatch = new AtomicBoolean();
    /** Written by the worker only; read by QMP. */
    volatile long directBytes;

    OutputOwner(final int capacity) {
        this.ring = new StreamRing(capacity);
    }

    int state() {
        return state.get();
    }

    /** Worker, first write of a batch: IDLE to WRITING; false when the event loop holds the output. */
    boolean workerTake() {
        return state.get() == IDLE && state.compareAndSet(IDLE, WRITING);
    }

    /**
     * Worker, end of a batch it held WRITING for: IDLE when it left nothing behind, else LOOP (the event loop drains
     * what the ring holds). Then posts the task of an event loop that waited for the output, if any.
     */
    void workerRelease(final boolean toLoop) {
        assert state.get() == WRITING : "release of an output the worker does not hold (" + state.get() + ")";
        state.set(toLoop ? LOOP : IDLE);
        final Runnable waiting = whenReleased.getAndSet(null);
        if (waiting != null) {
            waiting.run();
        }
    }

    /** Event loop: IDLE to LOOP; false while a worker batch holds WRITING. */
    boolean loopAcquire() {
        while (true) {
            final int s = state.get();
            if (s == LOOP) {
                return true;
            }
            if (s == WRITING) {
                return false;
            }
            if (state.compareAndSet(IDLE, LOOP)) {
                return true;
            }
        }
    }

    /**
     * Event loop: take the output now (true), or, while a worker batch holds it, have {@code retry} run on
     * {@code loop} once the batch ends (false). The flag and the state are both volatile, so either this call sees
     * the release or the worker sees the task (both may: {@code retry} must tolerate finding the output taken).
     */
    boolean acquireOrWhenReleased(final EventLoop loop, final Runnable retry) {
        if (loopAcquire()) {
            return true;
        }
        final Runnable post = () -> loop.execute(retry);
        whenReleased.getAndUpdate(before -> before == null ? post : () -> {
            before.run();
            post.run();
        });
        if (loopAcquire()) {
            whenReleased.compareAndSet(post, null);
            return true;
        }
        return false;
    }

    /** Event loop, holding LOOP: let the worker take the output (direct output resumes). */
    void loopRelease() {
        state.set(IDLE);
    }

    /** Event loop, holding or taking back: IDLE to LOOP for bytes the worker added before it saw IDLE. */
    boolean loopRetake() {
        return state.compareAndSet(IDLE, LOOP);
    }
}
