package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevFrontend;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortChannel;
import org.vsbridge.console.PortSpec;

/**
 * Where one port meets its chardev: two {@link ByteRing}s, one per direction. The device worker is the
 * producer of guest-to-host bytes and the consumer of host-to-guest bytes; the chardev's event loop is the
 * other side of both. Wake-ups are coalesced with one flag per direction, and a full ring is
 * backpressure in both directions, never a drop.
 */
public final class PortLink implements PortChannel, ChardevFrontend {

    private static final Logger LOG = Logger.getLogger(PortLink.class.getName());
    /** Largest buffer handed to the chardev in one write. */
    private static final int MAX_WRITE = 64 * 1024;

    private final PortSpec port;
    private final ByteRing toHost;
    private final ByteRing fromHost;
    private final Runnable drainTask = this::drainToHost;
    private final Runnable refillTask = this::refillFromHost;
    private final AtomicBoolean drainScheduled = new AtomicBoolean();
    private final AtomicBoolean refillScheduled = new AtomicBoolean();
    /** Set by the worker when the guest-to-host ring could not take everything. */
    private volatile boolean toHostBlocked;
    /** Set by the event loop when host input is waiting for room in the host-to-guest ring. */
    private volatile boolean fromHostBlocked;

    private volatile Chardev chardev;
    private volatile ConsoleDevice device;
    /** Event loop only: the chardev said "not writable" and has not said "writable" since. */
    private boolean chardevFull;
    /** Event loop only: host input that did not fit in the ring yet. */
    private ByteBuf pendingInput;
    /** Event loop only: completed once the guest-to-host ring is empty (shutdown). */
    private CompletableFuture<Void> drained;

    public PortLink(final PortSpec port, final int toHostCapacity, final int fromHostCapacity) {
        this.port = port;
        this.toHost = new ByteRing(toHostCapacity);
        this.fromHost = new ByteRing(fromHostCapacity);
    }

    public PortSpec port() {
        return port;
    }

    public Chardev chardev() {
        return chardev;
    }

    /** Connect the two ends; the chardev's OPENED (if open) follows on its event loop. */
    public void bind(final ConsoleDevice device, final Chardev chardev) {
        this.device = device;
        this.chardev = chardev;
        if (port.console()) {
            // As QEMU's virtconsole: host-connected from realize whatever the chardev does, because the
            // guest's hvc output must never block on a missing peer.
            device.hostConnected(port.nr(), true);
        }
        chardev.eventLoop().execute(() -> chardev.attach(this));
    }

    /** Detach from the chardev (its event loop runs the detach). */
    public void unbind() {
        final Chardev c = chardev;
        if (c != null) {
            c.eventLoop().execute(() -> {
                c.detach();
                releasePending();
            });
        }
    }

    /**
     * chardev-change: moves this port from its chardev to {@code next}. The rings are untouched, so no byte is
     * lost either way: guest output still queued goes to {@code next}, host input already taken stays queued for
     * the guest. The guest sees at most a PORT_OPEN change: CLOSED when the old chardev was open and the new one
     * is not, OPENED when the new one is open. If {@code next} cannot take this port, the old chardev is attached
     * again and the reason thrown. Call from outside the chardevs' event loops; waits for both.
     */
    public void rebind(final Chardev next) {
        final Chardev old = chardev;
        if (old == next) {
            return;
        }
        final boolean wasOpen;
        try {
            wasOpen = old.eventLoop().submit(() -> {
                final boolean open = old.isOpen();
                old.detach();
                return open;
            }).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while detaching port " + port.nr(), e);
        } catch (final java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("port " + port.nr() + ": detach failed: " + e.getCause(), e.getCause());
        }
        try {
            next.eventLoop().submit(() -> attachAfterChange(next, wasOpen)).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while attaching port " + port.nr(), e);
        } catch (final java.util.concurrent.ExecutionException e) {
            // Roll back: the old chardev takes the port again, as if nothing happened.
            old.eventLoop().submit(() -> attachAfterChange(old, false)).syncUninterruptibly();
            throw new IllegalStateException(String.valueOf(e.getCause().getMessage()), e.getCause());
        }
        LOG.info(() -> "port " + port.nr() + ": chardev changed from '" + old.id() + "' to '" + next.id() + "'");
    }

