package org.vsbridge.nativetest.kit;

import java.io.IOException;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.awaitility.core.ConditionTimeoutException;

/**
 * The host side of one port: a client of the chardev socket that the bridge (or QEMU) serves, or a connection the
 * test accepted from a chardev that connects out. One reader thread per connection hands what arrives to the
 * {@link Inbound} expectations queued in the order the guest will produce them; senders write on threads of their
 * own, so a slow direction never holds up the other.
 *
 * <p>Expectations: {@link #receive(long)} checks the port's guest-to-host pattern ({@link PatternStream}, the one
 * vsb-frontend writes) and sums it with FNV-1a; {@link #receiveToEnd()} takes the rest of the connection;
 * {@link #expect(Inbound)} queues any other (a real guest's pattern, an echo). With nothing queued the reader does
 * not read, so the bridge meets backpressure, unless {@link #discardUnexpected(boolean)} makes it read and count
 * stray bytes. The patterns, sums and counts belong to the peer, not to a connection: after {@link #reconnect} or
 * {@link #adopt} both streams carry on where they stopped, so the guest sees one stream across the connections.
 *
 * <p>Behaviours for the harder tests: {@link #pause(boolean)} stops reading; {@link #followReconnects(Duration)}
 * reads every connection to its end and connects again (a bridge killed and restarted on the same socket);
 * {@link #throttle(int, long)} reads slower than a guest writes.
 */
public final class HostPeer implements AutoCloseable {

    /** What one direction moved: bytes, their sum, and the time from the first to the last byte. */
    public record Transfer(long bytes, String sum, long nanos) {
        public double megabytesPerSecond() {
            return nanos <= 0 ? 0 : bytes / (nanos / 1e9) / 1e6;
        }
    }

    /** Something the guest sends on this port, fed by the reader thread only. */
    public interface Inbound {
        /** Takes bytes from {@code buf} up to its own end; returns how many it took. {@code ch} is for replies. */
        int accept(byte[] buf, int off, int len, SocketChannel ch) throws IOException;

        boolean isComplete();

        /** At most this many more bytes belong to it (the reader reads no further while holding back). */
        default long wanted() {
            return Long.MAX_VALUE;
        }

        /**
         * The connection ended ({@code why}) with this expectation not complete; returns true when it is finished
         * with (failed, or complete by definition) and leaves the queue. Not called while following reconnects.
         */
        default boolean connectionEnded(final String why) {
            return false;
        }
    }

    /** Bytes a sender writes. */
    public interface Source {
        /** The next bytes, at most {@code max} (at least one), ready to be written. */
        ByteBuffer next(int max);

        /** The sum of every byte handed out so far. */
        String sum();
    }

    private static final int CHUNK = 64 * 1024;
    private static final Duration FOLLOW_CONNECT = Duration.ofSeconds(60);

    private final String label;
    private final Endpoint endpoint;
    private final int port;
    private final PatternStream fromGuest;
    private final Fnv1a64 receivedSum = new Fnv1a64();
    private final Source toGuest;
    private final ConcurrentLinkedQueue<Inbound> inbound = new ConcurrentLinkedQueue<>();
    private final Object lock = new Object();
    private final AtomicLong received = new AtomicLong();
    private final AtomicLong totalReceived = new AtomicLong();
    private final AtomicLong unexpected = new AtomicLong();
    private final AtomicLong sent = new AtomicLong();
    private final List<Sender> senders = new ArrayList<>();
    private volatile SocketChannel channel;
    private volatile Thread reader;
    private volatile boolean discardUnexpected;
    private volatile boolean paused;
    private volatile boolean readerParked;
    private volatile Duration follow;
    private volatile int readChunk = CHUNK;
    private volatile long readPauseNanos;
    private volatile long lastReadNanos = System.nanoTime();
    private volatile long connectedAt;
    private volatile int connections;
    private volatile boolean sawEof;

    /**
     * A peer of the chardev at {@code endpoint}, not connected yet ({@link #connect}). {@code port} selects the
     * vsb-frontend patterns of {@link #receive(long)} and {@link #send(long)}.
     */
    public HostPeer(final String label, final Endpoint endpoint, final int port) {
        this.label = label;
        this.endpoint = endpoint;
        this.port = port;
        this.fromGuest = PatternStream.guestToHost(port);
        this.toGuest = patternSource(PatternStream.hostToGuest(port));
    }

    /** A connected peer of a unix socket chardev, retrying while the bridge starts. */
    public static HostPeer unix(final java.nio.file.Path path, final int port, final Duration timeout) throws IOException {
        return connected(new HostPeer("unix:" + path, Endpoint.unix(path), port), timeout);
    }

