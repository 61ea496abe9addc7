package org.vsbridge.nativetest;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The host side of one port: a real client of the bridge's socket chardev (unix or tcp). It writes the
 * host-to-guest pattern and reads and checks the guest-to-host pattern, each on its own thread, so a slow
 * direction never holds up the other.
 */
final class HostPeer implements AutoCloseable {

    /** What one direction moved: bytes, their FNV-1a, and the time from first to last byte. */
    record Transfer(long bytes, String sum, long nanos) {
        double megabytesPerSecond() {
            return nanos <= 0 ? 0 : bytes / (nanos / 1e9) / 1e6;
        }
    }

    private static final int CHUNK = 64 * 1024;

    private final String label;
    private final SocketAddress address;
    private final StandardProtocolFamily family;
    private volatile SocketChannel channel;
    private final PatternStream toGuest;
    private final PatternStream fromGuest;
    private final Fnv1a64 sentSum = new Fnv1a64();
    private final Fnv1a64 receivedSum = new Fnv1a64();
    private volatile long received;
    private volatile long sent;

    private HostPeer(final String label, final SocketAddress address, final StandardProtocolFamily family,
                     final SocketChannel channel, final int port) {
        this.label = label;
        this.address = address;
        this.family = family;
        this.channel = channel;
        this.toGuest = PatternStream.hostToGuest(port);
        this.fromGuest = PatternStream.guestToHost(port);
    }

    /** Connects to a unix socket chardev, retrying while the bridge starts. */
    static HostPeer unix(final Path path, final int port, final Duration timeout) throws IOException {
        return connect("unix:" + path, UnixDomainSocketAddress.of(path), StandardProtocolFamily.UNIX, port, timeout);
    }

    /** Connects to a tcp socket chardev on 127.0.0.1, retrying while the bridge starts. */
    static HostPeer tcp(final int tcpPort, final int port, final Duration timeout) throws IOException {
        return connect("tcp:127.0.0.1:" + tcpPort, new InetSocketAddress("127.0.0.1", tcpPort),
            StandardProtocolFamily.INET, port, timeout);
    }

    private static HostPeer connect(final String label, final SocketAddress address, final StandardProtocolFamily family,
                                    final int port, final Duration timeout) throws IOException {
        return new HostPeer(label, address, family, open(label, address, family, timeout), port);
    }

    private static SocketChannel open(final String label, final SocketAddress address,
                                      final StandardProtocolFamily family, final Duration timeout) throws IOException {
        final long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            final SocketChannel ch = SocketChannel.open(family);
            try {
                ch.connect(address);
                return ch;
            } catch (final IOException e) {
                ch.close();
                last = e;
            }
            sleep(50);
        }
        throw new IOException("cannot connect to chardev " + label + " within " + timeout, last);
    }

    /** A new connection to the same chardev, after {@link #close()}; both patterns and sums carry on where they
     *  stopped, so the guest sees one stream across the connections. */
    void reconnect(final Duration timeout) throws IOException {
        channel = open(label, address, family, timeout);
    }

    /** Starts writing the next {@code bytes} of the host-to-guest pattern. */
    CompletableFuture<Transfer> send(final long bytes) {
        final CompletableFuture<Transfer> done = new CompletableFuture<>();
        final Thread t = new Thread(() -> {
            try {
                final byte[] chunk = new byte[CHUNK];
                final ByteBuffer buf = ByteBuffer.wrap(chunk);
                final long start = System.nanoTime();
                long left = bytes;
                while (left > 0) {
                    final int n = (int) Math.min(left, CHUNK);
                    toGuest.fill(chunk, 0, n);
                    sentSum.update(chunk, 0, n);
                    buf.clear().limit(n);
                    while (buf.hasRemaining()) {
                        channel.write(buf);
                    }
                    left -= n;
                    sent += n;
                }
                done.complete(new Transfer(bytes, sentSum.hex(), System.nanoTime() - start));
            } catch (final Throwable e) {
                done.completeExceptionally(new IOException(label + ": sending failed after " + sent + " bytes", e));
            }
        }, "peer-send-" + label);
        t.setDaemon(true);
        t.start();
        return done;
    }

    /** Starts reading exactly {@code bytes} more, each checked against the guest-to-host pattern. */
    CompletableFuture<Transfer> receive(final long bytes) {
        final CompletableFuture<Transfer> done = new CompletableFuture<>();
        final Thread t = new Thread(() -> {
            try {
                final byte[] chunk = new byte[CHUNK];
                final byte[] expected = new byte[CHUNK];
                final ByteBuffer buf = ByteBuffer.wrap(chunk);
                long start = 0;
                long left = bytes;
                while (left > 0) {
                    buf.clear().limit((int) Math.min(left, CHUNK));
                    final int n = channel.read(buf);
                    if (n < 0) {
                        throw new IOException("the bridge closed the connection after " + received + " bytes; "
                            + left + " more were expected");
                    }
                    if (start == 0) {
                        start = System.nanoTime();
                    }
                    fromGuest.fill(expected, 0, n);
                    for (int i = 0; i < n; i++) {
                        if (chunk[i] != expected[i]) {
                            throw new IOException(String.format("guest-to-host byte %d is 0x%02x, the pattern says 0x%02x",
                                received + i, chunk[i] & 0xff, expected[i] & 0xff));
                        }
                    }
                    receivedSum.update(chunk, 0, n);
                    received += n;
                    left -= n;
                }
                done.complete(new Transfer(bytes, receivedSum.hex(), System.nanoTime() - start));
            } catch (final Throwable e) {
                done.completeExceptionally(new IOException(label + ": receiving failed: " + e.getMessage(), e));
            }
        }, "peer-receive-" + label);
        t.setDaemon(true);
        t.start();
        return done;
    }

    long received() {
        return received;
    }

    long sent() {
        return sent;
    }

    String receivedSum() {
        return receivedSum.hex();
    }

    String label() {
        return label;
    }

    static Transfer await(final CompletableFuture<Transfer> f, final Duration timeout, final String what)
        throws Exception {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final TimeoutException e) {
            throw new AssertionError(what + ": not finished within " + timeout, e);
        } catch (final ExecutionException e) {
            throw new AssertionError(what + ": " + e.getCause().getMessage(), e.getCause());
        }
    }

    private static void sleep(final long ms) {
        try {
            Thread.sleep(ms);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
