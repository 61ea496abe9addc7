package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.logging.Logger;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevFrontend;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortChannel;
import org.vsbridge.console.PortSpec;

/**
 * Where one port meets its chardev: two {@link StreamRing}s (Agrona ring buffers carrying the byte stream as
 * messages), one per direction. The device worker is the producer of guest-to-host bytes and the consumer of
 * host-to-guest bytes; the chardev's event loop is the other side of both. Wake-ups are coalesced with one flag per
 * direction, and a full ring is back-pressure in both directions, never a drop.
 *
 * <p>The work is split by thread and direction:
 * <ul>
 *   <li>{@link OutputOwner}: who writes guest output to the chardev's socket now (the worker directly, or the event
 *       loop through the ring), and the hand-over between them;</li>
 *   <li>{@link DirectWriter} (worker): guest output, straight from guest memory to the socket with one
 *       {@code writev} per batch when the chardev is a plain connected socket, else into the ring;</li>
 *   <li>{@link RingDrainer} (event loop): the ring into the chardev, and the direct socket's life;</li>
 *   <li>{@link HostInput}: host input into the ring and from it into the guest's buffers, and the loan of a plain
 *       socket's input to the worker.</li>
 * </ul>
 * {@code -Dvsb.directOutput=false} and {@code -Dvsb.directInput=false} put every byte through the rings.
 */
public final class PortLink implements PortChannel, ChardevFrontend {

    private static final Logger LOG = Logger.getLogger(PortLink.class.getName());
    static final boolean DIRECT_ENABLED = !"false".equals(System.getProperty("vsb.directOutput"));

    private final PortSpec port;
    private final OutputOwner output;
    private final RingDrainer drainer;
    private final DirectWriter writer;
    private final HostInput input;

    private volatile Chardev chardev;
    private volatile ConsoleDevice device;
    /** Event loop only: the port is detached from its chardev (no new direct input or output). */
    private boolean detached;

    public PortLink(final PortSpec port, final int toHostCapacity, final int fromHostCapacity) {
        this.port = port;
        this.output = new OutputOwner(toHostCapacity);
        this.drainer = new RingDrainer(this, output);
        this.writer = new DirectWriter(this, output, drainer);
        this.input = new HostInput(this, fromHostCapacity);
    }

    public PortSpec port() {
        return port;
    }

    int nr() {
        return port.nr();
    }

    ConsoleDevice device() {
        return device;
    }

    boolean detached() {
        return detached;
    }

    /** True for a console port: the device drops what its channel does not take at once, so nothing is held. */
    boolean console() {
        return port.console();
    }

    boolean directKind() {
        return output.directKind;
    }

    /** True off the bound chardev's event loop: where the worker-only methods must run (a cheap assert). */
    boolean offLoop() {
        final Chardev c = chardev;
        return c == null || !c.eventLoop().inEventLoop();
    }

    /** Bytes of guest output this link can hold for the chardev. */
    public int toHostCapacity() {
        return output.ring.capacity();
    }

    /** Bytes of chardev input this link can hold for the guest. */
    public int fromHostCapacity() {
        return input.capacity();
    }

    public Chardev chardev() {
        return chardev;
    }

