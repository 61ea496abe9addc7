package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.AsynchronousCloseException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.vsbridge.core.cli.BridgeConfig;

/**
 * A QMP client for tests, over a unix socket. A read runs on the calling thread and is bounded by
 * {@link #TIMEOUT_SECONDS} (a hang guard, not a measure: past it the socket is closed and the read fails). Reads and
 * writes use the channel itself, so a thread may write while another waits in {@link #read()} (not
 * {@code Channels.newInputStream}, whose blocking read holds the channel's lock). Nothing is read unless asked: a
 * client may stay deaf. Events met by {@link #call} are kept in {@link #events()}.
 */
public final class QmpTestClient implements AutoCloseable {

    /** How long one read may wait before the test fails. */
    public static final int TIMEOUT_SECONDS = 30;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Closes the socket of a read that waits too long. */
    private static final ScheduledExecutorService WATCHDOG = Executors.newSingleThreadScheduledExecutor(r -> {
        final Thread t = new Thread(r, "qmp-test-client-watchdog");
        t.setDaemon(true);
        return t;
    });

    private final SocketChannel channel;
    private final ByteBuffer incoming = ByteBuffer.allocate(1 << 16).flip();
    private final List<JsonNode> events = new ArrayList<>();
    private volatile boolean timedOut;
    private Bridge bridge;

    private QmpTestClient(final SocketChannel channel) {
        this.channel = channel;
    }

    /** Connects to the socket, reads nothing. */
    public static QmpTestClient open(final Path socket) throws IOException {
        final SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (final IOException e) {
            channel.close();
            throw e;
        }
        return new QmpTestClient(channel);
    }

    /** Connects, reads the greeting (asserting it is one) and negotiates with {@code qmp_capabilities}. */
    public static QmpTestClient connect(final Path socket) throws Exception {
        final QmpTestClient client = open(socket);
        try {
            assertTrue(client.read().has("QMP"), "a QMP greeting");
            assertTrue(client.call("qmp_capabilities", "{}").has("return"), "qmp_capabilities accepted");
            return client;
        } catch (final Exception | AssertionError e) {
            client.close();
            throw e;
        }
    }

    /**
     * Starts a Bridge of that config and connects to its QMP socket as {@link #connect} does; {@link #close()} closes
     * the connection, then the bridge.
     */
    public static QmpTestClient startBridge(final BridgeConfig config, final Path socket) throws Exception {
        final Bridge bridge = new Bridge(config, () -> { });
        try {
            bridge.start();
            final QmpTestClient client = connect(socket);
            client.bridge = bridge;
            return client;
        } catch (final Exception | AssertionError e) {
            bridge.close();
            throw e;
        }
    }

    /** The bridge {@link #startBridge} started, or null. */
    public Bridge bridge() {
        return bridge;
    }

    /** The socket, for tests that read or write it bytewise. */
    public SocketChannel channel() {
        return channel;
    }

    /** Events read by {@link #call} and {@link #awaitEvent}, oldest first; tests may add to it. */
    public List<JsonNode> events() {
        return events;
    }

    /** The next line the server sends, without its line end, or null when the server closed the connection. */
    public String readLine() throws IOException {
        final ScheduledFuture<?> guard = WATCHDOG.schedule(() -> {
            timedOut = true;
            channel.close();
            return null;
        }, TIMEOUT_SECONDS, TimeUnit.SECONDS);
        try {
            return nextLine();
        } catch (final AsynchronousCloseException e) {
            if (timedOut) {
                fail("nothing from the QMP server within " + TIMEOUT_SECONDS + " s");
            }
            throw e;
        } finally {
            guard.cancel(false);
        }
    }

    /** The next message, whatever it is; fails when the connection closes. */
    public JsonNode read() throws IOException {
        final String line = readLine();
        assertNotNull(line, "QMP connection closed");
        return JSON.readTree(line);
    }

    /** Sends the text as it is. */
    public void send(final String text) throws IOException {
        send(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Sends the bytes as they are. */
    public void send(final byte[] bytes) throws IOException {
        final ByteBuffer buf = ByteBuffer.wrap(bytes);
        while (buf.hasRemaining()) {
            channel.write(buf);
        }
    }

    /** Sends a command with its arguments (JSON text) and, unless null, the string {@code id}; reads nothing. */
    public void send(final String command, final String args, final String id) throws IOException {
        send("{\"execute\":\"" + command + "\",\"arguments\":" + args + (id == null ? "" : ",\"id\":\"" + id + "\"")
            + "}\r\n");
    }

    /** Sends the text and returns the next message, whatever it is. */
    public JsonNode exchange(final String text) throws Exception {
        send(text);
        return read();
    }

    /** One command and its reply; events read before the reply go to {@link #events()}. */
    public JsonNode call(final String command, final String args) throws Exception {
        send(command, args, null);
        JsonNode reply;
        while ((reply = read()).has("event")) {
            events.add(reply);
        }
        return reply;
    }

    /** The desc of the command's error reply, asserting it is one of class GenericError. */
    public String error(final String command, final String args) throws Exception {
        return error(command, args, "GenericError");
    }

    /** The desc of the command's error reply, asserting it is one of the given class. */
    public String error(final String command, final String args, final String errorClass) throws Exception {
        final JsonNode reply = call(command, args);
        assertTrue(reply.has("error"), reply.toString());
        assertEquals(errorClass, reply.get("error").get("class").asText());
        return reply.get("error").get("desc").asText();
    }

    /**
     * The first event of that name in {@link #events()}; until there is one, reads on (each read bounded), adding
     * what it reads to the list.
     */
    public JsonNode awaitEvent(final String name) throws Exception {
        while (true) {
            for (final JsonNode e : events) {
                if (e.has("event") && e.get("event").asText().equals(name)) {
                    return e;
                }
            }
            events.add(read());
        }
    }

    @Override
    public void close() throws IOException {
        try {
            channel.close();
        } finally {
            if (bridge != null) {
                bridge.close();
            }
        }
    }

    private String nextLine() throws IOException {
        final ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            final byte[] a = incoming.array();
            final int from = incoming.position();
            for (int i = from; i < incoming.limit(); i++) {
                if (a[i] == '\n') {
                    line.write(a, from, i - from);
                    incoming.position(i + 1);
                    return text(line);
                }
            }
            line.write(a, from, incoming.limit() - from);
            incoming.clear();
            final int n = channel.read(incoming);
            incoming.flip();
            if (n < 0) {
                return line.size() == 0 ? null : text(line);
            }
        }
    }

    private static String text(final ByteArrayOutputStream line) {
        final String s = line.toString(StandardCharsets.UTF_8);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }
}
