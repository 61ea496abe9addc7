package org.vsbridge.nativetest.soak;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.vsbridge.nativetest.kit.PatternStream;

/**
 * The host side of one port for one frontend session: a client of the bridge's unix socket chardev. The
 * streams (pattern position, checksum, byte counts) belong to the session and survive peer restarts; the
 * connection does not. A reader thread checks every guest-to-host byte against the pattern as it arrives.
 */
final class SoakPeer implements AutoCloseable {

    private static final int CHUNK = 64 * 1024;

    final int port;
    private final Path path;
    private final PatternStream toGuest;
    private final PatternStream fromGuest;
    private final SoakSum sentSum = new SoakSum();
    private final SoakSum receivedSum = new SoakSum();
    private final AtomicLong received = new AtomicLong();
    private final AtomicLong sent = new AtomicLong();
    private final AtomicLong corrupt = new AtomicLong();
    private volatile String firstError;
    private volatile SocketChannel channel;
    private volatile Thread reader;
    private final byte[] out = new byte[CHUNK];

    SoakPeer(final int port, final Path path, final long seedBase) {
        this.port = port;
        this.path = path;
        this.fromGuest = new PatternStream(seedBase ^ 1);
        this.toGuest = new PatternStream(seedBase ^ 2);
    }

    /** (Re)connects, retrying while the chardev is between clients. */
    void connect(final long timeoutMs) throws IOException, InterruptedException {
        final long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        IOException last = null;
        while (System.nanoTime() < deadline) {
            final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
                channel = ch;
                final Thread t = new Thread(() -> readLoop(ch), "soak-peer-" + port);
                t.setDaemon(true);
                reader = t;
                t.start();
                return;
            } catch (final IOException e) {
                ch.close();
                last = e;
            }
            Thread.sleep(50);
        }
        throw new IOException("port " + port + ": cannot connect to " + path, last);
    }

    private void readLoop(final SocketChannel ch) {
        final byte[] chunk = new byte[CHUNK];
        final byte[] expected = new byte[CHUNK];
        final ByteBuffer buf = ByteBuffer.wrap(chunk);
        try {
            while (true) {
                buf.clear();
                final int n = ch.read(buf);
                if (n < 0) {
                    return;
                }
                synchronized (fromGuest) {
                    fromGuest.fill(expected, 0, n);
                    for (int i = 0; i < n; i++) {
                        if (chunk[i] != expected[i]) {
                            corrupt.incrementAndGet();
                            if (firstError == null) {
                                firstError = String.format("port %d: guest-to-host byte %d is 0x%02x, expected 0x%02x",
                                    port, received.get() + i, chunk[i] & 0xff, expected[i] & 0xff);
                            }
                            break;
                        }
                    }
                    receivedSum.update(chunk, 0, n);
                    received.addAndGet(n);
                }
            }
        } catch (final IOException e) {
            // closed by close() or by the bridge; what arrived was counted
        }
    }

    /** Writes the next {@code bytes} of the host-to-guest pattern (blocking: backpressure is the bridge's). */
    void send(final long bytes) throws IOException {
        final ByteBuffer buf = ByteBuffer.wrap(out);
        long left = bytes;
        while (left > 0) {
            final int n = (int) Math.min(left, CHUNK);
            toGuest.fill(out, 0, n);
            sentSum.update(out, 0, n);
            buf.clear().limit(n);
            while (buf.hasRemaining()) {
                channel.write(buf);
            }
            left -= n;
            sent.addAndGet(n);
        }
    }

    long received() {
        return received.get();
    }

    long sent() {
        return sent.get();
    }

    long corrupt() {
        return corrupt.get();
    }

    String firstError() {
        return firstError;
    }

    String receivedSum() {
        synchronized (fromGuest) {
            return receivedSum.hex();
        }
    }

    String sentSum() {
        return sentSum.hex();
    }

    /** Closes the connection and waits for the reader, so no byte is counted after this returns. */
    @Override
    public void close() throws InterruptedException {
        final SocketChannel ch = channel;
        if (ch != null) {
            try {
                ch.close();
            } catch (final IOException e) {
                // already gone
            }
        }
        final Thread t = reader;
        if (t != null) {
            t.join(10_000);
        }
    }
}
