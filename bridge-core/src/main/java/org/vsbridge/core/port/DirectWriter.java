package org.vsbridge.core.port;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The device worker's side of a port's guest output: each batch of guest buffers goes either to the socket itself
 * (the batch holds {@code WRITING}, see {@link OutputOwner}) with one {@code writev} straight from guest memory, or
 * into the guest-to-host ring for the event loop. What the socket does not take of a direct batch goes into the
 * ring; the worker promises only as many bytes per batch as an empty ring surely takes
 * ({@link StreamRing#promisable()}), so that remainder always fits. The guest's buffers stay valid until
 * {@link #flush()} (the device publishes their used entries after it).
 *
 * <p>A guest buffer of {@code vsb.writeNowMin} bytes or more (32 KiB: Linux's bulk writes) is written at once
 * instead, and counts only as far as the socket took it, as in exact delivery: a full socket holds the guest's
 * buffer rather than a copy in the ring, and the worker's own epoll says when the socket takes more.
 *
 * <p>Every method here runs on the device worker (asserted: never on the chardev's event loop).
 */
final class DirectWriter {

    private static final Logger LOG = Logger.getLogger(DirectWriter.class.getName());

    /** Guest buffers of at least this many bytes are written at once rather than collected for the batch's writev
     *  ({@code -Dvsb.writeNowMin}). Linux writes bulk output in 32 KiB buffers; in the benchmark's tx buffer sizes
     *  writing at once won at 32 KiB (1.0 of the bare stream against 0.4-0.6) and lost up to 16 KiB. */
    private static final int WRITE_NOW_MIN = Integer.getInteger("vsb.writeNowMin", 32 * 1024);
    /** iovecs per writev (Linux IOV_MAX is 1024). */
    private static final int IOV_ENTRIES = 128;
    private static final int IOV_SIZE = 16;

    /** Worker batch modes. */
    private static final int BATCH_NONE = 0;
    /** Holding WRITING, ring empty: bytes collect in {@link #iov} for one writev. */
    private static final int BATCH_DIRECT = 1;
    /** Holding WRITING, but bytes must go into the ring (it was not empty, or the socket refused some). */
    private static final int BATCH_OWNED_RING = 2;
    /** The event loop owns the output: bytes go into the ring. */
    private static final int BATCH_RING = 3;

    private final PortLink link;
    private final OutputOwner out;
    private final StreamRing ring;
    private final RingDrainer drainer;

    private int batch;
    private boolean batchWrote;
    private UnsafeBuffer iov;
    private int iovCount;
    /** Ring bytes ({@link StreamRing#cost}) the batch's collected iovecs could need. */
    private long deferred;

    DirectWriter(final PortLink link, final OutputOwner out, final RingDrainer drainer) {
        this.link = link;
        this.out = out;
        this.ring = out.ring;
        this.drainer = drainer;
    }

    /** See {@link org.vsbridge.console.PortChannel#writeToHost}. */
    int write(final long address, final int length) {
        assert link.offLoop() : "port " + link.nr() + ": guest output written on the chardev's event loop";
        if (batch == BATCH_NONE) {
            batch = beginBatch();
        }
        assert batch == BATCH_RING || out.state() == OutputOwner.WRITING : "port " + link.nr() + ": batch mode "
            + batch + " without the output (state " + out.state() + ")";
        int n = 0;
        final boolean directOk = out.directKind && !out.directFailed;
        if (!out.exact && !link.console() && length >= WRITE_NOW_MIN && batch == BATCH_DIRECT && directOk) {
            // A large buffer is written at once and counts only as far as the socket takes it (as in exact
            // delivery): a full socket holds the guest's buffer, not a copy in the ring, and the worker's own epoll
            // says when to go on. Smaller ones collect for one writev per batch. Not for a console: the device
            // drops what a console's channel does not take at once, where the ring would have held it.
            flushDirect();
            if (batch == BATCH_DIRECT) {
                return writeExact(address, length);
            }
        }
        if (out.exact && directOk) {
            if (batch == BATCH_DIRECT) {
                return writeExact(address, length);
            }
            // Exact delivery never parks bytes in the ring: wait until the event loop hands the socket back
            // (flush schedules it; it wakes the worker once the output is free).
            out.blocked = true;
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
        n += ring.write(address + n, length - n);
        batchWrote |= n > 0;
        if (n < length) {
            out.blocked = true;
        }
        return n;
    }

    /** See {@link org.vsbridge.console.PortChannel#flushToHost}. */
    void flush() {
        assert link.offLoop() : "port " + link.nr() + ": guest output flushed on the chardev's event loop";
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
                if (wrote || out.blocked) {
                    drainer.schedule();
                }
            } else if (ring.isEmpty() && !out.directFailed) {
                out.workerRelease(false); // the worker held WRITING and left nothing behind
            } else {
                out.workerRelease(true); // the event loop takes over what the ring holds
                drainer.schedule();
            }
        }
    }

    /** See {@link org.vsbridge.console.PortChannel#hostOutputReady}: the direct socket takes bytes again. */
    void outputReady() {
        if (out.writableWatch.getAndSet(false)) {
            out.blocked = false;
        }
    }

    /** The first write of a batch: takes the output for direct writes when it is free. */
    private int beginBatch() {
        if (out.workerTake()) {
            return ring.isEmpty() && !out.directFailed ? BATCH_DIRECT : BATCH_OWNED_RING;
        }
        return BATCH_RING;
    }

    /**
     * Holding WRITING with the ring empty, exact delivery: write now and report only what the socket took, so that
     * the device completes a descriptor only once its bytes are in the kernel. When the socket is full, the worker's
     * epoll watches it and {@link #outputReady} follows once it takes bytes again.
     */
    private int writeExact(final long address, final int length) {
        int written;
        try {
            written = out.direct.write(address, length);
        } catch (final IOException e) {
            written = 0;
            out.directFailed = true; // the event loop will see the peer leave; the device then drops or holds
            LOG.log(Level.FINE, () -> "port " + link.nr() + ": direct write failed: " + e.getMessage());
        }
        out.directBytes += written;
        if (written < length && !out.directFailed) {
            out.blocked = true;
            if (!out.writableWatch.getAndSet(true) && !link.device().watchHostOutput(link.nr(), out.direct.fd())) {
                // The engine cannot watch this socket (epoll refused it): the rest of this connection goes through
                // the ring, whose event loop has its own watch, starting with the rest of this buffer (behind the
                // bytes the socket took: the loop drains the ring only after this batch). Exact delivery then holds
                // as far as for a chardev without direct output: bytes in the ring count as taken.
                out.writableWatch.set(false);
                out.directFailed = true;
                LOG.warning(() -> "port " + link.nr() + ": the device cannot watch its socket; direct output off"
                    + " until the chardev's next connection");
                written += ring.write(address + written, length - written);
                out.blocked = written < length;
            }
        }
        if (out.directFailed) {
            batch = BATCH_OWNED_RING; // the rest of the batch goes into the ring, behind what the socket took
        }
        return written;
    }

    /** Promise up to {@code length} bytes for the batch's writev; an empty ring could hold them all. */
    private int takeDirect(final long address, final int length) {
        if (iov == null) {
            iov = new UnsafeBuffer(ByteBuffer.allocateDirect(IOV_ENTRIES * IOV_SIZE));
        }
        if (iovCount == IOV_ENTRIES) {
            return 0;
        }
        final int n = Math.min(length, ring.bytesFor((int) (ring.promisable() - deferred)));
        if (n <= 0) {
            return 0;
        }
        final int at = iovCount * IOV_SIZE;
        iov.putLong(at, address);
        iov.putLong(at + 8, n);
        iovCount++;
        deferred += ring.cost(n);
        return n;
    }

    /** Holding WRITING: writev what the batch collected; what the socket refused goes into the ring. */
    private void flushDirect() {
        if (iovCount == 0) {
            return;
        }
        long written;
        try {
            written = out.direct.writev(iov.addressOffset(), iovCount);
        } catch (final IOException e) {
            // The peer is going; the event loop will see it close. Until then the ring path handles the bytes
            // (and drops them with the connection, as QEMU drops output to a vanished peer).
            written = 0;
            out.directFailed = true;
            LOG.log(Level.FINE, () -> "port " + link.nr() + ": direct write failed: " + e.getMessage());
        }
        out.directBytes += written;
        long skip = written;
        for (int i = 0; i < iovCount; i++) {
            final long address = iov.getLong(i * IOV_SIZE);
            final int length = (int) iov.getLong(i * IOV_SIZE + 8);
            if (skip >= length) {
                skip -= length;
                continue;
            }
            final int rest = length - (int) skip;
            final int copied = ring.write(address + skip, rest);
            if (copied != rest) {
                // Cannot happen: the batch never promises more than an empty ring takes.
                throw new IllegalStateException("port " + link.nr() + ": guest-to-host ring lost "
                    + (rest - copied) + " promised bytes");
            }
            skip = 0;
        }
        iovCount = 0;
        deferred = 0;
        if (!ring.isEmpty() || out.directFailed) {
            batch = BATCH_OWNED_RING;
        }
    }
}
