package org.vsbridge.core;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
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

    @TempDir
    Path dir;

    private QmpTestClient qmp;

    @BeforeEach
    void start() throws Exception {
        final BridgeConfig config = new BridgeConfig(dir.resolve("vhost.sock"),
            List.of(ChardevOptions.parse("ringbuf,id=r0"), ChardevOptions.parse("null,id=spare")),
            List.of(new DeviceSpec(false, "r0", "org.test.0", "port0", 1)),
            List.of(QmpAddress.parse("unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off")), -1,
            List.of(ObjectSpec.parse("authz-simple,id=auth0,identity=CN=a,,O=b")));
        qmp = QmpTestClient.startBridge(config, dir.resolve("qmp.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        qmp.close();
    }

    private String filename(final String id) throws Exception {
        for (final JsonNode c : qmp.call("query-chardev", "{}").get("return")) {
            if (c.get("label").asText().equals(id)) {
                return c.get("filename").asText();
            }
        }
        return null;
    }

    private String ringbufRead(final String device, final int size, final String format) throws Exception {
        final JsonNode reply = qmp.call("ringbuf-read", "{\"device\":\"" + device + "\",\"size\":" + size
            + (format == null ? "" : ",\"format\":\"" + format + "\"") + "}");
        assertTrue(reply.has("return"), reply.toString());
        return reply.get("return").asText();
    }

    @Test
    void ringbufWriteAndReadOverQmpAsQemu() throws Exception {
        assertEquals("{}", qmp.call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"hello\"}").get("return")
            .toString());
        assertEquals("hel", ringbufRead("r0", 3, null));
        assertEquals("lo", ringbufRead("r0", 100, "utf8"));
        assertEquals("", ringbufRead("r0", 100, null), "read bytes are gone");

        // Binary data round-trips through base64; utf8 ends at the first NUL (QEMU's documented caveat).
        qmp.call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"AAEC/w==\",\"format\":\"base64\"}");
        assertEquals("AAEC/w==", ringbufRead("r0", 4, "base64"));
        qmp.call("ringbuf-write", "{\"device\":\"r0\",\"data\":\"ab\\u0000cd\"}");
        assertEquals("ab", ringbufRead("r0", 5, null));

        // A full ring overwrites its oldest bytes.
        qmp.call("chardev-add", "{\"id\":\"small\",\"backend\":{\"type\":\"ringbuf\",\"data\":{\"size\":4}}}");
        qmp.call("ringbuf-write", "{\"device\":\"small\",\"data\":\"abcdef\"}");
        assertEquals("cdef", ringbufRead("small", 10, null));
        assertEquals("Failed to add chardev 'odd': size of ringbuf chardev must be power of two",
            qmp.error("chardev-add", "{\"id\":\"odd\",\"backend\":{\"type\":\"ringbuf\",\"data\":{\"size\":6}}}"));

        assertEquals("Device 'nope' not found", qmp.error("ringbuf-write", "{\"device\":\"nope\",\"data\":\"x\"}"));
        assertEquals("spare is not a ringbuf device", qmp.error("ringbuf-read", "{\"device\":\"spare\",\"size\":1}"));
        assertEquals("size must be greater than zero", qmp.error("ringbuf-read", "{\"device\":\"r0\",\"size\":0}"));
        assertTrue(qmp.error("ringbuf-read", "{\"device\":\"r0\",\"size\":1,\"format\":\"hex\"}")
            .contains("'format'"));
        assertEquals("Base64 data contains invalid characters",
            qmp.error("ringbuf-write", "{\"device\":\"r0\",\"data\":\"!!\",\"format\":\"base64\"}"));
        final JsonNode wrongType = qmp.call("ringbuf-read", "{\"device\":\"r0\",\"size\":\"4\"}");
        assertTrue(wrongType.get("error").get("desc").asText().contains("'size'"), wrongType.toString());
    }

    @Test
    void addReturnsThePtyAndRemoveFreesIt() throws Exception {
        final JsonNode added = qmp.call("chardev-add", "{\"id\":\"p\",\"backend\":{\"type\":\"pty\",\"data\":{}}}");
        final String pts = added.get("return").get("pty").asText();
        assertTrue(pts.startsWith("/dev/pts/"), added.toString());
        assertEquals("pty:" + pts, filename("p"));
        try (RandomAccessFile slave = new RandomAccessFile(pts, "rw")) {
            assertTrue(slave.getFD().valid(), "the slave of the new pty opens");
        }
        assertEquals("Chardev with id 'p' already exists",
            qmp.error("chardev-add", "{\"id\":\"p\",\"backend\":{\"type\":\"null\",\"data\":{}}}"));
        assertEquals("{}", qmp.call("chardev-remove", "{\"id\":\"p\"}").get("return").toString());
        assertEquals("Chardev 'p' not found", qmp.error("chardev-remove", "{\"id\":\"p\"}"));
        assertEquals(null, filename("p"));
    }

    @Test
    void addErrorsUseQemusWords() throws Exception {
        final Path missing = dir.resolve("no/such/dir/out");
        assertEquals("Failed to add chardev 'f': Could not create '" + missing + "': No such file or directory",
            qmp.error("chardev-add", "{\"id\":\"f\",\"backend\":{\"type\":\"file\",\"data\":{\"out\":\"" + missing
                + "\"}}}"));
        assertEquals("Parameter 'backend.data.out' is missing",
            qmp.error("chardev-add", "{\"id\":\"f\",\"backend\":{\"type\":\"file\",\"data\":{}}}"));
        // QEMU prefixes every error of creating the chardev, but not those of reading the arguments (above).
        assertEquals("Failed to add chardev 's': 'wait' option is incompatible with socket in client connect mode",
            qmp.error("chardev-add", "{\"id\":\"s\",\"backend\":{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":"
                + "\"unix\",\"data\":{\"path\":\"/x\"}},\"server\":false,\"wait\":true}}}"));
        assertTrue(qmp.error("chardev-add", "{\"id\":\"v\",\"backend\":{\"type\":\"vc\",\"data\":{}}}")
            .startsWith("Failed to add chardev 'v': chardev backend 'vc' needs a display"));
        assertEquals(null, filename("f"));
    }

    @Test
    void removeRefusesAChardevInUseAndSendBreakFindsIt() throws Exception {
        assertEquals("Chardev 'r0' is busy", qmp.error("chardev-remove", "{\"id\":\"r0\"}"));
        assertEquals("Chardev 'nope' not found", qmp.error("chardev-send-break", "{\"id\":\"nope\"}"));
        assertTrue(qmp.call("chardev-send-break", "{\"id\":\"r0\"}").has("return"));
        assertTrue(qmp.call("chardev-remove", "{\"id\":\"spare\"}").has("return"));
    }

    @Test
    void changeSwapsThePortsBackendAndRollsBackOnFailure() throws Exception {
        assertEquals("Chardev 'nope' does not exist",
            qmp.error("chardev-change", "{\"id\":\"nope\",\"backend\":{\"type\":\"null\",\"data\":{}}}"));
        final Path sock = dir.resolve("new.sock");
        final JsonNode changed = qmp.call("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"socket\",\"data\":"
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
        final String err = qmp.error("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"socket\",\"data\":"
            + "{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + bad + "\"}},\"server\":true}}}");
        assertTrue(err.startsWith("Failed to bind socket to " + bad), err);
        assertTrue(filename("r0").contains(sock.toString()), filename("r0"));
        assertEquals("For mux or hub device hotswap is not supported yet",
            qmp.error("chardev-change",
                "{\"id\":\"r0\",\"backend\":{\"type\":\"mux\",\"data\":{\"chardev\":\"spare\"}}}"));
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
        qmp.send("chardev-add", "{\"id\":\"a1\",\"backend\":{\"type\":\"ringbuf\",\"data\":{}}}", "one");
        qmp.send("query-chardev", "{}", "two");
        qmp.send("chardev-add", "{\"id\":\"a1\",\"backend\":{\"type\":\"ringbuf\",\"data\":{}}}", "three");
        final JsonNode one = qmp.read();
        final JsonNode two = qmp.read();
        final JsonNode three = qmp.read();
        assertEquals("one", one.get("id").asText());
        assertEquals("two", two.get("id").asText());
        assertTrue(two.get("return").toString().contains("\"a1\""), "query after add sees it: " + two);
        assertEquals("three", three.get("id").asText());
        assertEquals("Chardev with id 'a1' already exists", three.get("error").get("desc").asText());
    }

    @Test
    void objectsAndBackendsAreListed() throws Exception {
        assertEquals("attempt to add duplicate property 'auth0' to object (type 'container')",
            qmp.error("object-add", "{\"qom-type\":\"authz-simple\",\"id\":\"auth0\",\"identity\":\"CN=x\"}"));
        assertTrue(qmp.call("object-add", "{\"qom-type\":\"authz-list\",\"id\":\"list0\",\"policy\":\"deny\","
            + "\"rules\":[{\"match\":\"CN=*\",\"policy\":\"allow\",\"format\":\"glob\"}]}").has("return"));
        assertTrue(qmp.call("object-del", "{\"id\":\"list0\"}").has("return"));
        assertEquals("object 'list0' not found", qmp.error("object-del", "{\"id\":\"list0\"}"));
        final String missingDir = qmp.error("object-add", "{\"qom-type\":\"tls-creds-x509\",\"id\":\"t\",\"dir\":\""
            + dir.resolve("none") + "\",\"endpoint\":\"server\"}");
        assertTrue(missingDir.startsWith("Unable to access credentials " + dir.resolve("none")), missingDir);

        final String backends = qmp.call("query-chardev-backends", "{}").get("return").toString();
        for (final String kind : new String[] {"socket", "pty", "pipe", "udp", "serial", "mux", "hub", "ringbuf"}) {
            assertTrue(backends.contains("\"" + kind + "\""), kind + " in " + backends);
        }
        assertFalse(backends.contains("\"vc\""), backends);
        assertFalse(backends.contains("\"parallel\""), backends);
        final String commands = qmp.call("query-commands", "{}").get("return").toString();
        for (final String c : ChardevCommands.NAMES) {
            assertTrue(commands.contains("\"" + c + "\""), c);
        }
    }

}
