package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.DirectInput;

/**
 * A port's host input, towards the guest. The chardev's event loop puts what it reads into the host-to-guest ring;
 * the device worker fills the guest's receive buffers from it. A full ring stops the chardev's reads (what did not
 * fit waits here, in order), and the worker's reads let them go on: back-pressure, never a drop.
 *
 * <p><b>Direct input.</b> A plain connected socket lends its input to the worker ({@link Chardev#openDirectInput()}):
 * the worker reads the socket itself, straight into the guest's receive buffers, when its own epoll says the socket
 * is readable, and the event loop does not read it meanwhile. The ring still carries what the chardev read before
 * the loan (the worker takes the ring first) and everything after it. The loan is handed over by messages, and
 * neither side waits for the other: the event loop stops watching the socket, offers the input and wakes the
 * worker; the worker gives it back when its own read sees the end of the stream or a reset (the event loop then
 * reads that end and closes), or when asked (a socket error, the connection closes, a chardev-change, the port
 * goes), by posting to the event loop. The input is lent only while the worker serves the port's receive queue:
 * when the queue stops (a device reset, a frontend that goes) the worker gives it back before it stops, so the
 * event loop watches the peer between two frontends; the next start asks for it again.
 * {@code -Dvsb.directInput=false} turns it off.
 *
 * <p>Methods say which thread runs them: "worker" ones are asserted off the chardev's event loop.
 */
final class HostInput {

    private static final Logger LOG = Logger.getLogger(HostInput.class.getName());
    private static final boolean DIRECT_INPUT_ENABLED = !"false".equals(System.getProperty("vsb.directInput"));

    private final PortLink link;
    private final StreamRing ring;
    private final Runnable refillTask = this::refill;
    private final AtomicBoolean refillScheduled = new AtomicBoolean();
    /** Set by the event loop when host input is waiting for room in the ring. */
    private volatile boolean blocked;
    /** Event loop only: host input that did not fit in the ring yet. */
    private ByteBuf pending;

    /** Direct input, event loops: lent and not yet back, and by which chardev. */
    private volatile boolean inputOut;
    private Chardev inputOwner;
    /** Direct input handed from the event loop to the worker. */
    private final AtomicReference<DirectInput> inputOffer = new AtomicReference<>();
    /** Set by the event loop: the worker gives the input back. */
    private volatile boolean inputRevoke;
    /**
     * Written by the worker: no worker serves the port's receive queue (before its start, after its stop), so the
     * input is not lent: nobody would watch a lent socket, and a peer that leaves would go unseen.
     */
    private volatile boolean unserved = true;
    /** Worker only: the input it reads, and whether the socket may have bytes (else its watch is armed). */
    private DirectInput input;
    private boolean inputReadable;
    /** Written by the worker only; read by QMP. */
    private volatile long directInputBytes;

    HostInput(final PortLink link, final int capacity) {
        this.link = link;
        this.ring = new StreamRing(capacity);
    }

    int capacity() {
        return ring.capacity();
    }

    /** True while host input waits for room (a chardev attached now starts with its reads paused). */
    boolean blocked() {
        return blocked;
    }

    long directInputBytes() {
        return directInputBytes;
    }

    // ------------------------------------------------------------------ worker

    /** Worker: fill a guest receive buffer; see {@link org.vsbridge.console.PortChannel#readFromHost}. */
    int read(final long address, final int length) {
        assert link.offLoop() : "port " + link.nr() + ": guest input read on the chardev's event loop";
        final int n = readRing(address, length);
        if (n > 0 || input == null || !inputReadable) {
            return n;
        }
        final DirectInput in = input;
        if (!in.beginRead()) {
            giveBack(); // the chardev asked for it back (it reads the socket from now on)
            return 0;
        }
        int r;
        boolean giveBack = false;
        try {
            if (!ring.isEmpty()) {
                // The chardev read (and handed over) bytes since the ring was looked at: they are older.
                return readRing(address, length);
            }
            if (in.reclaimRequested()) {
                // The chardev read during the loan: what is still in the socket comes after that, through it.
                giveBack = true;
                return 0;
            }
            r = in.read(address, length);
        } catch (final IOException e) {
            LOG.log(Level.FINE, () -> "port " + link.nr() + ": direct read failed: " + e.getMessage());
            r = -1;
        } finally {
            in.endRead();
            if (giveBack) {
                giveBack();
            }
        }
        if (r > 0) {
            directInputBytes += r;
            return r;
        }
        if (r == 0) {
            inputReadable = false;
            watchInput();
        } else {
            giveBack(); // end of stream or reset: the chardev reads it again and sees the peer go
        }
        return 0;
    }

    private int readRing(final long address, final int length) {
        final int n = ring.read(address, length); // ends with a full fence when it took bytes
        // Only once the ring has room for whole messages again: a guest buffer that takes part of a message frees
        // nothing yet, and a refill for every one of them would cost the event loop a task and the worker a wake-up.
        if (n > 0 && blocked && ring.hasRoom() && !refillScheduled.getAndSet(true)) {
            link.chardev().eventLoop().execute(refillTask);
        }
        return n;
    }

