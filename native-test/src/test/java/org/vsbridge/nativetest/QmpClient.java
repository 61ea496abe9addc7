package org.vsbridge.nativetest;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** A QMP client over a unix socket: greeting, qmp_capabilities, commands, and every event kept in arrival order. */
final class QmpClient implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final BlockingQueue<JsonNode> replies = new LinkedBlockingQueue<>();
    private final List<JsonNode> events = new ArrayList<>();
    private final JsonNode greeting;

    private QmpClient(final SocketChannel channel) throws IOException {
        this.channel = channel;
        final BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel),
            StandardCharsets.UTF_8));
        final String first = in.readLine();
        if (first == null) {
            throw new IOException("QMP: connection closed before the greeting");
        }
        this.greeting = JSON.readTree(first);
        if (!greeting.has("QMP")) {
            throw new IOException("QMP: greeting has no QMP member: " + first);
        }
        final Thread reader = new Thread(() -> readLoop(in), "qmp-reader");
        reader.setDaemon(true);
        reader.start();
    }

    static QmpClient connect(final Path path, final Duration timeout) throws Exception {
        final long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
                final QmpClient c = new QmpClient(ch);
                final JsonNode r = c.execute("qmp_capabilities", Duration.ofSeconds(10));
                if (!r.has("return")) {
                    throw new IOException("qmp_capabilities failed: " + r);
                }
                return c;
            } catch (final IOException e) {
                ch.close();
                last = e;
            }
            Thread.sleep(50);
        }
        throw new IOException("cannot open QMP at " + path + " within " + timeout, last);
    }

    private void readLoop(final BufferedReader in) {
        try {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isBlank()) {
                    continue;
                }
                final JsonNode n = JSON.readTree(line);
                if (n.has("event")) {
                    synchronized (events) {
                        events.add(n);
                        events.notifyAll();
                    }
                } else {
                    replies.add(n);
                }
            }
        } catch (final IOException e) {
            // closed
        }
    }

    JsonNode greeting() {
        return greeting;
    }

    /** Runs a command and returns the whole reply object ({"return":...} or {"error":...}). */
    JsonNode execute(final String command, final Duration timeout) throws IOException, InterruptedException {
        return send("{\"execute\":\"" + command + "\"}", command, timeout);
    }

    /** Runs a command with arguments (each value a string or a number) and returns the whole reply object. */
    JsonNode execute(final String command, final Map<String, Object> arguments, final Duration timeout)
        throws IOException, InterruptedException {
        final ObjectNode cmd = JSON.createObjectNode().put("execute", command);
        cmd.set("arguments", JSON.valueToTree(arguments));
        return send(JSON.writeValueAsString(cmd), command, timeout);
    }

    private JsonNode send(final String json, final String command, final Duration timeout)
        throws IOException, InterruptedException {
        // Straight to the channel: a stream from Channels.newOutputStream would wait for the blocking lock the
        // reader thread holds while it waits in read().
        final ByteBuffer b = ByteBuffer.wrap((json + "\r\n").getBytes(StandardCharsets.UTF_8));
        synchronized (channel) {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }
        final JsonNode r = replies.poll(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (r == null) {
            throw new AssertionError("QMP: no reply to " + command + " within " + timeout);
        }
        return r;
    }

    /** Waits for an event matching {@code filter} that arrived at or after index {@code from}; returns its index. */
    int awaitEvent(final Predicate<JsonNode> filter, final int from, final Duration timeout, final String what)
        throws InterruptedException {
        final long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (events) {
            int i = from;
            while (true) {
                for (; i < events.size(); i++) {
                    if (filter.test(events.get(i))) {
                        return i;
                    }
                }
                final long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("QMP: no " + what + " within " + timeout + "; events: " + events);
                }
                events.wait(Math.max(1, left / 1_000_000));
            }
        }
    }

    List<JsonNode> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    static Predicate<JsonNode> vserportChange(final String id, final boolean open) {
        return vserportChange(id).and(n -> n.path("data").path("open").asBoolean(!open) == open);
    }

    static Predicate<JsonNode> vserportChange(final String id) {
        return n -> "VSERPORT_CHANGE".equals(n.path("event").asText()) && id.equals(n.path("data").path("id").asText());
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
