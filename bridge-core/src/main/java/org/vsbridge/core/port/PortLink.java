package org.vsbridge.core.port;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevFrontend;
import org.vsbridge.chardev.DirectInput;
import org.vsbridge.chardev.DirectOutput;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortChannel;
import org.vsbridge.console.PortSpec;

/**
 * Where one port meets its chardev: two {@link StreamRing}s (Agrona ring buffers carrying the byte stream as messages), one per direction. The device worker is the
 * producer of guest-to-host bytes and the consumer of host-to-guest bytes; the chardev's event loop is the
 * other side of both. Wake-ups are coalesced with one flag per direction, and a full ring is
 * backpressure in both directions, never a drop.
 *
 * <p><b>Direct output.</b> When the chardev is a plain connected socket ({@link Chardev#openDirectOutput()}),
 * the worker writes guest output to the socket itself with one {@code writev} per batch, straight from guest
 * memory: no copy into the ring, no copy into a Netty buffer, no wake-up of the event loop. Only what the
 * socket does not take goes into the ring, and from then on the event loop drains the ring as usual until it
 * is empty and the socket has nothing queued; then direct output resumes. Who may write to the socket is one
 * atomic state: {@code IDLE} (nobody; the next worker batch may take it), {@code WRITING} (a worker batch holds
 * it, from its first {@link #writeToHost} to {@link #flushToHost}), {@code LOOP} (the event loop drains the
 * ring through the chardev). Bytes in the ring are always older than bytes the worker writes directly, because
 * the worker writes directly only when it holds {@code WRITING} and the ring is empty. The guest's buffers stay
 * valid until {@link #flushToHost} (the device publishes their used entries after it), and the worker promises
 * only as many bytes per batch as the ring could take, so a remainder the socket refused always fits.
 * A guest buffer of {@code vsb.writeNowMin} bytes or more (32 KiB: Linux's bulk writes) is written at once
 * instead, and counts only as far as the socket took it, as in exact delivery: a full socket holds the guest's
 * buffer rather than a copy in the ring, and the worker's own epoll says when the socket takes more, so a bulk
 * stream never falls back to the ring and the event loop.
 * {@code -Dvsb.directOutput=false} turns this off (every byte through the ring, as before).
 *
 * <p><b>Direct input.</b> The same connections lend their input to the worker ({@link Chardev#openDirectInput()}):
 * the worker reads the socket itself, straight into the guest's receive buffers, when its own epoll says the
 * socket is readable, so host input costs neither a copy into the ring nor a wake-up of the event loop and then
 * of the worker. The ring still carries what the chardev read before the loan (the worker takes the ring first)
 * and everything after it: the worker gives the input back at end of stream, on a reset, when the chardev asks
 * (the peer half-closed, the connection closes, a chardev-change) and when the port is removed; the chardev then
 * reads the connection as before. {@code -Dvsb.directInput=false} turns it off.
 */
public final class PortLink implements PortChannel, ChardevFrontend {

    private static final Logger LOG = Logger.getLogger(PortLink.class.getName());
    /** Largest buffer handed to the chardev in one write. */
    private static final int MAX_WRITE = 64 * 1024;

    private static final boolean DIRECT_ENABLED = !"false".equals(System.getProperty("vsb.directOutput"));
    /** Guest buffers of at least this many bytes are written at once rather than collected for the batch's writev
     *  ({@code -Dvsb.writeNowMin}). Linux writes bulk output in 32 KiB buffers; in the benchmark's tx buffer sizes
     *  writing at once won at 32 KiB (1.0 of the bare stream against 0.4-0.6) and lost up to 16 KiB. */
    private static final int WRITE_NOW_MIN = Integer.getInteger("vsb.writeNowMin", 32 * 1024);
    private static final boolean DIRECT_INPUT_ENABLED = !"false".equals(System.getProperty("vsb.directInput"));
    /** iovecs per writev (Linux IOV_MAX is 1024). */
    private static final int IOV_ENTRIES = 128;
    private static final int IOV_SIZE = 16;

