package org.vsbridge.nativetest.kit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;
import org.awaitility.core.ConditionTimeoutException;

/**
 * A QMP client (one JSON object per line) for the bridge's QMP and QEMU's: reads the greeting, negotiates
 * capabilities, runs commands (several may be in flight: each carries an {@code id} and its reply is found by it)
 * and keeps every event it receives, in arrival order.
 */
public final class QmpClient implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final SocketChannel channel;
    private final JsonNode greeting;
    private final List<JsonNode> events = new ArrayList<>();
    /** Commands waiting for their reply, by id, and in the order they were sent (for replies without an id). */
    private final Map<JsonNode, CompletableFuture<JsonNode>> pending = new HashMap<>();
    private final Deque<JsonNode> order = new ArrayDeque<>();
    private final AtomicLong ids = new AtomicLong();
    private volatile String failure;

    private QmpClient(final SocketChannel channel) throws IOException {
        this.channel = channel;
        final BufferedReader in = new BufferedReader(new InputStreamReader(new ChannelIn(channel), StandardCharsets.UTF_8));
        final String first = in.readLine();
        if (first == null) {
            throw new IOException("QMP: connection closed before the greeting");
        }
        greeting = JSON.readTree(first);
        if (!greeting.has("QMP")) {
            throw new IOException("QMP: expected a greeting, got " + first);
        }
        final Thread reader = new Thread(() -> readLoop(in), "qmp-client");
        reader.setDaemon(true);
        reader.start();
    }

    /** Connects to a unix socket (retrying while it is not there yet) and completes {@code qmp_capabilities}. */
    public static QmpClient connect(final Path unixSocket, final Duration timeout) throws IOException {
        return connect(Endpoint.unix(unixSocket), timeout);
    }

    /** Connects (retrying while nobody listens yet) and completes {@code qmp_capabilities}. */
    public static QmpClient connect(final Endpoint endpoint, final Duration timeout) throws IOException {
        final SocketChannel ch = endpoint.connect(timeout);
        final QmpClient qmp;
        try {
            qmp = new QmpClient(ch);
        } catch (final IOException e) {
            ch.close();
            throw e;
        }
        final JsonNode r = qmp.execute("qmp_capabilities", Duration.ofSeconds(10));
        if (!r.has("return")) {
            qmp.close();
            throw new IOException("QMP: qmp_capabilities failed: " + r);
        }
        return qmp;
    }

    public JsonNode greeting() {
        return greeting;
    }

    /** Runs a command without arguments; returns the whole reply ({"return":...} or {"error":...}). */
    public JsonNode execute(final String command, final Duration timeout) throws IOException {
        return await(submit(command, null), command, timeout);
    }

    /** Runs a command with arguments (strings, numbers, booleans, maps, lists); returns the whole reply. */
    public JsonNode execute(final String command, final Map<String, ?> arguments, final Duration timeout)
        throws IOException {
        return await(submit(command, arguments), command, timeout);
    }

    /** Runs one command given as JSON text (an {@code id} is added when it has none); returns the whole reply. */
    public JsonNode executeJson(final String json, final Duration timeout) throws IOException {
        return await(submitJson(json), json, timeout);
    }

    /** Sends a command and returns at once; the future completes with its reply. */
    public CompletableFuture<JsonNode> submit(final String command, final Map<String, ?> arguments) throws IOException {
        final ObjectNode cmd = JSON.createObjectNode().put("execute", command);
        if (arguments != null) {
            cmd.set("arguments", JSON.valueToTree(arguments));
        }
        return send(cmd);
    }

    /** Sends a command given as JSON text and returns at once; the future completes with its reply. */
    public CompletableFuture<JsonNode> submitJson(final String json) throws IOException {
        final JsonNode node = JSON.readTree(json);
        if (!(node instanceof ObjectNode cmd)) {
            throw new IllegalArgumentException("not a QMP command: " + json);
        }
        return send(cmd);
    }

    private CompletableFuture<JsonNode> send(final ObjectNode cmd) throws IOException {
        if (!cmd.has("id")) {
            cmd.put("id", "kit-" + ids.incrementAndGet());
        }
        final JsonNode id = cmd.get("id");
        final CompletableFuture<JsonNode> reply = new CompletableFuture<>();
        synchronized (pending) {
            if (failure != null) {
                throw new IOException("QMP: " + failure);
            }
            pending.put(id, reply);
            order.add(id);
        }
        // Straight to the channel, not through Channels.newOutputStream, whose writes would wait for the blocking
        // lock that a stream reader holds while it waits for input.
        final ByteBuffer b = ByteBuffer.wrap((JSON.writeValueAsString(cmd) + "\r\n").getBytes(StandardCharsets.UTF_8));
        synchronized (channel) {
            while (b.hasRemaining()) {
                channel.write(b);
            }
        }
        return reply;
    }

    private JsonNode await(final CompletableFuture<JsonNode> reply, final String what, final Duration timeout)
        throws IOException {
        try {
            return reply.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final TimeoutException e) {
            throw new IOException("QMP: no reply to " + what + " within " + timeout
                + (failure != null ? " (" + failure + ")" : ""), e);
        } catch (final ExecutionException e) {
            throw new IOException("QMP: " + what + ": " + e.getCause().getMessage(), e.getCause());
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("QMP: interrupted waiting for the reply to " + what, e);
        }
    }

    private void readLoop(final BufferedReader in) {
        String why = "connection closed";
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
                    }
                } else {
                    reply(n);
                }
            }
        } catch (final IOException e) {
            why = e.toString();
        }
        synchronized (pending) {
            failure = why;
            final IOException gone = new IOException(why);
            pending.values().forEach(f -> f.completeExceptionally(gone));
            pending.clear();
            order.clear();
        }
    }

    /** A reply goes to the command of its id; one without (QMP cannot tell the id of what it could not parse) to
     *  the oldest command waiting. */
    private void reply(final JsonNode n) {
        final CompletableFuture<JsonNode> f;
        synchronized (pending) {
            final JsonNode id = n.has("id") && pending.containsKey(n.get("id")) ? n.get("id") : order.peekFirst();
            if (id == null) {
                return;
            }
            f = pending.remove(id);
            order.remove(id);
        }
        f.complete(n);
    }

    /** Every event so far, oldest first. */
    public List<JsonNode> events() {
        synchronized (events) {
            return List.copyOf(events);
        }
    }

    /** Waits for an event matching {@code filter} at or after index {@code from}; returns its index. */
    public int awaitEvent(final Predicate<JsonNode> filter, final int from, final Duration timeout, final String what) {
        try {
            return Waits.upTo(timeout, "QMP event " + what).until(() -> indexOf(filter, from), i -> i >= 0);
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError("QMP: no " + what + " within " + timeout + "; events: " + events(), e);
        }
    }

    /** The index of the first event matching {@code filter} at or after {@code from}, or -1. */
    public int indexOf(final Predicate<JsonNode> filter, final int from) {
        synchronized (events) {
            for (int i = Math.max(0, from); i < events.size(); i++) {
                if (filter.test(events.get(i))) {
                    return i;
                }
            }
        }
        return -1;
    }

    /** Events of {@code name}. */
    public static Predicate<JsonNode> event(final String name) {
        return n -> name.equals(n.path("event").asText());
    }

    public static Predicate<JsonNode> vserportChange(final String id, final boolean open) {
        return vserportChange(id).and(n -> n.path("data").path("open").asBoolean(!open) == open);
    }

    public static Predicate<JsonNode> vserportChange(final String id) {
        return event("VSERPORT_CHANGE").and(n -> id.equals(n.path("data").path("id").asText()));
    }

    public boolean isOpen() {
        return failure == null && channel.isOpen();
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }

    /**
     * Reads the channel without {@code Channels.newInputStream}, whose blocking read holds the channel's blocking
     * lock and would stall every write while the reader waits for an event.
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