    /** Event loop of {@code next}: attach it in place of the previous chardev and carry on where that one was. */
    private void attachAfterChange(final Chardev next, final boolean wasOpen) {
        chardev = next;
        chardevFull = false;
        if (fromHostBlocked) {
            next.setReadPaused(true); // host input already queued here goes first
        }
        next.attach(this); // throws when busy: the caller rolls back
        if (wasOpen && !next.isOpen()) {
            closed();
        }
        drainToHost();
    }

    // ------------------------------------------------------------------ worker side (PortChannel)

    @Override
    public int writeToHost(final long address, final int length) {
        final int n = toHost.write(address, length);
        if (n < length) {
            toHostBlocked = true;
        }
        return n;
    }

    @Override
    public void flushToHost() {
        if (!drainScheduled.getAndSet(true)) {
            chardev.eventLoop().execute(drainTask);
        }
    }

    @Override
    public int readFromHost(final long address, final int length) {
        final int n = fromHost.read(address, length);
        if (n > 0 && fromHostBlocked && !refillScheduled.getAndSet(true)) {
            chardev.eventLoop().execute(refillTask);
        }
        return n;
    }

    @Override
    public boolean hasDataFromHost() {
        return fromHost.available() > 0;
    }

    // ------------------------------------------------------------------ event loop side (ChardevFrontend)

    @Override
    public void opened() {
        if (!port.console()) {
            device.hostConnected(port.nr(), true);
        }
    }

    @Override
    public void closed() {
        if (!port.console()) {
            device.hostConnected(port.nr(), false);
        }
    }

    @Override
    public void received(final ByteBuf data) {
        if (pendingInput != null) {
            // Input arrived after we paused reads (already in flight): keep order behind the pending part.
            pendingInput = appendPending(pendingInput, data);
            return;
        }
        fromHost.write(data);
        if (data.isReadable()) {
            pendingInput = data;
            blockInput();
        } else {
            data.release();
        }
        device.hostDataAvailable(port.nr());
    }

    @Override
    public void writable() {
        chardevFull = false;
        drainToHost();
    }

    private void drainToHost() {
        drainScheduled.set(false);
        final Chardev c = chardev;
        if (c == null) {
            return;
        }
        boolean freed = false;
        while (!chardevFull) {
            final int available = toHost.available();
            if (available == 0) {
                break;
            }
            final int n = Math.min(available, MAX_WRITE);
            final ByteBuf buf = ByteBufAllocator.DEFAULT.directBuffer(n, n);
            toHost.read(buf, n);
            freed = true;
            if (!c.write(buf)) {
                chardevFull = true;
            }
        }
        if (freed && toHostBlocked) {
            toHostBlocked = false;
            device.hostSpaceAvailable(port.nr());
        }
        if (drained != null && toHost.available() == 0) {
            drained.complete(null);
        }
    }

    /**
     * Shutdown, after the device worker stopped: hand everything the guest-to-host ring holds to the chardev,
     * as fast as the chardev takes it. Completes when the ring is empty.
     */
    public CompletableFuture<Void> drainToChardev() {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final Chardev c = chardev;
        if (c == null) {
            done.complete(null);
            return done;
        }
        c.eventLoop().execute(() -> {
            drained = done;
            drainToHost();
        });
        return done;
    }

    private void blockInput() {
        fromHostBlocked = true;
        chardev.setReadPaused(true);
        // The worker may have emptied the ring before it could see the flag: look once more.
        refillFromHost();
    }

    private void refillFromHost() {
        refillScheduled.set(false);
        final ByteBuf pending = pendingInput;
        if (pending == null) {
            return;
        }
        fromHost.write(pending);
        if (!pending.isReadable()) {
            pending.release();
            pendingInput = null;
            fromHostBlocked = false;
            chardev.setReadPaused(false);
        }
        device.hostDataAvailable(port.nr());
    }

    private static ByteBuf appendPending(final ByteBuf pending, final ByteBuf more) {
        final ByteBuf merged = ByteBufAllocator.DEFAULT.directBuffer(pending.readableBytes() + more.readableBytes());
        merged.writeBytes(pending).writeBytes(more);
        pending.release();
        more.release();
        return merged;
    }

    private void releasePending() {
        if (pendingInput != null) {
            LOG.fine(() -> "port " + port.nr() + ": " + pendingInput.readableBytes() + " bytes of host input dropped at detach");
            pendingInput.release();
            pendingInput = null;
        }
    }

    /** The event loop of the bound chardev. */
    public EventLoop eventLoop() {
        return chardev.eventLoop();
    }
}