    /** A connected peer of a tcp socket chardev on 127.0.0.1, retrying while the bridge starts. */
    public static HostPeer tcp(final int tcpPort, final int port, final Duration timeout) throws IOException {
        return connected(new HostPeer("tcp:127.0.0.1:" + tcpPort, Endpoint.tcp(tcpPort), port), timeout);
    }

    private static HostPeer connected(final HostPeer p, final Duration timeout) throws IOException {
        p.connect(timeout);
        return p;
    }

    // ------------------------------------------------------------------ connections

    /** Connects, retrying while the chardev socket is not there yet; a no-op while connected. */
    public void connect(final Duration timeout) throws IOException {
        synchronized (lock) {
            if (channel != null) {
                return;
            }
        }
        start(endpoint.connect(timeout));
    }

    /** A new connection to the same chardev after {@link #close()}: both streams carry on where they stopped. */
    public void reconnect(final Duration timeout) throws IOException {
        connect(timeout);
    }

    /** Takes over a connection the test accepted (a chardev that connects out), in place of the current one. */
    public void adopt(final SocketChannel ch) throws IOException {
        disconnect(false);
        start(ch);
    }

    private void start(final SocketChannel ch) {
        synchronized (lock) {
            channel = ch;
            sawEof = false;
            connections++;
            connectedAt = System.nanoTime();
            final Thread t = new Thread(() -> readLoop(ch), "peer-" + label);
            t.setDaemon(true);
            reader = t;
            t.start();
        }
    }

    /** Closes the connection (FIN): the chardev sees its peer go away. Senders on it fail. */
    @Override
    public void close() {
        disconnect(false);
    }

    /**
     * Resets the connection (SO_LINGER 0: RST, not FIN). A FIN from a peer that still has bytes queued towards a
     * chardev that is not reading waits behind those bytes, as TCP orders them, so nobody sees that close until the
     * bytes are read; a reset is seen at once.
     */
    public void abort() {
        disconnect(true);
    }

    private void disconnect(final boolean reset) {
        final SocketChannel ch;
        final Thread t;
        synchronized (lock) {
            ch = channel;
            t = reader;
            channel = null;
            lock.notifyAll();
        }
        if (ch != null) {
            try {
                if (reset) {
                    ch.setOption(StandardSocketOptions.SO_LINGER, 0);
                }
                ch.close();
            } catch (final IOException e) {
                // gone already
            }
        }
        join(t);
        if (ch != null && follow == null) {
            endExpectations("the test closed the connection");
        }
        final List<Sender> running;
        synchronized (senders) {
            running = List.copyOf(senders);
        }
        for (final Sender s : running) {
            if (s.channel == ch) {
                join(s.thread);
            }
        }
    }

