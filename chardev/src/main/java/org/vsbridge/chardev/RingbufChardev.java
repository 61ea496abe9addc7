package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;

/**
 * {@code ringbuf} (alias {@code memory}): guest output goes into a ring of {@link #size()} bytes; when it is
 * full the oldest bytes are overwritten. QMP's {@code ringbuf-read} drains the ring and {@code ringbuf-write}
 * writes into the same ring (not to the guest: QEMU's ringbuf has no input side). Always open.
 *
 * <p>Thread-safe: QMP calls {@link #write(byte[])}, {@link #read(int)}, {@link #count()} from its own thread
 * while the event loop writes guest output.
 */
public final class RingbufChardev extends AbstractChardev {

    /** The largest ring this bridge allocates (QEMU's limit is the int range). */
    public static final long MAX_SIZE = 1L << 30;

    private final byte[] ring;
    private final int mask;
    /** Total bytes ever written and read; their difference is the count, as in QEMU's prod/cons. */
    private long produced;
    private long consumed;

    RingbufChardev(final String id, final ChardevKind kind, final EventLoop loop, final Logfile logfile,
                   final long size) throws ChardevException {
        super(id, kind, loop, logfile);
        ChardevBackend.checkRingSize(size);
        this.ring = new byte[(int) size];
        this.mask = (int) size - 1;
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    /** The capacity of the ring in bytes. */
    public int size() {
        return ring.length;
    }

    /** Bytes currently held. */
    public synchronized int count() {
        return (int) (produced - consumed);
    }

    /** Appends {@code data}, overwriting the oldest bytes when full; returns the number of bytes written. */
    public synchronized int write(final byte[] data) {
        for (final byte b : data) {
            ring[(int) (produced++ & mask)] = b;
        }
        dropOverwritten();
        return data.length;
    }

    /** Removes and returns up to {@code maxBytes} of the oldest bytes. */
    public synchronized byte[] read(final int maxBytes) {
        if (maxBytes <= 0) {
            throw new IllegalArgumentException("size must be greater than zero");
        }
        final int n = (int) Math.min(maxBytes, produced - consumed);
        final byte[] out = new byte[n];
        final int start = (int) (consumed & mask);
        final int first = Math.min(n, ring.length - start);
        System.arraycopy(ring, start, out, 0, first);
        System.arraycopy(ring, 0, out, first, n - first);
        consumed += n;
        return out;
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        try {
            synchronized (this) {
                int index = data.readerIndex();
                int remaining = data.readableBytes();
                // Only the last ring-full of a large write survives; skip what would be overwritten at once.
                if (remaining > ring.length) {
                    produced += remaining - ring.length;
                    index += remaining - ring.length;
                    remaining = ring.length;
                }
                while (remaining > 0) {
                    final int at = (int) (produced & mask);
                    final int n = Math.min(remaining, ring.length - at);
                    data.getBytes(index, ring, at, n);
                    index += n;
                    remaining -= n;
                    produced += n;
                }
                dropOverwritten();
            }
        } finally {
            data.release();
        }
        return true;
    }

    private void dropOverwritten() {
        if (produced - consumed > ring.length) {
            consumed = produced - ring.length;
        }
    }

    @Override
    protected void doClose() {
    }
}
