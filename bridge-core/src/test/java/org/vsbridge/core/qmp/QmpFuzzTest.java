package org.vsbridge.core.qmp;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The QMP input path (QmpDecoder, then QmpSession's parser and dispatcher) on arbitrary bytes, delivered in
 * arbitrary pieces: every line the session writes must be one JSON object (greeting, return, error or event),
 * the session stays open, and the server still serves a new session afterwards.
 */
class QmpFuzzTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final QmpServer SERVER = server();

    private static QmpServer server() {
        final var version = JSON.createObjectNode();
        version.putObject("qemu").put("major", 0).put("minor", 1).put("micro", 0);
        version.put("package", "fuzz");
        final QmpServer s = new QmpServer(null, QmpAddress.parse("unix:/nonexistent/fuzz.qmp"), version, () -> { });
        s.register(new QmpCommand("echo", QmpCommand.ordered("text", QmpCommand.Param.required(QmpCommand.Type.STRING),
            "times", QmpCommand.Param.optional(QmpCommand.Type.INT)), args -> JSON.getNodeFactory().textNode(
            args.get("text").asText().repeat(Math.max(0, Math.min(4, args.has("times") ? args.get("times").asInt() : 1))))));
        s.register(new QmpCommand("query-version", Map.of(), args -> JSON.createObjectNode()));
        return s;
    }

    @FuzzTest(maxDuration = "60s")
    void input(final FuzzedDataProvider data) throws Exception {
        final EmbeddedChannel ch = new EmbeddedChannel(new QmpDecoder(), new QmpSession(SERVER, SERVER.json()));
        try {
            if (data.consumeBoolean()) {
                ch.writeInbound(Unpooled.copiedBuffer("{\"execute\":\"qmp_capabilities\"}", StandardCharsets.US_ASCII));
            }
            while (data.remainingBytes() > 0) {
                final byte[] piece = data.consumeBytes(data.consumeInt(1, 64));
                ch.writeInbound(Unpooled.wrappedBuffer(piece));
                drain(ch);
            }
            assertTrue(ch.isActive(), "bad input never closes the session");
        } finally {
            ch.finishAndReleaseAll();
        }
        // The text may still be open (inside a string, say), so check on a fresh session that the shared server
        // state survived.
        final EmbeddedChannel fresh = new EmbeddedChannel(new QmpDecoder(), new QmpSession(SERVER, SERVER.json()));
        try {
            fresh.writeInbound(Unpooled.copiedBuffer("{\"execute\":\"qmp_capabilities\"}"
                + "{\"execute\":\"query-version\",\"id\":\"last\"}", StandardCharsets.US_ASCII));
            boolean answered = false;
            for (final JsonNode reply : drain(fresh)) {
                answered |= reply.has("return") && reply.has("id") && reply.get("id").asText().equals("last");
            }
            assertTrue(answered, "a new session is served");
        } finally {
            fresh.finishAndReleaseAll();
        }
    }

    private static java.util.List<JsonNode> drain(final EmbeddedChannel ch) throws Exception {
        final java.util.List<JsonNode> out = new java.util.ArrayList<>();
        ByteBuf b;
        while ((b = ch.readOutbound()) != null) {
            try {
                final String text = b.toString(StandardCharsets.UTF_8);
                assertTrue(text.endsWith("\r\n"), "one message per line: " + text);
                final JsonNode node = JSON.readTree(text);
                assertTrue(node.isObject() && (node.has("QMP") || node.has("return") || node.has("error")
                    || node.has("event")), "not a QMP message: " + text);
                out.add(node);
            } finally {
                b.release();
            }
        }
        return out;
    }
}