    private static void join(final Thread t) {
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(5_000);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    public boolean isConnected() {
        return channel != null;
    }

    /** The chardev ended the last connection (EOF). */
    public boolean sawEof() {
        return sawEof;
    }

    /** Connections made so far (the first included). */
    public int connections() {
        return connections;
    }

    /** {@link System#nanoTime()} of the latest connection. */
    public long connectedAt() {
        return connectedAt;
    }

    // ------------------------------------------------------------------ behaviours

    /** Read (and count) bytes that no expectation wants, instead of leaving them in the socket. */
    public HostPeer discardUnexpected(final boolean on) {
        discardUnexpected = on;
        wake();
        return this;
    }

    /** Stop (true) or resume (false) reading, so that the chardev's socket towards this peer fills up. */
    public void pause(final boolean on) {
        paused = on;
        wake();
    }

    /** The reader is waiting (paused, or nothing to read for) rather than reading or in a read. */
    public boolean readerParked() {
        return readerParked;
    }

    /**
     * When the chardev ends a connection (EOF or reset: its bridge died), connect again {@code comeBackAfter}
     * later (retrying for a minute) and carry on reading; expectations stay queued across connections.
     */
    public HostPeer followReconnects(final Duration comeBackAfter) {
        follow = comeBackAfter;
        return this;
    }

    /** Read at most {@code chunk} bytes at a time and rest {@code pauseNanos} after each read. */
    public HostPeer throttle(final int chunk, final long pauseNanos) {
        readChunk = Math.max(1, Math.min(CHUNK, chunk));
        readPauseNanos = pauseNanos;
        return this;
    }

    private void wake() {
        synchronized (lock) {
            lock.notifyAll();
        }
    }

    // ------------------------------------------------------------------ guest to host

    /** Queues what the guest will send next on this port. */
    public void expect(final Inbound in) {
        inbound.add(in);
        wake();
    }

    /** Forgets queued expectations (after a killed VM, for example). */
    public void clearExpectations() {
        inbound.clear();
    }

    /** Reads exactly {@code bytes} more, each checked against the port's guest-to-host pattern. */
    public CompletableFuture<Transfer> receive(final long bytes) {
        final PatternInbound in = new PatternInbound(bytes);
        expect(in);
        return in.done;
    }

    /** Reads everything until the chardev ends this connection, checked against the pattern. */
    public CompletableFuture<Transfer> receiveToEnd() {
        final PatternInbound in = new PatternInbound(-1);
        expect(in);
        return in.done;
    }

    /** Bytes taken by {@link #receive} and {@link #receiveToEnd} (pattern-checked). */
    public long received() {
        return received.get();
    }

    /** The FNV-1a of those bytes. */
    public String receivedSum() {
        synchronized (receivedSum) {
            return receivedSum.hex();
        }
    }

    /** Every byte read, whoever took it. */
    public long totalReceived() {
        return totalReceived.get();
    }

    /** Bytes read while no expectation was queued ({@link #discardUnexpected}). */
    public long unexpectedBytes() {
        return unexpected.get();
    }

    /** {@link System#nanoTime()} of the latest read. */
    public long lastReadNanos() {
        return lastReadNanos;
    }

    private void readLoop(SocketChannel ch) {
        final byte[] array = new byte[CHUNK];
        final ByteBuffer buf = ByteBuffer.wrap(array);
        while (true) {
            String ended;
            try {
                ended = readConnection(ch, array, buf);
            } catch (final InterruptedException e) {
                return;
            }
            if (ended == null) {
                return; // closed or replaced by the test, or an expectation failed: stop reading
            }
            final Duration again = follow;
            synchronized (lock) {
                if (channel != ch) {
                    return;
                }
            }
            if (again == null) {
                endExpectations(ended);
                return;
            }
            // Pacing of the scenario (come back late), not a wait for anything.
            LockSupport.parkNanos(again.toNanos());
            final SocketChannel next;
            try {
                next = endpoint.connect(FOLLOW_CONNECT);
            } catch (final IOException e) {
                endExpectations(ended + ", and no new connection: " + e.getMessage());
                return;
            }
            synchronized (lock) {
                if (channel != ch) {
                    closeQuietly(next);
                    return;
                }
                channel = next;
                sawEof = false;
                connections++;
                connectedAt = System.nanoTime();
            }
            ch = next;
        }
    }

    /** Reads one connection; returns why it ended, or null when the test ended it or reading must stop. */
    private String readConnection(final SocketChannel ch, final byte[] array, final ByteBuffer buf)
        throws InterruptedException {
        try {
            while (true) {
                final long limit;
                synchronized (lock) {
                    while (channel == ch && (paused || (inbound.isEmpty() && !discardUnexpected))) {
                        readerParked = true;
                        lock.wait();
                    }
                    readerParked = false;
                    if (channel != ch) {
                        return null;
                    }
                    final Inbound head = inbound.peek();
                    limit = head != null && !discardUnexpected ? Math.min(readChunk, head.wanted()) : readChunk;
                }
                buf.clear().limit((int) Math.max(1, limit));
                final int n = ch.read(buf);
                if (n < 0) {
                    sawEof = true;
                    return "the chardev closed the connection";
                }
                lastReadNanos = System.nanoTime();
                totalReceived.addAndGet(n);
                int pos = 0;
                while (pos < n) {
                    final Inbound in = inbound.peek();
                    if (in == null) {
                        unexpected.addAndGet(n - pos);
                        break;
                    }
                    pos += in.accept(array, pos, n - pos, ch);
                    if (in.isComplete()) {
                        inbound.poll();
                    }
                }
                if (readPauseNanos > 0) {
                    LockSupport.parkNanos(readPauseNanos); // pacing: slower than the guest
                }
            }
        } catch (final Mismatch e) {
            return null;
        } catch (final ClosedChannelException e) {
            return channel == ch ? "the connection was closed: " + e : null;
        } catch (final IOException e) {
            return channel == ch ? "the connection failed: " + e.getMessage() : null;
        }
    }

    private void endExpectations(final String why) {
        inbound.removeIf(in -> in.connectionEnded(why));
    }

    private static void closeQuietly(final SocketChannel ch) {
        try {
            ch.close();
        } catch (final IOException e) {
            // closing anyway
        }
    }

    /** A pattern check failed: the reader stops (the guest stalls, the test fails on the expectation's future). */
    private static final class Mismatch extends IOException {
        Mismatch(final String message) {
            super(message);
        }
    }

    /** The port's guest-to-host pattern: {@code expected} bytes, or (-1) until the connection ends. */
    private final class PatternInbound implements Inbound {
        private final long expected;
        private final CompletableFuture<Transfer> done = new CompletableFuture<>();
        private final byte[] want = new byte[CHUNK];
        private long got;
        private long start;

        PatternInbound(final long expected) {
            this.expected = expected;
            if (expected == 0) {
                done.complete(new Transfer(0, receivedSum(), 0));
            }
        }

        @Override
        public int accept(final byte[] buf, final int off, final int len, final SocketChannel ch) throws IOException {
            final int n = (int) Math.min(len, expected < 0 ? len : expected - got);
            if (start == 0) {
                start = System.nanoTime();
            }
            fromGuest.fill(want, 0, n);
            final int bad = java.util.Arrays.mismatch(buf, off, off + n, want, 0, n);
            if (bad >= 0 && bad < n) {
                final long at = received.get() + bad;
                final Mismatch m = new Mismatch(String.format("%s: guest-to-host byte %d is 0x%02x, the pattern says "
                    + "0x%02x (connection %d); %s", label, at, buf[off + bad] & 0xff, want[bad] & 0xff, connections,
                    whereFrom(buf, off + bad, n - bad, at)));
                done.completeExceptionally(m);
                throw m;
            }
            synchronized (receivedSum) {
                receivedSum.update(buf, off, n);
            }
            received.addAndGet(n);
            got += n;
            if (expected >= 0 && got == expected) {
                done.complete(new Transfer(got, receivedSum(), System.nanoTime() - start));
            }
            return n;
        }

        @Override
        public boolean isComplete() {
            return done.isDone();
        }

        @Override
        public long wanted() {
            return expected < 0 ? Long.MAX_VALUE : expected - got;
        }

        @Override
        public boolean connectionEnded(final String why) {
            if (expected < 0) {
                done.complete(new Transfer(got, receivedSum(), start == 0 ? 0 : System.nanoTime() - start));
            } else {
                done.completeExceptionally(new IOException(label + ": " + why + " after " + received.get()
                    + " bytes; " + (expected - got) + " more were expected"));
            }
            return true;
        }
    }

    /** Which part of the pattern the bytes at {@code off} are: a repeat (duplicate), a jump ahead (loss) or none. */
    private String whereFrom(final byte[] buf, final int off, final int len, final long offset) {
        final int n = Math.min(64, len);
        if (n < 16) {
            return "too few bytes to tell where they come from";
        }
        final long limit = Math.min(offset + (64L << 20), 256L << 20);
        final PatternStream stream = PatternStream.guestToHost(port);
        final byte[] window = new byte[CHUNK + 64];
        stream.fill(window, 0, window.length);
        for (long base = 0; base < limit; base += CHUNK) {
            for (int k = 0; k < CHUNK; k++) {
                if (java.util.Arrays.equals(window, k, k + n, buf, off, off + n)) {
                    final long at = base + k;
                    return "they are the stream's bytes from offset " + at + " (" + (at < offset ? "repeated: "
                        + (offset - at) + " bytes again" : "ahead: " + (at - offset) + " bytes lost") + ")";
                }
            }
            System.arraycopy(window, CHUNK, window, 0, 64);
            stream.fill(window, 64, CHUNK);
        }
        return "they are nowhere in the first " + limit + " bytes of the stream";
    }

    // ------------------------------------------------------------------ host to guest

    /** Starts writing the next {@code bytes} of the port's host-to-guest pattern. */
    public CompletableFuture<Transfer> send(final long bytes) throws IOException {
        return send(toGuest, bytes).done();
    }

    /** Starts writing {@code bytes} from {@code source} on the current connection, on a thread of its own. */
    public Sender send(final Source source, final long bytes) throws IOException {
        final SocketChannel ch = channel;
        if (ch == null) {
            throw new IOException("peer " + label + " is not connected");
        }
        final Sender s = new Sender(ch, source, bytes);
        synchronized (senders) {
            senders.removeIf(Sender::finished);
            senders.add(s);
        }
        s.thread.start();
        return s;
    }

    /** Bytes of the port's host-to-guest pattern written so far. */
    public long sent() {
        return sent.get();
    }

    /** The vsb-frontend pattern as a source, FNV-1a summed. */
    private Source patternSource(final PatternStream stream) {
        return new Source() {
            private final byte[] chunk = new byte[CHUNK];
            private final Fnv1a64 sum = new Fnv1a64();

            @Override
            public ByteBuffer next(final int max) {
                final int n = Math.min(max, CHUNK);
                stream.fill(chunk, 0, n);
                sum.update(chunk, 0, n);
                return ByteBuffer.wrap(chunk, 0, n);
            }

            @Override
            public String sum() {
                return sum.hex();
            }
        };
    }

    /** A host-to-guest stream in progress. */
    public final class Sender {
        private final SocketChannel channel;
        private final Thread thread;
        private final Source source;
        private final long bytes;
        private final AtomicLong written = new AtomicLong();
        private final CompletableFuture<Transfer> done = new CompletableFuture<>();
        private volatile IOException error;

        private Sender(final SocketChannel channel, final Source source, final long bytes) {
            this.channel = channel;
            this.source = source;
            this.bytes = bytes;
            this.thread = new Thread(this::run, "peer-send-" + label);
            this.thread.setDaemon(true);
        }

        private void run() {
            final long start = System.nanoTime();
            try {
                // One source may feed several senders in turn (the port's pattern): one at a time.
                synchronized (source) {
                    while (written.get() < bytes) {
                        final ByteBuffer b = source.next((int) Math.min(CHUNK, bytes - written.get()));
                        final int n = b.remaining();
                        while (b.hasRemaining()) {
                            channel.write(b);
                        }
                        written.addAndGet(n);
                        if (source == toGuest) {
                            sent.addAndGet(n);
                        }
                    }
                    done.complete(new Transfer(bytes, source.sum(), System.nanoTime() - start));
                }
            } catch (final IOException e) {
                error = e;
                done.completeExceptionally(new IOException(label + ": sending failed after " + written.get()
                    + " bytes", e));
            }
        }

        public long sent() {
            return written.get();
        }

        public long requested() {
            return bytes;
        }

        public boolean finished() {
            return done.isDone();
        }

        public IOException error() {
            return error;
        }

        /** Completes when every byte is written, exceptionally when the connection failed. */
        public CompletableFuture<Transfer> done() {
            return done;
        }

        /** Waits at most {@code timeout} for the sender to finish. */
        public void await(final Duration timeout) throws InterruptedException {
            thread.join(Math.max(1, timeout.toMillis()));
        }

        /** The source's sum of what was handed out (everything, once finished). */
        public String sum() {
            return source.sum();
        }
    }

    // ------------------------------------------------------------------ waiting

    /** The transfer of {@code f}, failing with {@code what} when it failed or did not finish within {@code timeout}. */
    public static Transfer await(final CompletableFuture<Transfer> f, final Duration timeout, final String what)
        throws InterruptedException {
        try {
            return f.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final TimeoutException e) {
            throw new AssertionError(what + ": not finished within " + timeout, e);
        } catch (final ExecutionException e) {
            throw new AssertionError(what + ": " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** Waits until this peer has taken {@code bytes} pattern-checked bytes in all (or its expectation failed). */
    public void awaitReceived(final long bytes, final Duration timeout) {
        try {
            Waits.upTo(timeout, label + " received " + bytes + " bytes").until(() -> received.get() >= bytes);
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError(label + ": received " + received.get() + " of " + bytes + " bytes within "
                + timeout, e);
        }
    }

    /**
     * Waits until nothing arrived for {@code quiet} (at most {@code timeout}): for bytes of a guest that is gone,
     * which no check expects, to be read before the next guest starts.
     */
    public void awaitQuiet(final Duration quiet, final Duration timeout) {
        Waits.upTo(timeout, label + " quiet for " + quiet)
            .until(() -> System.nanoTime() - lastReadNanos >= quiet.toNanos());
    }

    public String label() {
        return label;
    }

    /** Where the peer stands, for failure messages. */
    @Override
    public String toString() {
        return label + " (connection " + connections + (channel != null ? ", connected" : ", not connected")
            + (sawEof ? ", saw EOF" : "") + (paused ? ", paused" : "") + (readerParked ? ", reader waiting" : "")
            + "): received " + received.get() + " pattern bytes, " + totalReceived.get() + " in all, "
            + unexpected.get() + " unexpected; sent " + sent.get() + "; " + inbound.size() + " expectations queued";
    }

    public Endpoint endpoint() {
        return endpoint;
    }
}