    /** Connect the two ends; the chardev's OPENED (if open) follows on its event loop. */
    public void bind(final ConsoleDevice device, final Chardev chardev) {
        this.device = device;
        this.chardev = chardev;
        output.directKind = DIRECT_ENABLED && chardev.offersDirectOutput();
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
                detached = true;
                input.revoke();
                input.releasePending();
                drainer.closeDirect(c.eventLoop(), () -> { });
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
        final CompletableFuture<Boolean> detach = new CompletableFuture<>();
        old.eventLoop().execute(() -> {
            try {
                final boolean open = old.isOpen();
                old.detach();
                // Until the next chardev's OPENED: no direct input or output. A give-back of the input still on its
                // way (the revoke below, or one before) would otherwise lend the old connection to the worker
                // again, and that loan, which nobody revokes, keeps the old connection open after its close.
                detached = true;
                input.revoke();
                // The direct socket closes now, or when a running worker batch ends (the worker posts it here).
                drainer.closeDirect(old.eventLoop(), () -> detach.complete(open));
            } catch (final RuntimeException | Error e) {
                detach.completeExceptionally(e);
            }
        });
        final boolean wasOpen;
        try {
            wasOpen = detach.get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while detaching port " + port.nr(), e);
        } catch (final ExecutionException e) {
            throw new IllegalStateException("port " + port.nr() + ": detach failed: " + e.getCause(), e.getCause());
        }
        try {
            next.eventLoop().submit(() -> attachAfterChange(next, wasOpen)).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while attaching port " + port.nr(), e);
        } catch (final ExecutionException e) {
            // Roll back: the old chardev takes the port again, as if nothing happened.
            old.eventLoop().submit(() -> attachAfterChange(old, false)).syncUninterruptibly();
            throw new IllegalStateException(String.valueOf(e.getCause().getMessage()), e.getCause());
        }
        LOG.info(() -> "port " + port.nr() + ": chardev changed from '" + old.id() + "' to '" + next.id() + "'");
    }

    /** Event loop of {@code next}: attach it in place of the previous chardev and carry on where that one was. */
    private void attachAfterChange(final Chardev next, final boolean wasOpen) {
        chardev = next;
        output.directKind = DIRECT_ENABLED && next.offersDirectOutput();
        drainer.attached();
        if (input.blocked()) {
            next.setReadPaused(true); // host input already queued here goes first
        }
        next.attach(this); // throws when busy: the caller rolls back
        if (wasOpen && !next.isOpen()) {
            closed();
        }
        drainer.drain();
    }

    // ------------------------------------------------------------------ worker side (PortChannel)

    @Override
    public int writeToHost(final long address, final int length) {
        return writer.write(address, length);
    }

    @Override
    public void flushToHost() {
        writer.flush();
    }

    @Override
    public void hostOutputReady() {
        writer.outputReady();
    }

    /**
     * Worker: exact delivery on or off. On, a descriptor's bytes count as taken only once the socket took them
     * (direct output; the ring is not used while direct output runs), so that a device that records delivery
     * (INFLIGHT_SHMFD) loses and repeats nothing when the process dies. Chardevs without direct output still go
     * through the ring.
     */
    @Override
    public void setExactDelivery(final boolean on) {
        output.exact = on;
    }

    /** Guest-to-host bytes the worker wrote to the socket itself (query-vserport {@code bytes-to-host-direct}). */
    public long directBytes() {
        return output.directBytes;
    }

    @Override
    public int readFromHost(final long address, final int length) {
        return input.read(address, length);
    }

    @Override
    public boolean hasDataFromHost() {
        return input.hasData();
    }

    @Override
    public void hostInputReady() {
        input.inputReady();
    }

    @Override
    public void release() {
        input.release();
    }

    @Override
    public void hostInputServed(final boolean served) {
        input.served(served);
    }

    /** Host-to-guest bytes the worker read from the socket itself (query-vserport {@code bytes-from-host-direct}). */
    public long directInputBytes() {
        return input.directInputBytes();
    }

    // ------------------------------------------------------------------ event loop side (ChardevFrontend)

    @Override
    public void opened() {
        detached = false;
        drainer.reconcileDirect();
        if (!port.console()) {
            device.hostConnected(port.nr(), true);
        }
        input.lend();
    }

    @Override
    public void closed() {
        input.revoke();
        drainer.reconcileDirect();
        if (!port.console()) {
            device.hostConnected(port.nr(), false);
        }
    }

    @Override
    public void received(final ByteBuf data) {
        input.received(data);
    }

    @Override
    public void writable() {
        drainer.writable();
    }

    @Override
    public void directInputReclaimed() {
        input.revoke();
    }

    /**
     * Shutdown, after the device worker stopped: hand everything the guest-to-host ring holds to the chardev,
     * as fast as the chardev takes it. Completes when the ring is empty.
     */
    public CompletableFuture<Void> drainToChardev() {
        return drainer.drainToChardev();
    }

    /** The event loop of the bound chardev. */
    public EventLoop eventLoop() {
        return chardev.eventLoop();
    }
}
