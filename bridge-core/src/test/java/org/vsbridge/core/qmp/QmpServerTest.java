package org.vsbridge.core.qmp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.channel.EventLoopGroup;
import org.vsbridge.chardev.Transports;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** QMP over a real Unix socket, checked line by line as a client such as python's qemu.qmp sees it. */
class QmpServerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private EventLoopGroup group;
    private QmpServer server;
    private final AtomicInteger quits = new AtomicInteger();

    @BeforeEach
    void start() throws IOException {
        group = Transports.newEventLoopGroup(1, "qmp-test");
        final var version = JSON.createObjectNode();
        version.putObject("qemu").put("major", 0).put("minor", 1).put("micro", 0);
        version.put("package", "test");
        server = new QmpServer(group, QmpAddress.parse("unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off"),
            version, quits::incrementAndGet);
        server.register(new QmpCommand("echo", QmpCommand.ordered("text", QmpCommand.Param.required(QmpCommand.Type.STRING),
            "times", QmpCommand.Param.optional(QmpCommand.Type.INT)), args -> JSON.getNodeFactory().textNode(
            args.get("text").asText().repeat(args.has("times") ? args.get("times").asInt() : 1))));
        server.register(new QmpCommand("quit", Map.of(), args -> JSON.createObjectNode()));
        server.start();
    }

    @AfterEach
    void stop() {
        server.close();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private final class Client implements AutoCloseable {
        final SocketChannel channel;
        final BufferedReader in;
        final OutputStream out;

        Client() throws IOException {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(dir.resolve("qmp.sock")));
            in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
            out = Channels.newOutputStream(channel);
        }

        JsonNode read() throws IOException {
            final String line = in.readLine();
            assertTrue(line != null, "connection closed");
            return JSON.readTree(line);
        }

        void send(final String text) throws IOException {
            out.write(text.getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        JsonNode call(final String text) throws IOException {
            send(text);
            return read();
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    @Test
    void greetingNegotiationAndCommands() throws IOException {
        try (Client c = new Client()) {
            final JsonNode greeting = c.read();
            assertEquals(1, greeting.at("/QMP/version/qemu/minor").asInt());
            assertTrue(greeting.at("/QMP/capabilities").isArray());
            assertEquals("CommandNotFound", c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\"}}\n")
                .at("/error/class").asText());
            assertEquals("Expecting capabilities negotiation with 'qmp_capabilities'",
                c.call("{\"execute\":\"echo\"}").at("/error/desc").asText());
            assertTrue(c.call("{\"execute\":\"qmp_capabilities\"}").get("return").isObject());
            assertEquals("Capabilities negotiation is already complete, command ignored",
                c.call("{\"execute\":\"qmp_capabilities\"}").at("/error/desc").asText());
            // No newline, split across two writes, id echoed verbatim.
            c.send("{\"execute\":\"echo\",\"arguments\"");
            final JsonNode r = c.call(":{\"text\":\"ab\",\"times\":2},\"id\":{\"n\":[1,\"}\"]}}");
            assertEquals("abab", r.get("return").asText());
            assertEquals("{\"n\":[1,\"}\"]}", r.get("id").toString());
        }
    }

    @Test
    void badInputGetsQemuErrorsAndTheSessionGoesOn() throws IOException {
        try (Client c = new Client()) {
            c.read();
            c.call("{\"execute\":\"qmp_capabilities\",\"id\":1}");
            assertEquals("The command nope has not been found",
                c.call("{\"execute\":\"nope\",\"id\":2}").at("/error/desc").asText());
            assertEquals("Parameter 'text' is missing", c.call("{\"execute\":\"echo\"}").at("/error/desc").asText());
            assertEquals("Invalid parameter type for 'text', expected: string",
                c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":1}}").at("/error/desc").asText());
            assertEquals("Parameter 'x' is unexpected",
                c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\",\"x\":1}}").at("/error/desc").asText());
            assertEquals("QMP input must be a JSON object", c.call("[1,2]").at("/error/desc").asText());
            assertEquals("JSON parse error, invalid keyword 'garbage'", c.call("garbage\n").at("/error/desc").asText());
            assertEquals("QMP input lacks member 'execute'", c.call("{\"id\":5}").at("/error/desc").asText());
            assertEquals("QMP input member 'foo' is unexpected",
                c.call("{\"execute\":\"echo\",\"foo\":1}").at("/error/desc").asText());
            assertEquals("QMP input member 'arguments' must be an object",
                c.call("{\"execute\":\"echo\",\"arguments\":[]}").at("/error/desc").asText());
            assertEquals("ok", c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":\"ok\"}}").get("return").asText());
        }
    }

    @Test
    void anIntegerBeyondInt64IsTheWrongTypeNotAWrappedNumber() throws IOException {
        // QAPI's int is int64: QEMU 10.2 refuses ringbuf-read's size 2^64 with these words. It used to pass as a
        // BigInteger and wrap (2^64 + 2 became 2).
        try (Client c = new Client()) {
            c.read();
            c.call("{\"execute\":\"qmp_capabilities\"}");
            for (final String n : new String[] {"18446744073709551618", "9223372036854775808", "-9223372036854775809"}) {
                assertEquals("Invalid parameter type for 'times', expected: integer",
                    c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\",\"times\":" + n + "}}")
                        .at("/error/desc").asText(), n);
            }
            assertEquals("aa", c.call("{\"execute\":\"echo\",\"arguments\":{\"text\":\"a\",\"times\":2}}")
                .get("return").asText());
        }
    }

    @Test
    void eventsOnlyAfterNegotiationAndThrottledPerKey() throws Exception {
        final ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        try (Client early = new Client(); Client c = new Client()) {
            early.read();
            c.read();
            c.call("{\"execute\":\"qmp_capabilities\"}");
            final EventThrottle throttle = new EventThrottle(server, "VSERPORT_CHANGE", TimeUnit.MILLISECONDS.toNanos(300), timer);
            throttle.emit("p1", event("p1", true));
            throttle.emit("p1", event("p1", false));
            throttle.emit("p1", event("p1", true));
            throttle.emit("p2", event("p2", false));
            final JsonNode first = c.read();
            assertEquals("VSERPORT_CHANGE", first.get("event").asText());
            assertEquals(event("p1", true), first.get("data"));
            assertTrue(first.at("/timestamp/seconds").asLong() > 0);
            assertEquals(event("p2", false), c.read().get("data"));
            // The window coalesces open=false, open=true into the last state.
            assertEquals(event("p1", true), c.read().get("data"));
            // The un-negotiated session saw none of it: its next line is the reply to its own command.
            assertFalse(early.call("{\"execute\":\"qmp_capabilities\"}").has("event"));
        } finally {
            timer.shutdownNow();
        }
    }

    @Test
    void quitRepliesThenCallsTheHook() throws IOException {
        try (Client c = new Client()) {
            c.read();
            c.call("{\"execute\":\"qmp_capabilities\"}");
            assertTrue(c.call("{\"execute\":\"quit\"}").get("return").isObject());
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (quits.get() == 0 && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertEquals(1, quits.get());
        }
    }

    private static JsonNode event(final String id, final boolean open) {
        return JSON.createObjectNode().put("id", id).put("open", open);
    }
}
