package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * The host side of one guest port: a client connection to the chardev socket that the bridge
 * (or QEMU) serves. A reader thread hands what arrives to the inbound expectations queued in
 * the order the guest will produce them (a pattern sink for guest-to-host, an echo for round
 * trips); a sender thread streams the pattern host-to-guest when the guest says it is ready.
 */
final class HostPeer implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(HostPeer.class.getName());

    private final String name;
    private final Endpoint endpoint;
    private final ConcurrentLinkedQueue<Inbound> inbound = new ConcurrentLinkedQueue<>();
    private final AtomicLong unexpected = new AtomicLong();
    private final AtomicLong totalReceived = new AtomicLong();
    private volatile SocketChannel channel;
    private volatile Thread reader;
    private volatile Sender sender;
    private volatile long lastReadNanos = System.nanoTime();
    private volatile boolean sawEof;

    HostPeer(final String name, final Endpoint endpoint) {
        this.name = name;
        this.endpoint = endpoint;
    }

    String name() {
        return name;
    }

    Endpoint endpoint() {
        return endpoint;
    }

    /** Connects, retrying while the chardev socket is not there yet. */
    synchronized void connect(final long timeoutMillis) throws IOException, InterruptedException {
        if (channel != null) {
            return;
        }
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try {
                final SocketChannel ch = endpoint.open();
                channel = ch;
                sawEof = false;
                final Thread t = new Thread(() -> readLoop(ch), "peer-" + name);
                t.setDaemon(true);
                reader = t;
                t.start();
                return;
            } catch (final IOException e) {
                last = e;
                Thread.sleep(50);
            }
        }
        throw new IOException("peer " + name + ": cannot connect to " + endpoint + " within " + timeoutMillis + " ms", last);
    }

    /** Closes the connection: the chardev sees its peer go away. Aborts a running sender. */
    synchronized void disconnect() throws InterruptedException {
        disconnect(false);
    }

    /**
     * Resets the connection (SO_LINGER 0: RST, not FIN). A FIN from a peer that still has bytes queued towards
     * a chardev that is not reading waits behind those bytes, as TCP orders them, so nobody can see that close
     * until the bytes are read; a reset is seen at once.
     */
    synchronized void abort() throws InterruptedException {
        disconnect(true);
    }

    private void disconnect(final boolean reset) throws InterruptedException {
        final SocketChannel ch = channel;
        channel = null;
        if (ch != null) {
            try {
                if (reset) {
                    ch.setOption(java.net.StandardSocketOptions.SO_LINGER, 0);
                }
                ch.close();
            } catch (final IOException e) {
                LOG.fine(() -> "peer " + name + ": close: " + e);
            }
        }
        final Thread t = reader;
        if (t != null) {
            t.join(5_000);
        }
        final Sender s = sender;
        if (s != null) {
            s.thread.join(5_000);
        }
    }

    boolean isConnected() {
        return channel != null;
    }

    boolean sawEof() {
        return sawEof;
    }

    /** Queues what the guest will send next on this port. */
    void expect(final Inbound in) {
        inbound.add(in);
    }

    /** Forgets queued expectations (after a killed VM, for example). */
    void clearExpectations() {
        inbound.clear();
    }

    long unexpectedBytes() {
        return unexpected.get();
    }

    long totalReceived() {
        return totalReceived.get();
    }

    /** Waits until nothing arrived for {@code quietMillis}, at most {@code timeoutMillis}. */
    void awaitQuiet(final long quietMillis, final long timeoutMillis) throws InterruptedException {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (System.nanoTime() < deadline
            && System.nanoTime() - lastReadNanos < TimeUnit.MILLISECONDS.toNanos(quietMillis)) {
            Thread.sleep(20);
        }
    }

    /** Streams {@code bytes} of the pattern to the chardev on a new thread. */
    synchronized Sender send(final GuestPattern pattern, final long bytes) throws IOException {
        final SocketChannel ch = channel;
        if (ch == null) {
            throw new IOException("peer " + name + " is not connected");
        }
        final Sender s = new Sender(ch, pattern, bytes);
        sender = s;
        s.thread.start();
        return s;
    }

    private void readLoop(final SocketChannel ch) {
        final byte[] array = new byte[64 * 1024];
        final ByteBuffer buf = ByteBuffer.wrap(array);
        try {
            while (true) {
                buf.clear();
                final int n = ch.read(buf);
                if (n < 0) {
                    sawEof = true;
                    LOG.info(() -> "peer " + name + ": chardev closed the connection");
                    return;
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
            }
        } catch (final IOException e) {
            if (channel == ch) {
                LOG.info(() -> "peer " + name + ": read failed: " + e);
            }
        }
    }

    private static void writeFully(final SocketChannel ch, final ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    @Override
    public void close() throws InterruptedException {
        disconnect();
    }

    /** Something the guest sends on this port. */
    interface Inbound {
        /** Takes bytes from {@code buf}; returns how many it took (stops at its own end). */
        int accept(byte[] buf, int off, int len, SocketChannel ch) throws IOException;

        boolean isComplete();
    }

    /** Guest-to-host bulk data, checked against the pattern. */
    record SinkInbound(GuestPattern.Sink sink) implements Inbound {
        @Override
        public int accept(final byte[] buf, final int off, final int len, final SocketChannel ch) {
            return sink.accept(buf, off, len);
        }

        @Override
        public boolean isComplete() {
            return sink.isComplete();
        }
    }

    /** Round trips: everything received goes straight back until {@code total} bytes were echoed. */
    static final class EchoInbound implements Inbound {
        private final long total;
        private final AtomicLong echoed = new AtomicLong();

        EchoInbound(final long total) {
            this.total = total;
        }

        @Override
        public int accept(final byte[] buf, final int off, final int len, final SocketChannel ch) throws IOException {
            final int n = (int) Math.min(len, total - echoed.get());
            writeFully(ch, ByteBuffer.wrap(buf, off, n));
            echoed.addAndGet(n);
            return n;
        }

        @Override
        public boolean isComplete() {
            return echoed.get() >= total;
        }

        long echoed() {
            return echoed.get();
        }

        long total() {
            return total;
        }
    }

    /** A host-to-guest stream in progress. */
    final class Sender {
        private final Thread thread;
        private final GuestPattern pattern;
        private final long bytes;
        private final AtomicLong sent = new AtomicLong();
        private volatile IOException error;
        private volatile boolean finished;

        private Sender(final SocketChannel ch, final GuestPattern pattern, final long bytes) {
            this.pattern = pattern;
            this.bytes = bytes;
            this.thread = new Thread(() -> run(ch), "send-" + name);
            this.thread.setDaemon(true);
        }

        private void run(final SocketChannel ch) {
            final byte[] array = pattern.array();
            try {
                while (sent.get() < bytes) {
                    final int n = (int) Math.min(GuestPattern.WINDOW, bytes - sent.get());
                    writeFully(ch, ByteBuffer.wrap(array, GuestPattern.indexOf(sent.get()), n));
                    sent.addAndGet(n);
                }
            } catch (final IOException e) {
                error = e;
            } finally {
                finished = true;
            }
        }

        long sent() {
            return sent.get();
        }

        long requested() {
            return bytes;
        }

        boolean finished() {
            return finished;
        }

        IOException error() {
            return error;
        }

        void await(final long timeoutMillis) throws InterruptedException {
            thread.join(timeoutMillis);
        }

        /** md5 of exactly what was written. */
        String md5() {
            return pattern.md5(sent.get());
        }
    }
}