    /** Output states, see the class comment. */
    private static final int IDLE = 0;
    private static final int WRITING = 1;
    private static final int LOOP = 2;

    /** Worker batch modes. */
    private static final int BATCH_NONE = 0;
    /** Holding WRITING, ring empty: bytes collect in {@link #iov} for one writev. */
    private static final int BATCH_DIRECT = 1;
    /** Holding WRITING, but bytes must go into the ring (it was not empty, or the socket refused some). */
    private static final int BATCH_OWNED_RING = 2;
    /** The event loop owns the output: bytes go into the ring. */
    private static final int BATCH_RING = 3;

    private final PortSpec port;
    private final StreamRing toHost;
    private final StreamRing fromHost;
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

    private final AtomicInteger outputState = new AtomicInteger(LOOP);
    /**
     * The socket for direct output, or null. Changed by the event loop only while it holds LOOP; read by the
     * worker only while it holds WRITING. IDLE implies non-null.
     */
    private DirectOutput direct;
    /** A direct write failed (peer gone): stay on the ring path until the chardev's next connection. */
    private volatile boolean directFailed;
    /** Event loop only: the port is detached from its chardev (no new direct output). */
    private boolean detached;
    /** Worker only. */
    private int batch;
    private boolean batchWrote;
    private UnsafeBuffer iov;
    private int iovCount;
    private long deferred;
    /** Written by the worker only; read by QMP. */
    private volatile long directBytes;
    /** Set by the worker (see {@link #setExactDelivery}); read by the event loop. */
    private volatile boolean exact;
    /** The bound chardev's kind offers direct output: exact delivery waits for a connection that does. */
    private volatile boolean directKind;
    /** Event loop: a recheck of the output is scheduled (exact delivery behind bytes Netty still holds). */
    private final AtomicBoolean recheckScheduled = new AtomicBoolean();
    private final Runnable recheckTask = () -> {
        recheckScheduled.set(false);
        drainToHost();
    };
    private final Runnable writableCheck = this::checkWritable;
    private final AtomicBoolean writableWatch = new AtomicBoolean();
    private static final long WRITABLE_POLL_US = 200;

    /** Direct input, event loops: lent and not yet back, and by which chardev. */
    private volatile boolean inputOut;
    private Chardev inputOwner;
    /** Direct input handed from the event loop to the worker. */
    private final AtomicReference<DirectInput> inputOffer = new AtomicReference<>();
    /** Set by the event loop: the worker gives the input back. */
    private volatile boolean inputRevoke;
    /** Worker only: the input it reads, and whether the socket may have bytes (else its watch is armed). */
    private DirectInput input;
    private boolean inputReadable;
    /** Written by the worker only; read by QMP. */
    private volatile long directInputBytes;

    public PortLink(final PortSpec port, final int toHostCapacity, final int fromHostCapacity) {
        this.port = port;
        this.toHost = new StreamRing(toHostCapacity);
        this.fromHost = new StreamRing(fromHostCapacity);
    }

    public PortSpec port() {
        return port;
    }

    /** Bytes of guest output this link can hold for the chardev. */
    public int toHostCapacity() {
        return toHost.capacity();
    }

    /** Bytes of chardev input this link can hold for the guest. */
    public int fromHostCapacity() {
        return fromHost.capacity();
    }

    public Chardev chardev() {
        return chardev;
    }

