package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.CommandLine;
import org.vsbridge.core.qmp.QmpJson;

/** query-qmp-schema, query-name, query-status and query-version of a real bridge, over its QMP socket. */
class QmpIntrospectionTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private QmpTestClient qmp;

    @BeforeEach
    void start() throws Exception {
        qmp = QmpTestClient.startBridge(CommandLine.parse(new String[] {
            "--chardev", "ringbuf,id=r0", "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
            "--socket-path", dir.resolve("vu.sock").toString(),
            "--device", "virtconsole,chardev=r0,id=con0"}).config(), dir.resolve("qmp.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        qmp.close();
    }

    private Map<String, JsonNode> schema() throws Exception {
        final Map<String, JsonNode> byName = new HashMap<>();
        for (final JsonNode info : qmp.call("query-qmp-schema", "{}").get("return")) {
            assertTrue(byName.put(info.get("name").asText(), info) == null, "one entry per name: " + info);
        }
        return byName;
    }

    @Test
    void theSchemaHasExactlyTheCommandsServedAndTheEventsSent() throws Exception {
        final Map<String, JsonNode> schema = schema();
        final Set<String> commands = new TreeSet<>();
        for (final JsonNode c : qmp.call("query-commands", "{}").get("return")) {
            commands.add(c.get("name").asText());
        }
        final Set<String> inSchema = new TreeSet<>();
        final Set<String> events = new TreeSet<>();
        for (final JsonNode info : schema.values()) {
            switch (info.get("meta-type").asText()) {
                case "command" -> inSchema.add(info.get("name").asText());
                case "event" -> events.add(info.get("name").asText());
                default -> {
                }
            }
            // Every type named is described (QEMU's SchemaInfo is closed).
            for (final String ref : List.of("arg-type", "ret-type", "element-type")) {
                if (info.has(ref)) {
                    assertNotNull(schema.get(info.get(ref).asText()), info.toString());
                }
            }
            for (final JsonNode m : info.path("members")) {
                if (m.has("type")) {
                    assertNotNull(schema.get(m.get("type").asText()), m.toString());
                }
            }
        }
        assertEquals(commands, inSchema);
        assertTrue(commands.containsAll(List.of("qmp_capabilities", "query-qmp-schema", "query-name",
            "query-status", "device_add", "chardev-add")), commands.toString());
        assertEquals(Set.of("SHUTDOWN", "VSERPORT_CHANGE", "DEVICE_DELETED"), events);
        // QEMU's form, as QEMU 10.2 answers for ringbuf-read: built-in types by name, the others masked.
        final JsonNode read = schema.get("ringbuf-read");
        assertEquals("str", read.get("ret-type").asText());
        final JsonNode args = schema.get(read.get("arg-type").asText());
        assertTrue(args.get("name").asText().matches("[0-9]+"), args.toString());
        assertEquals("object", args.get("meta-type").asText());
        assertEquals("[{\"name\":\"device\",\"type\":\"str\"},{\"name\":\"size\",\"type\":\"int\"},"
            + "{\"name\":\"format\",\"default\":null,\"type\":\"X\"}]",
            args.get("members").toString().replace("\"" + args.at("/members/2/type").asText() + "\"", "\"X\""));
        final JsonNode format = schema.get(args.at("/members/2/type").asText());
        assertEquals("{\"name\":\"" + format.get("name").asText() + "\",\"members\":[{\"name\":\"utf8\"},"
            + "{\"name\":\"base64\"}],\"meta-type\":\"enum\",\"values\":[\"utf8\",\"base64\"]}", format.toString());
        assertEquals("{\"name\":\"str\",\"json-type\":\"string\",\"meta-type\":\"builtin\"}",
            schema.get("str").toString());
        assertEquals("[]", schema.get("0").get("members").toString(), "\"0\" is the empty object, as in QEMU");
    }

    /**
     * The commands QEMU's qapi/char.json declares have, in our schema, its members in its order with its
     * optionality (members of types the bridge describes as {@code any} excepted). Needs the reference copy of
     * char.json beside the project; skipped without it.
     */
    @Test
    void charJsonCommandsHaveTheirDeclaredMembers() throws Exception {
        final Path charJson = Path.of(System.getProperty("user.dir")).resolve("../../shared/reference/char.json")
            .normalize();
        Assumptions.assumeTrue(Files.isRegularFile(charJson), "no " + charJson);
        final StringBuilder text = new StringBuilder();
        for (final String line : Files.readAllLines(charJson, StandardCharsets.UTF_8)) {
            if (!line.stripLeading().startsWith("#")) {
                text.append(line).append('\n');
            }
        }
        // QAPI schema files are written in QEMU's JSON dialect (single quotes): QmpJson reads them as QEMU does.
        final List<JsonNode> declarations = new ArrayList<>();
        final QmpJson reader = new QmpJson(Long.MAX_VALUE, m -> {
            assertTrue(m.error() == null, m.error());
            declarations.add(m.value());
        });
        final byte[] bytes = text.toString().getBytes(StandardCharsets.UTF_8);
        reader.feed(bytes, 0, bytes.length);
        final Map<String, JsonNode> schema = schema();
        int checked = 0;
        for (final JsonNode d : declarations) {
            if (!d.has("command")) {
                continue;
            }
            final JsonNode ours = schema.get(d.get("command").asText());
            assertNotNull(ours, "served: " + d.get("command").asText());
            final List<String> declared = new ArrayList<>();
            d.path("data").fieldNames().forEachRemaining(declared::add);
            final List<String> served = new ArrayList<>();
            for (final JsonNode m : schema.get(ours.get("arg-type").asText()).get("members")) {
                served.add((m.has("default") ? "*" : "") + m.get("name").asText());
            }
            assertEquals(declared, served, d.get("command").asText());
            checked++;
        }
        assertTrue(checked >= 8, "char.json's commands: " + checked);
    }

    @Test
    void nameStatusAndVersionSayWhatTheBridgeIs() throws Exception {
        assertEquals("{}", qmp.call("query-name", "{}").get("return").toString());
        assertEquals(JSON.readTree("{\"status\":\"running\",\"running\":true}"),
            qmp.call("query-status", "{}").get("return"));
        final JsonNode version = qmp.call("query-version", "{}").get("return");
        assertTrue(version.get("package").asText().startsWith("vhost-serial-bridge "), version.toString());
        assertFalse(version.at("/qemu/major").asInt() == 10 && version.at("/qemu/minor").asInt() == 2,
            "the bridge's own version, not QEMU's: " + version);
    }
}
