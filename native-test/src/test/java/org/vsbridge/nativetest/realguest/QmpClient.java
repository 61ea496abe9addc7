package org.vsbridge.nativetest.realguest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A small QMP client (one JSON object per line): reads the greeting, negotiates capabilities,
 * runs commands one at a time and keeps every event it receives, in order.
 */
final class QmpClient implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final BufferedReader in;
    private final JsonNode greeting;
    private final List<JsonNode> events = new CopyOnWriteArrayList<>();
    private final BlockingQueue<JsonNode> replies = new LinkedBlockingQueue<>();
    private final Thread reader;
    private volatile String failure;

    private QmpClient(final SocketChannel channel) throws IOException {
        this.channel = channel;
        this.in = new BufferedReader(new InputStreamReader(new ChannelIn(channel), StandardCharsets.UTF_8));
        final String first = in.readLine();
        if (first == null) {
            throw new IOException("QMP: connection closed before the greeting");
        }
        greeting = JSON.readTree(first);
        if (!greeting.has("QMP")) {
            throw new IOException("QMP: expected a greeting, got " + first);
        }
        reader = new Thread(this::readLoop, "qmp-client");
        reader.setDaemon(true);
        reader.start();
    }

    /** Connects, retrying until {@code timeoutMillis}, and completes {@code qmp_capabilities}. */
    static QmpClient connect(final Endpoint endpoint, final long timeoutMillis) throws IOException, InterruptedException {
        final long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        IOException last = null;
        while (System.nanoTime() < deadline) {
            final SocketChannel ch;
            try {
                ch = endpoint.open();
            } catch (final IOException e) {
                last = e;
                Thread.sleep(50);
                continue;
            }
            final QmpClient qmp = new QmpClient(ch);
            final JsonNode r = qmp.execute("{\"execute\":\"qmp_capabilities\"}", 10_000);
            if (!r.has("return")) {
                qmp.close();
                throw new IOException("QMP: qmp_capabilities failed: " + r);
            }
            return qmp;
        }
        throw new IOException("QMP: cannot connect to " + endpoint + " within " + timeoutMillis + " ms", last);
    }

    JsonNode greeting() {
        return greeting;
    }

    /** Sends one command line and waits for its reply ({@code return} or {@code error}). */
    synchronized JsonNode execute(final String json, final long timeoutMillis) throws IOException, InterruptedException {
        final ByteBuffer buf = ByteBuffer.wrap((json + "\r\n").getBytes(StandardCharsets.UTF_8));
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
        final JsonNode r = replies.poll(timeoutMillis, TimeUnit.MILLISECONDS);
        if (r == null) {
            throw new IOException("QMP: no reply to " + json + " within " + timeoutMillis + " ms"
                + (failure != null ? " (" + failure + ")" : ""));
        }
        return r;
    }

    /** Every event so far, oldest first. */
    List<JsonNode> events() {
        return List.copyOf(events);
    }

    private void readLoop() {
        try {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                final JsonNode node = JSON.readTree(line);
                if (node.has("event")) {
                    events.add(node);
                } else {
                    replies.add(node);
                }
            }
            failure = "connection closed";
        } catch (final IOException e) {
            failure = e.toString();
        }
    }

    boolean isOpen() {
        return failure == null && channel.isOpen();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    /**
     * Reads the channel without {@code Channels.newInputStream}, whose blocking read holds the
     * channel's blocking lock and would stall every write while the reader waits for an event.
     */
    private static final class ChannelIn extends InputStream {
        private final SocketChannel channel;

        ChannelIn(final SocketChannel channel) {
            this.channel = channel;
        }

        @Override
        public int read() throws IOException {
            final byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(final byte[] b, final int off, final int len) throws IOException {
            return channel.read(ByteBuffer.wrap(b, off, len));
        }
    }
}