    /** Connect the two ends; the chardev's OPENED (if open) follows on its event loop. */
    public void bind(final ConsoleDevice device, final Chardev chardev) {
        this.device = device;
        this.chardev = chardev;
        this.directKind = DIRECT_ENABLED && chardev.offersDirectOutput();
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
                closeDirect();
                revokeInput();
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
                // Until the next chardev's OPENED: no direct input or output. A give-back of the input still on its
                // way (the revoke below, or one before) would otherwise lend the old connection to the worker
                // again, and that loan, which nobody revokes, keeps the old connection open after its close.
                detached = true;
                closeDirect();
                revokeInput();
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
        directKind = DIRECT_ENABLED && next.offersDirectOutput();
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
        if (batch == BATCH_NONE) {
            batch = beginBatch();
        }
        // A batch in DIRECT or OWNED_RING mode holds WRITING (tests run with assertions on).
        assert batch == BATCH_RING || outputState.get() == WRITING : "port " + port.nr() + ": batch mode " + batch
            + " without the output (state " + outputState.get() + ")";
        int n = 0;
        if (!exact && length >= WRITE_NOW_MIN && batch == BATCH_DIRECT && directKind && !directFailed) {
            // A large buffer is written at once and counts only as far as the socket takes it (as in exact
            // delivery): a full socket holds the guest's buffer, not a copy in the ring, and the worker's own epoll
            // says when to go on. Smaller ones collect for one writev per batch.
            flushDirect();
            if (batch == BATCH_DIRECT) {
                return writeExact(address, length);
            }
        }
        if (exact && directKind && !directFailed) {
            if (batch == BATCH_DIRECT) {
                return writeExact(address, length);
            }
            // Exact delivery never parks bytes in the ring: wait until the event loop hands the socket back
            // (flushToHost schedules it; it wakes the worker once the output is free).
            toHostBlocked = true;
            return 0;
        }
        if (batch == BATCH_DIRECT) {
            n = takeDirect(address, length);
            while (n < length && batch == BATCH_DIRECT) {
                // The ring's room (or the iovec array) is promised: write out what is collected, then go on.
                flushDirect();
                if (batch == BATCH_DIRECT) {
                    n += takeDirect(address + n, length - n);
                }
            }
            if (n == length) {
                return n;
            }
        }
        n += toHost.write(address + n, length - n);
        batchWrote |= n > 0;
        if (n < length) {
            toHostBlocked = true;
        }
        return n;
    }

    /**
     * Worker, holding WRITING with the ring empty, exact delivery: write now and report only what the socket took,
     * so that the device completes a descriptor only once its bytes are in the kernel. When the socket is full,
     * the event loop watches it and wakes the worker (hostSpaceAvailable) once it takes bytes again.
     */
    private int writeExact(final long address, final int length) {
        int written;
        try {
            written = direct.write(address, length);
        } catch (final IOException e) {
            written = 0;
            directFailed = true; // the event loop will see the peer leave; the device then drops or holds
            LOG.log(Level.FINE, () -> "port " + port.nr() + ": direct write failed: " + e.getMessage());
        }
        directBytes += written;
        if (written < length && !directFailed) {
            toHostBlocked = true;
            if (!writableWatch.getAndSet(true) && !device.watchHostOutput(port.nr(), direct.fd())) {
                chardev.eventLoop().execute(writableCheck); // no epoll watch: the event loop polls instead
            }
        }
        return written;
    }

    @Override
    public void hostOutputReady() {
        if (writableWatch.getAndSet(false)) {
            toHostBlocked = false;
        }
    }

    /** Event loop: wake the worker once the direct socket takes bytes again (exact delivery). */
    private void checkWritable() {
        if (!chardev.eventLoop().inEventLoop()) {
            chardev.eventLoop().execute(writableCheck); // scheduled before a chardev change: run where it lives now
            return;
        }
        final DirectOutput d = direct; // changed by this thread only
        if (d == null || d.writable()) {
            writableWatch.set(false);
            toHostBlocked = false;
            device.hostSpaceAvailable(port.nr());
            return;
        }
        chardev.eventLoop().schedule(writableCheck, WRITABLE_POLL_US, TimeUnit.MICROSECONDS);
    }

    /**
     * Worker: exact delivery on or off. On, a descriptor's bytes count as taken only once the socket took them
     * (direct output; the ring is not used while direct output runs), so that a device that records delivery
     * (INFLIGHT_SHMFD) loses and repeats nothing when the process dies. Chardevs without direct output still go
     * through the ring.
     */
    @Override
    public void setExactDelivery(final boolean on) {
        exact = on;
    }

