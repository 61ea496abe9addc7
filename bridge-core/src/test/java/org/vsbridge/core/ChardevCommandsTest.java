package org.vsbridge.core;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.objects.ObjectSpec;
import org.vsbridge.core.qmp.QmpAddress;

/** chardev-add/-change/-remove/-send-break and object-add/-del against the real Bridge over its QMP socket. */
class ChardevCommandsTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Bridge bridge;
    private SocketChannel channel;
    private BufferedReader in;
    private OutputStream out;

    @BeforeEach
    void start() throws Exception {
        final BridgeConfig config = new BridgeConfig(dir.resolve("vhost.sock"),
            List.of(ChardevOptions.parse("ringbuf,id=r0"), ChardevOptions.parse("null,id=spare")),
            List.of(new DeviceSpec(false, "r0", "org.test.0", "port0", 1)),
            List.of(QmpAddress.parse("unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off")), -1,
            List.of(ObjectSpec.parse("authz-simple,id=auth0,identity=CN=a,,O=b")));
        bridge = new Bridge(config, () -> { });
        bridge.start();
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(dir.resolve("qmp.sock")));
        in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        out = Channels.newOutputStream(channel);
        assertTrue(read().has("QMP"));
        assertTrue(call("qmp_capabilities", "{}").has("return"));
    }

    @AfterEach
    void stop() throws IOException {
        channel.close();
        bridge.close();
    }

    private JsonNode read() throws Exception {
        final String line = CompletableFuture.supplyAsync(() -> {
            try {
                return in.readLine();
            } catch (final IOException e) {
                throw new RuntimeException(e);
            }
        }).get(20, TimeUnit.SECONDS);
        assertNotNull(line, "QMP connection closed");
        return JSON.readTree(line);
    }

    private void send(final String command, final String args, final String id) throws IOException {
        out.write(("{\"execute\":\"" + command + "\",\"arguments\":" + args + (id == null ? "" : ",\"id\":\"" + id
            + "\"") + "}\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /** One command and its reply (events skipped). */
    private JsonNode call(final String command, final String args) throws Exception {
        send(command, args, null);
        JsonNode reply;
        do {
            reply = read();
        } while (reply.has("event"));
        return reply;
    }

    private String error(final String command, final String args) throws Exception {
        final JsonNode reply = call(command, args);
        assertTrue(reply.has("error"), reply.toString());
        assertEquals("GenericError", reply.get("error").get("class").asText());
        return reply.get("error").get("desc").asText();
    }

    private String filename(final String id) throws Exception {
        for (final JsonNode c : call("query-chardev", "{}").get("return")) {
            if (c.get("label").asText().equals(id)) {
                return c.get("filename").asText();
            }
        }
        return null;
    }

    private String ringbufRead(final String device, final int size, final String format) throws Exception {
        final JsonNode reply = call("ringbuf-read", "{\"device\":\"" + device + "\",\"size\":" + size
            + (format == null ? "" : ",\"format\":\"" + format + "\"") + "}");
        assertTrue(reply.has("return"), reply.toString());
        return reply.get("return").asText();
    }

    @Test
    void ringbufWriteAndReadOverQmpAsQemu() throws Exception {
        assertEquals("{}", call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"hello\"}").get("return").toString());
        assertEquals("hel", ringbufRead("r0", 3, null));
        assertEquals("lo", ringbufRead("r0", 100, "utf8"));
        assertEquals("", ringbufRead("r0", 100, null), "read bytes are gone");

        // Binary data round-trips through base64; utf8 ends at the first NUL (QEMU's documented caveat).
        call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"AAEC/w==\",\"format\":\"base64\"}");
        assertEquals("AAEC/w==", ringbufRead("r0", 4, "base64"));
        call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"ab\\u0000cd\"}");
        assertEquals("ab", ringbufRead("r0", 5, null));

        // A full ring overwrites its oldest bytes.
        call("chardev-add", "{\"id\":\"small\",\"backend\":{\"type\":\"ringbuf\",\"data\":{\"size\":4}}}");
        call("ringbuf-write", "{\"device\":\"small\",\"data\":\"abcdef\"}");
        assertEquals("cdef", ringbufRead("small", 10, null));
        assertEquals("size of ringbuf chardev must be power of two",
            error("chardev-add", "{\"id\":\"odd\",\"backend\":{\"type\":\"ringbuf\",\"data\":{\"size\":6}}}"));

        assertEquals("Device 'nope' not found", error("ringbuf-write", "{\"device\":\"nope\",\"data\":\"x\"}"));
        assertEquals("spare is not a ringbuf device", error("ringbuf-read", "{\"device\":\"spare\",\"size\":1}"));
        assertEquals("size must be greater than zero", error("ringbuf-read", "{\"device\":\"r0\",\"size\":0}"));
        assertTrue(error("ringbuf-read", "{\"device\":\"r0\",\"size\":1,\"format\":\"hex\"}")
            .contains("'format'"));
        assertEquals("Base64 data contains invalid characters",
            error("ringbuf-write", "{\"device\":\"r0\",\"data\":\"!!\",\"format\":\"base64\"}"));
        final JsonNode wrongType = call("ringbuf-read", "{\"device\":\"r0\",\"size\":\"4\"}");
        assertTrue(wrongType.get("error").get("desc").asText().contains("'size'"), wrongType.toString());
    }

    @Test
    void addReturnsThePtyAndRemoveFreesIt() throws Exception {
        final JsonNode added = call("chardev-add", "{\"id\":\"p\",\"backend\":{\"type\":\"pty\",\"data\":{}}}");
        final String pts = added.get("return").get("pty").asText();
        assertTrue(pts.startsWith("/dev/pts/"), added.toString());
        assertEquals("pty:" + pts, filename("p"));
        try (RandomAccessFile slave = new RandomAccessFile(pts, "rw")) {
            assertTrue(slave.getFD().valid(), "the slave of the new pty opens");
        }
        assertEquals("Chardev with id 'p' already exists",
            error("chardev-add", "{\"id\":\"p\",\"backend\":{\"type\":\"null\",\"data\":{}}}"));
        assertEquals("{}", call("chardev-remove", "{\"id\":\"p\"}").get("return").toString());
        assertEquals("Chardev 'p' not found", error("chardev-remove", "{\"id\":\"p\"}"));
        assertEquals(null, filename("p"));
    }

    @Test
    void addErrorsUseQemusWords() throws Exception {
        final Path missing = dir.resolve("no/such/dir/out");
        assertEquals("Failed to add chardev 'f': Could not create '" + missing + "': No such file or directory",
            error("chardev-add", "{\"id\":\"f\",\"backend\":{\"type\":\"file\",\"data\":{\"out\":\"" + missing
                + "\"}}}"));
        assertEquals("Parameter 'backend.data.out' is missing",
            error("chardev-add", "{\"id\":\"f\",\"backend\":{\"type\":\"file\",\"data\":{}}}"));
        assertEquals("'wait' option is incompatible with socket in client connect mode",
            error("chardev-add", "{\"id\":\"s\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":"
                + "\"unix\",\"data\":{\"path\":\"/x\"}},\"server\":false,\"wait\":true}}}"));
        assertTrue(error("chardev-add", "{\"id\":\"v\",\"backend\":{\"type\":\"vc\",\"data\":{}}}")
            .startsWith("Failed to add chardev 'v': chardev backend 'vc' needs a display"));
        assertEquals(null, filename("f"));
    }

    @Test
    void removeRefusesAChardevInUseAndSendBreakFindsIt() throws Exception {
        assertEquals("Chardev 'r0' is busy", error("chardev-remove", "{\"id\":\"r0\"}"));
        assertEquals("Chardev 'nope' not found", error("chardev-send-break", "{\"id\":\"nope\"}"));
        assertTrue(call("chardev-send-break", "{\"id\":\"r0\"}").has("return"));
        assertTrue(call("chardev-remove", "{\"id\":\"spare\"}").has("return"));
    }

    @Test
    void changeSwapsThePortsBackendAndRollsBackOnFailure() throws Exception {
        assertEquals("Chardev 'nope' does not exist",
            error("chardev-change", "{\"id\":\"nope\",\"backend\":{\"type\":\"null\",\"data\":{}}}"));
        final Path sock = dir.resolve("new.sock");
        final JsonNode changed = call("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"socket\",\"data\":"
            + "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + sock + "\"}},\"server\":true,\"wait\":false}}}");
        assertEquals("{}", changed.get("return").toString());
        assertEquals("disconnected:unix:" + sock + ",server=on", filename("r0"));
        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(sock));
            // The accept runs on the bridge's loop.
            final String name = await("the client accepted").atMost(Duration.ofSeconds(30)).pollInSameThread()
                .pollInterval(Duration.ofMillis(10)).until(() -> filename("r0"), n -> !n.startsWith("disconnected:"));
            assertEquals("unix:" + sock + ",server=on", name, "the port's new backend took the client");
        }
        // A backend that cannot open: the error, and the port keeps the one it had.
        final Path bad = dir.resolve("nowhere/x.sock");
        final String err = error("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"socket\",\"data\":"
            + "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + bad + "\"}},\"server\":true}}}");
        assertTrue(err.startsWith("Failed to bind socket to " + bad), err);
        assertTrue(filename("r0").contains(sock.toString()), filename("r0"));
        assertEquals("For mux or hub device hotswap is not supported yet",
            error("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"mux\",\"data\":{\"chardev\":\"spare\"}}}"));
    }

    @Test
    void twoPortsShareAMuxAndItsBaseIsBusy() throws Exception {
        final BridgeConfig config = new BridgeConfig(dir.resolve("mux-vhost.sock"),
            ChardevOptions.parseAll("ringbuf,id=m,mux=on", null),
            List.of(new DeviceSpec(true, "m", null, "con0", 0), new DeviceSpec(false, "m", "org.test.1", "p1", 1)),
            List.of(QmpAddress.parse("unix:" + dir.resolve("mux-qmp.sock") + ",server=on,wait=off")), -1);
        final Bridge muxBridge = new Bridge(config, () -> { });
        muxBridge.start();
        try {
            assertEquals("mux", muxBridge.chardevs().get("m").filename());
            assertTrue(muxBridge.chardevs().get("m-base").isBusy(), "the mux uses its base");
            assertTrue(muxBridge.chardevs().get("m").isBusy(), "two ports use the mux");
        } finally {
            muxBridge.close();
        }
    }

    @Test
    void asyncRepliesKeepTheirOrder() throws Exception {
        send("chardev-add", "{\"id\":\"a1\",\"backend\":{\"type\":\"ringbuf\",\"data\":{}}}", "one");
        send("query-chardev", "{}", "two");
        send("chardev-add", "{\"id\":\"a1\",\"backend\":{\"type\":\"ringbuf\",\"data\":{}}}", "three");
        final JsonNode one = read();
        final JsonNode two = read();
        final JsonNode three = read();
        assertEquals("one", one.get("id").asText());
        assertEquals("two", two.get("id").asText());
        assertTrue(two.get("return").toString().contains("\"a1\""), "query after add sees it: " + two);
        assertEquals("three", three.get("id").asText());
        assertEquals("Chardev with id 'a1' already exists", three.get("error").get("desc").asText());
    }

    @Test
    void objectsAndBackendsAreListed() throws Exception {
        assertEquals("attempt to add duplicate property 'auth0' to object (type 'container')",
            error("object-add", "{\"qom-type\":\"authz-simple\",\"id\":\"auth0\",\"identity\":\"CN=x\"}"));
        assertTrue(call("object-add", "{\"qom-type\":\"authz-list\",\"id\":\"list0\",\"policy\":\"deny\","
            + "\"rules\":[{\"match\":\"CN=*\",\"policy\":\"allow\",\"format\":\"glob\"}]}").has("return"));
        assertTrue(call("object-del", "{\"id\":\"list0\"}").has("return"));
        assertEquals("object 'list0' not found", error("object-del", "{\"id\":\"list0\"}"));
        final String missingDir = error("object-add", "{\"qom-type\":\"tls-creds-x509\",\"id\":\"t\",\"dir\":\""
            + dir.resolve("none") + "\",\"endpoint\":\"server\"}");
        assertTrue(missingDir.startsWith("Unable to access credentials " + dir.resolve("none")), missingDir);

        final String backends = call("query-chardev-backends", "{}").get("return").toString();
        for (final String kind : new String[] {"socket", "pty", "pipe", "udp", "serial", "mux", "hub", "ringbuf"}) {
            assertTrue(backends.contains("\"" + kind + "\""), kind + " in " + backends);
        }
        assertFalse(backends.contains("\"vc\""), backends);
        assertFalse(backends.contains("\"parallel\""), backends);
        final String commands = call("query-commands", "{}").get("return").toString();
        for (final String c : ChardevCommands.NAMES) {
            assertTrue(commands.contains("\"" + c + "\""), c);
        }
    }

}
