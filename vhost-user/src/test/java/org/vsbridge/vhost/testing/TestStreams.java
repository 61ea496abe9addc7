package org.vsbridge.vhost.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.Random;
import java.util.zip.CRC32;

import static org.vsbridge.vhost.testing.TestRing.Buffer.readable;
import static org.vsbridge.vhost.testing.TestRing.Buffer.writable;

/**
 * Drives a loopback pair (rx ring, tx ring, split or packed) like a guest driver: posts rx buffers, transmits a byte stream in
 * chains of varying shape (several descriptors, indirect tables), collects what comes back. Checksums compare.
 */
public final class TestStreams {

    private TestStreams() {
    }

    public static long crc(final byte[] data) {
        final CRC32 c = new CRC32();
        c.update(data);
        return c.getValue();
    }

    public static byte[] randomBytes(final long seed, final int len) {
        final byte[] b = new byte[len];
        new Random(seed).nextBytes(b);
        return b;
    }

    /**
     * Send {@code data} through tx and read it back from rx. {@code indirect}: every other chain as an indirect
     * table. Returns the bytes received (compare with a checksum). Waits with a safety-net timeout only.
     */
    public static byte[] loop(final TestGuestMemory mem, final DriverRing rx, final DriverRing tx, final byte[] data,
                              final int chunk, final boolean indirect) throws IOException {
        final int rxBufSize = 1024;
        final ByteArrayOutputStream received = new ByteArrayOutputStream();
        final long[] rxBufs = new long[rx.size()];
        for (int i = 0; i < rxBufs.length; i++) {
            rxBufs[i] = mem.alloc(rxBufSize, 8);
        }
        final long txArea = mem.alloc((long) chunk * tx.size(), 8);
        int nextRxBuf = 0;
        int sent = 0;
        int chainNo = 0;
        final long deadline = System.nanoTime() + 30_000_000_000L;
        while (received.size() < data.length) {
            if (System.nanoTime() > deadline) {
                throw new IOException("loopback stalled: sent " + sent + ", received " + received.size() + " of "
                    + data.length);
            }
            // Keep the rx ring full.
            final int oldRx = rx.availIdx();
            while (rx.freeCount() > 0) {
                final long buf = rxBufs[nextRxBuf++ % rxBufs.length];
                rx.post(writable(buf, rxBufSize / 2), writable(buf + rxBufSize / 2, rxBufSize / 2));
            }
            rx.kickIfNeeded(oldRx);
            // Transmit what fits.
            final int oldTx = tx.availIdx();
            while (sent < data.length && tx.freeCount() >= 3) {
                final int n = Math.min(chunk, data.length - sent);
                final long at = txArea + (long) (chainNo % tx.size()) * chunk;
                mem.write(at, data, sent, n);
                final int a = n / 3;
                final int b = n / 3;
                final TestRing.Buffer[] bufs = {readable(at, a), readable(at + a, b), readable(at + a + b, n - a - b)};
                if (indirect && chainNo % 2 == 1) {
                    tx.postIndirect(bufs);
                } else {
                    tx.post(bufs);
                }
                sent += n;
                chainNo++;
            }
            tx.kickIfNeeded(oldTx);
            rx.awaitCall(20);
            for (final TestRing.Used u : rx.collectUsed()) {
                received.write(rx.readWritten(u), 0, u.len());
            }
            final List<TestRing.Used> txDone = tx.collectUsed();
            tx.drainCalls();
            if (txDone.isEmpty() && received.size() < data.length) {
                Thread.onSpinWait();
            }
        }
        return received.toByteArray();
    }
}