    /** Worker: the first write of a batch; takes the output for direct writes when it is free. */
    private int beginBatch() {
        if (outputState.get() == IDLE && outputState.compareAndSet(IDLE, WRITING)) {
            return toHost.isEmpty() && !directFailed ? BATCH_DIRECT : BATCH_OWNED_RING;
        }
        return BATCH_RING;
    }

    /** Worker: promise up to {@code length} bytes for the batch's writev; the ring could hold them all. */
    private int takeDirect(final long address, final int length) {
        if (iov == null) {
            iov = new UnsafeBuffer(ByteBuffer.allocateDirect(IOV_ENTRIES * IOV_SIZE));
        }
        if (iovCount == IOV_ENTRIES) {
            return 0;
        }
        final int n = Math.min(length, toHost.bytesFor((int) (toHost.promisable() - deferred)));
        if (n <= 0) {
            return 0;
        }
        final int at = iovCount * IOV_SIZE;
        iov.putLong(at, address);
        iov.putLong(at + 8, n);
        iovCount++;
        deferred += toHost.cost(n);
        return n;
    }

    /** Worker, holding WRITING: writev what the batch collected; what the socket refused goes into the ring. */
    private void flushDirect() {
        if (iovCount == 0) {
            return;
        }
        long written;
        try {
            written = direct.writev(iov.addressOffset(), iovCount);
        } catch (final IOException e) {
            // The peer is going; the event loop will see it close. Until then the ring path handles the bytes
            // (and drops them with the connection, as QEMU drops output to a vanished peer).
            written = 0;
            directFailed = true;
            LOG.log(Level.FINE, () -> "port " + port.nr() + ": direct write failed: " + e.getMessage());
        }
        directBytes += written;
        long skip = written;
        for (int i = 0; i < iovCount; i++) {
            final long address = iov.getLong(i * IOV_SIZE);
            final int length = (int) iov.getLong(i * IOV_SIZE + 8);
            if (skip >= length) {
                skip -= length;
                continue;
            }
            final int rest = length - (int) skip;
            final int copied = toHost.write(address + skip, rest);
            if (copied != rest) {
                // Cannot happen: the batch never promises more than the ring holds.
                throw new IllegalStateException("port " + port.nr() + ": guest-to-host ring lost "
                    + (rest - copied) + " promised bytes");
            }
            skip = 0;
        }
        iovCount = 0;
        deferred = 0;
        if (!toHost.isEmpty() || directFailed) {
            batch = BATCH_OWNED_RING;
        }
    }

    @Override
    public void flushToHost() {
        final int mode = batch;
        if (mode == BATCH_NONE) {
            return;
        }
        final boolean wrote = batchWrote;
        try {
            if (mode == BATCH_DIRECT) {
                flushDirect();
            }
        } finally {
            // The batch ends here, whatever flushDirect did to its mode: a mode left over would make the next
            // batch skip beginBatch and write under an output state it never took.
            batch = BATCH_NONE;
            batchWrote = false;
            if (mode == BATCH_RING) {
                if (wrote || toHostBlocked) {
                    scheduleDrain();
                }
            } else if (toHost.isEmpty() && !directFailed) {
                outputState.set(IDLE); // the worker held WRITING and left nothing behind
            } else {
                outputState.set(LOOP); // the event loop takes over what the ring holds
                scheduleDrain();
            }
        }
    }

    /** Guest-to-host bytes the worker wrote to the socket itself (query-vserport {@code bytes-to-host-direct}). */
    public long directBytes() {
        return directBytes;
    }

    private void scheduleDrain() {
        if (!drainScheduled.getAndSet(true)) {
            chardev.eventLoop().execute(drainTask);
        }
    }