    /** Worker: see {@link org.vsbridge.console.PortChannel#hasDataFromHost}. */
    boolean hasData() {
        if (input != null ? inputRevoke || input.reclaimRequested() : inputOffer.get() != null) {
            serviceInput();
        }
        return !ring.isEmpty() || (input != null && inputReadable);
    }

    /** Worker: take an offered input; give it back when the event loop or the chardev asks. */
    private void serviceInput() {
        if (input == null) {
            input = inputOffer.getAndSet(null);
            inputReadable = input != null;
            if (input != null) {
                watchInput(); // a peer that leaves while the guest takes nothing is seen through the watch
            }
        }
        if (input != null && (inputRevoke || input.reclaimRequested())) {
            giveBack();
        }
    }

    /**
     * Worker: the lent socket is readable (its epoll watch fired): bytes, the end of the stream or a reset. A peer
     * that left with nothing queued gets the input back to the chardev at once, whether the guest reads or not.
     */
    void inputReady() {
        if (input != null) {
            inputReadable = true;
            if (input.peerGone()) {
                giveBack();
            }
        }
    }

    /** Worker: the device stops; give the input back. */
    void release() {
        unserved = true;
        serviceInput();
        if (input != null) {
            giveBack();
        }
    }

    /**
     * Worker: the port's receive queue started (ask the event loop for the input) or stopped (give it back now,
     * before the worker may stop: an offer not yet taken is taken and given back too).
     */
    void served(final boolean served) {
        if (!served) {
            release();
            return;
        }
        if (unserved) {
            unserved = false;
            final Chardev c = link.chardev();
            if (c != null) {
                c.eventLoop().execute(this::lend);
            }
        }
    }

    /** Worker: watch the input for readability; without a watch it goes back to the chardev. */
    private void watchInput() {
        if (!link.device().watchHostInput(link.nr(), input.fd())) {
            giveBack();
        }
    }

    /** Worker: stop reading the socket and hand the connection's input back to the chardev that lent it. */
    private void giveBack() {
        assert link.offLoop() : "port " + link.nr() + ": direct input given back on the chardev's event loop";
        final DirectInput in = input;
        input = null;
        inputReadable = false;
        link.device().unwatchHostFd(in.fd());
        in.giveBack();
        final Chardev owner = inputOwner; // written before the offer was published
        owner.eventLoop().execute(() -> {
            owner.directInputReturned(in);
            final Chardev now = link.chardev();
            now.eventLoop().execute(() -> {
                inputOut = false;
                lend();
            });
        });
    }

    // ------------------------------------------------------------------ event loop

    /** Event loop: lend the connection's input to the worker when it is a plain socket and nothing is pending. */
    void lend() {
        final Chardev c = link.chardev();
        if (!DIRECT_INPUT_ENABLED || inputOut || unserved || link.detached() || pending != null || c == null
            || !link.directKind() || !c.eventLoop().inEventLoop() || !c.isOpen()) {
            return;
        }
        final DirectInput in = c.openDirectInput();
        if (in == null) {
            return;
        }
        inputOut = true;
        inputOwner = c;
        inputRevoke = false;
        inputOffer.set(in);
        if (unserved && inputOffer.compareAndSet(in, null)) {
            // The queue stopped meanwhile and the worker did not take the offer: it never will, take it back.
            in.giveBack();
            c.directInputReturned(in);
            inputOut = false;
            return;
        }
        link.device().hostDataAvailable(link.nr()); // the worker takes it and reads what is already waiting
    }

    /** Event loop: ask the worker for the input back (it answers through {@link #giveBack}). */
    void revoke() {
        if (inputOut) {
            inputRevoke = true;
            link.device().hostDataAvailable(link.nr());
        }
    }

    /** Event loop: the chardev read {@code data}; see {@link org.vsbridge.chardev.ChardevFrontend#received}. */
    void received(final ByteBuf data) {
        if (pending != null) {
            // Input arrived after we paused reads (already in flight): keep order behind the pending part.
            pending = appendPending(pending, data);
            return;
        }
        ring.write(data);
        if (data.isReadable()) {
            pending = data;
            block();
        } else {
            data.release();
        }
        link.device().hostDataAvailable(link.nr());
    }

    private void block() {
        blocked = true;
        link.chardev().setReadPaused(true);
        // The worker may have emptied the ring before it could see the flag: look once more.
        refill();
    }

    private void refill() {
        refillScheduled.set(false);
        final ByteBuf p = pending;
        if (p == null) {
            return;
        }
        final int n = ring.write(p);
        if (!p.isReadable()) {
            p.release();
            pending = null;
            blocked = false;
            link.chardev().setReadPaused(false);
            lend();
        }
        if (n > 0) {
            link.device().hostDataAvailable(link.nr());
        }
    }

    private static ByteBuf appendPending(final ByteBuf pending, final ByteBuf more) {
        final ByteBuf merged = ByteBufAllocator.DEFAULT.directBuffer(pending.readableBytes() + more.readableBytes());
        merged.writeBytes(pending).writeBytes(more);
        pending.release();
        more.release();
        return merged;
    }

    /** Event loop, at unbind: drop what waits for room (the port goes). */
    void releasePending() {
        if (pending != null) {
            final int n = pending.readableBytes();
            LOG.fine(() -> "port " + link.nr() + ": " + n + " bytes of host input dropped at detach");
            pending.release();
            pending = null;
        }
    }
}
