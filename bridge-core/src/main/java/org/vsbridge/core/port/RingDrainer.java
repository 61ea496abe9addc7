package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.DirectOutput;

/**
 * The chardev's event loop side of a port's guest output: drains the guest-to-host ring into the chardev, gathering
 * consecutive messages into one write of up to 64 KiB, for as long as it holds {@code LOOP} ({@link OutputOwner}).
 * Once the ring is empty and the socket holds nothing of ours, it hands the output back to the worker (direct output
 * resumes). It also opens and closes the direct socket when the chardev's connection changes.
 *
 * <p>Every method here runs on the bound chardev's event loop (asserted), except {@link #schedule()}, which posts
 * to it.
 */
final class RingDrainer {

    /** Largest buffer handed to the chardev in one write. */
    private static final int MAX_WRITE = 64 * 1024;
    private static final boolean DIRECT_ENABLED = PortLink.DIRECT_ENABLED;

    private final PortLink link;
    private final OutputOwner out;
    private final StreamRing ring;
    private final Runnable drainTask = this::drain;
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    /** A wake-up is asked of the chardev for when its written bytes are out (exact delivery behind them). */
    private final AtomicBoolean flushWatch = new AtomicBoolean();
    private final Runnable flushed = () -> {
        flushWatch.set(false);
        drain();
    };

    /** Event loop only: the chardev said "not writable" and has not said "writable" since. */
    private boolean chardevFull;
    /** Event loop only: completed once the ring is empty (shutdown). */
    private CompletableFuture<Void> drained;

    RingDrainer(final PortLink link, final OutputOwner out) {
        this.link = link;
        this.out = out;
        this.ring = out.ring;
    }

    /** Any thread: run {@link #drain()} on the chardev's loop (once, however often asked before it runs). */
    void schedule() {
        if (!drainScheduled.getAndSet(true)) {
            link.chardev().eventLoop().execute(drainTask);
        }
    }

    /** Event loop: the chardev takes bytes again. */
    void writable() {
        chardevFull = false;
        drain();
    }

    /** Event loop of a chardev just attached (chardev-change): forget the previous one's back-pressure. */
    void attached() {
        chardevFull = false;
    }

    /** Event loop: drain what the ring holds into the chardev; hand the output to the worker when done. */
    void drain() {
        final Chardev c = link.chardev();
        if (c == null) {
            drainScheduled.set(false);
            return;
        }
        if (!c.eventLoop().inEventLoop()) {
            // Queued on the loop of the chardev this port had before a chardev-change: one consumer at a time.
            c.eventLoop().execute(drainTask);
            return;
        }
        drainScheduled.set(false);
        boolean freed = false;
        while (true) {
            final int state = out.state();
            if (state == OutputOwner.WRITING) {
                break; // the worker's flush hands the output over (and schedules us) if it left bytes
            }
            if (state == OutputOwner.IDLE && (ring.isEmpty() || !out.loopRetake())) {
                break;
            }
            while (!chardevFull) {
                final int used = ring.used();
                if (used == 0) {
                    break;
                }
                final ByteBuf buf = ByteBufAllocator.DEFAULT.directBuffer(Math.min(used, MAX_WRITE), MAX_WRITE);
                if (ring.read(buf, MAX_WRITE) == 0) {
                    buf.release();
                    break; // a message claimed but not yet committed: the worker's flush schedules us again
                }
                freed = true;
                if (!c.write(buf)) {
                    chardevFull = true;
                }
            }
            // Direct output resumes only when the socket has nothing of ours queued (else the worker's bytes would
            // overtake it); otherwise the next drain looks again.
            if (chardevFull || !ring.isEmpty() || out.direct == null || out.directFailed || !c.outputIdle()) {
                if (out.exact && out.blocked && out.direct != null && !out.directFailed && !chardevFull
                    && ring.isEmpty() && !flushWatch.getAndSet(true)) {
                    // A worker waits for the socket (exact delivery) behind bytes Netty still holds: the chardev
                    // says when they are out.
                    c.whenOutputFlushed(flushed);
                }
                break;
            }
            out.loopRelease();
            if (ring.isEmpty()) {
                break;
            }
            // The worker added bytes before it saw IDLE: take the output back for them.
        }
        // Not only "freed": the worker may have found the ring full just before this loop emptied it, and set the
        // flag after; its flush then schedules this drain, which must wake it although it freed nothing.
        // An exact-delivery worker waits for the output itself, not for ring room: wake it once the output is free.
        final boolean waitsForOutput = out.exact && out.directKind && !out.directFailed
            && out.state() == OutputOwner.LOOP;
        if (out.blocked && !waitsForOutput && (freed || ring.hasRoom())) {
            out.blocked = false;
            link.device().hostSpaceAvailable(link.nr());
        }
        if (drained != null && ring.isEmpty()) {
            drained.complete(null);
        }
    }

    /**
     * Event loop: take the output, close the old direct socket and open one for the chardev's current connection,
     * if it offers one. While a worker batch holds the output, this runs again when the batch ends.
     */
    void reconcileDirect() {
        if (!DIRECT_ENABLED) {
            return;
        }
        final EventLoop loop = link.chardev().eventLoop();
        if (!loop.inEventLoop()) {
            loop.execute(this::reconcileDirect); // posted before a chardev-change: run where the port lives now
            return;
        }
        if (!out.acquireOrWhenReleased(loop, this::reconcileDirect)) {
            return;
        }
        releaseDirect();
        final Chardev c = link.chardev();
        if (c != null && !link.detached() && c.isOpen()) {
            out.direct = c.openDirectOutput();
        }
        out.directFailed = false;
        drain();
    }

    /**
     * Event loop {@code loop}, at detach: no more direct output to this chardev; {@code then} runs on {@code loop}
     * once the socket is closed (at once, or when a running worker batch ends).
     */
    void closeDirect(final EventLoop loop, final Runnable then) {
        assert loop.inEventLoop() : "port " + link.nr() + ": direct output closed off the chardev's loop";
        if (!DIRECT_ENABLED) {
            then.run();
            return;
        }
        if (!out.acquireOrWhenReleased(loop, () -> closeDirect(loop, then))) {
            return;
        }
        releaseDirect();
        then.run();
    }

    /** Event loop, holding LOOP: close the direct socket, if any. */
    private void releaseDirect() {
        final DirectOutput d = out.direct;
        if (d != null) {
            link.device().unwatchHostFd(d.fd());
            d.close();
            out.direct = null;
            if (out.writableWatch.getAndSet(false)) {
                // A worker waited for this socket: let it look again (it finds the new output state).
                out.blocked = false;
                link.device().hostSpaceAvailable(link.nr());
            }
        }
    }

    /**
     * Shutdown, after the device worker stopped: hand everything the ring holds to the chardev, as fast as the
     * chardev takes it. Completes when the ring is empty.
     */
    CompletableFuture<Void> drainToChardev() {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final Chardev c = link.chardev();
        if (c == null) {
            done.complete(null);
            return done;
        }
        c.eventLoop().execute(() -> {
            drained = done;
            drain();
        });
        return done;
    }
}