    @Override
    public int readFromHost(final long address, final int length) {
        final int n = readRing(address, length);
        if (n > 0 || input == null || !inputReadable) {
            return n;
        }
        final DirectInput in = input;
        if (!in.beginRead()) {
            watchInput(); // the chardev is reading just now: what it reads comes through the ring
            return 0;
        }
        int r;
        boolean giveBack = false;
        try {
            if (!fromHost.isEmpty()) {
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
            LOG.log(Level.FINE, () -> "port " + port.nr() + ": direct read failed: " + e.getMessage());
            r = -1;
        } finally {
            in.endRead();
            if (giveBack) {
                giveBackInput();
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
            giveBackInput(); // end of stream or reset: the chardev reads it again and sees the peer go
        }
        return 0;
    }

    private int readRing(final long address, final int length) {
        final int n = fromHost.read(address, length);
        if (n > 0 && fromHostBlocked && !refillScheduled.getAndSet(true)) {
            chardev.eventLoop().execute(refillTask);
        }
        return n;
    }

    @Override
    public boolean hasDataFromHost() {
        if (input != null ? inputRevoke || input.reclaimRequested() : inputOffer.get() != null) {
            serviceInput();
        }
        return !fromHost.isEmpty() || (input != null && inputReadable);
    }

    /** Worker: take an offered input; give it back when the event loop or the chardev asks. */
    private void serviceInput() {
        if (input == null) {
            input = inputOffer.getAndSet(null);
            inputReadable = input != null;
        }
        if (input != null && (inputRevoke || input.reclaimRequested())) {
            giveBackInput();
        }
    }

    @Override
    public void hostInputReady() {
        if (input != null) {
            inputReadable = true;
        }
    }

    @Override
    public void release() {
        serviceInput();
        if (input != null) {
            giveBackInput();
        }
    }

    /** Worker: watch the input for readability; without a watch it goes back to the chardev. */
    private void watchInput() {
        if (!device.watchHostInput(port.nr(), input.fd())) {
            giveBackInput();
        }
    }

    /** Worker: stop reading the socket and hand the connection's input back to the chardev that lent it. */
    private void giveBackInput() {
        final DirectInput in = input;
        input = null;
        inputReadable = false;
        device.unwatchHostFd(in.fd());
        in.giveBack();
        final Chardev owner = inputOwner; // written before the offer was published
        owner.eventLoop().execute(() -> {
            owner.directInputReturned(in);
            final Chardev now = chardev;
            now.eventLoop().execute(() -> {
                inputOut = false;
                lendInput();
            });
        });
    }

    /** Event loop: lend the connection's input to the worker when it is a plain socket and nothing is pending. */
    private void lendInput() {
        final Chardev c = chardev;
        if (!DIRECT_INPUT_ENABLED || inputOut || detached || pendingInput != null || c == null || !directKind
            || !c.eventLoop().inEventLoop() || !c.isOpen()) {
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
        device.hostDataAvailable(port.nr()); // the worker takes it and reads what is already waiting
    }

    /** Event loop: ask the worker for the input back (it answers through {@link #giveBackInput}). */
    private void revokeInput() {
        if (inputOut) {
            inputRevoke = true;
            device.hostDataAvailable(port.nr());
        }
    }

    @Override
    public void directInputReclaimed() {
        revokeInput();
    }

    /** Host-to-guest bytes the worker read from the socket itself (query-vserport {@code bytes-from-host-direct}). */
    public long directInputBytes() {
        return directInputBytes;
    }

    // ------------------------------------------------------------------ event loop side (ChardevFrontend)

    @Override
    public void opened() {
        detached = false;
        reconcileDirect();
        if (!port.console()) {
            device.hostConnected(port.nr(), true);
        }
        lendInput();
    }

    @Override
    public void closed() {
        revokeInput();
        reconcileDirect();
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
        final Chardev c = chardev;
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
            final int state = outputState.get();
            if (state == WRITING) {
                break; // the worker's flushToHost hands the output over (and schedules us) if it left bytes
            }
            if (state == IDLE) {
                if (toHost.isEmpty() || !outputState.compareAndSet(IDLE, LOOP)) {
                    break;
                }
            }
            while (!chardevFull) {
                final int used = toHost.used();
                if (used == 0) {
                    break;
                }
                final ByteBuf buf = ByteBufAllocator.DEFAULT.directBuffer(Math.min(used, MAX_WRITE), MAX_WRITE);
                if (toHost.read(buf, MAX_WRITE) == 0) {
                    buf.release();
                    break; // a message claimed but not yet committed: the worker's flushToHost schedules us again
                }
                freed = true;
                if (!c.write(buf)) {
                    chardevFull = true;
                }
            }
            // Direct output resumes only when the socket has nothing of ours queued (else the worker's bytes would
            // overtake it); otherwise the next drain looks again.
            if (chardevFull || !toHost.isEmpty() || direct == null || directFailed || !c.outputIdle()) {
                if (exact && toHostBlocked && direct != null && !directFailed && !chardevFull && toHost.isEmpty()
                    && !recheckScheduled.getAndSet(true)) {
                    // A worker waits for the socket (exact delivery) behind bytes Netty still holds: nothing else
                    // will call us when they are out, so look again shortly.
                    c.eventLoop().schedule(recheckTask, WRITABLE_POLL_US, TimeUnit.MICROSECONDS);
                }
                break;
            }
            outputState.set(IDLE);
            if (toHost.isEmpty()) {
                break;
            }
            // The worker added bytes before it saw IDLE: take the output back for them.
        }
        // Not only "freed": the worker may have found the ring full just before this loop emptied it, and set the
        // flag after; its flushToHost then schedules this drain, which must wake it although it freed nothing.
        // An exact-delivery worker waits for the output itself, not for ring room: wake it once the output is free.
        final boolean waitsForOutput = exact && directKind && !directFailed && outputState.get() == LOOP;
        if (toHostBlocked && !waitsForOutput && (freed || toHost.hasRoom())) {
            toHostBlocked = false;
            device.hostSpaceAvailable(port.nr());
        }
        if (drained != null && toHost.isEmpty()) {
            drained.complete(null);
        }
    }

    /**
     * Event loop: take the output (waiting out a worker batch), close the old direct socket and open one for the
     * chardev's current connection, if it offers one.
     */
    private void reconcileDirect() {
        if (!DIRECT_ENABLED) {
            return;
        }
        if (!acquireOutput()) {
            // A worker batch holds it (one batch and one writev): look again shortly.
            chardev.eventLoop().schedule(this::reconcileDirect, 20, TimeUnit.MICROSECONDS);
            return;
        }
        releaseDirect();
        final Chardev c = chardev;
        if (c != null && !detached && c.isOpen()) {
            direct = c.openDirectOutput();
        }
        directFailed = false;
        drainToHost();
    }

    /** Event loop: move IDLE to LOOP; false while the worker holds WRITING. */
    private boolean acquireOutput() {
        while (true) {
            final int state = outputState.get();
            if (state == LOOP) {
                return true;
            }
            if (state == WRITING) {
                return false;
            }
            if (outputState.compareAndSet(IDLE, LOOP)) {
                return true;
            }
        }
    }

    /** Event loop, at detach: no more direct output to this chardev (waits out a running worker batch). */
    private void closeDirect() {
        if (!DIRECT_ENABLED) {
            return;
        }
        while (!acquireOutput()) {
            Thread.onSpinWait();
        }
        releaseDirect();
    }

    /** Event loop, holding LOOP: close the direct socket, if any. */
    private void releaseDirect() {
        if (direct != null) {
            device.unwatchHostFd(direct.fd());
            direct.close();
            direct = null;
            if (writableWatch.getAndSet(false)) {
                // A worker waited for this socket: let it look again (it finds the new output state).
                toHostBlocked = false;
                device.hostSpaceAvailable(port.nr());
            }
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
            lendInput();
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
