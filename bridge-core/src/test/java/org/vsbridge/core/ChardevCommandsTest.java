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
        assertEquals("Failed to add chardev 'f': Could not open '" + missing + "': No such file or directory",
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
        // QEMU swaps in a mux (or a hub) but never swaps one out.
        assertEquals("{}", qmp.call("chardev-change",
            "{\"id\":\"r0\",\"backend\":{\"type\":\"mux\",\"data\":{\"chardev\":\"spare\"}}}").get("return")
            .toString());
        assertEquals("mux", filename("r0"));
        assertEquals("For mux or hub device hotswap is not supported yet",
            qmp.error("chardev-change", "{\"id\":\"r0\",\"backend\":{\"type\":\"null\",\"data\":{}}}"));
        assertEquals("Chardev 'spare' is busy", qmp.error("chardev-remove", "{\"id\":\"spare\"}"));
    }

    private static String unixServer(final Path path, final String more) {
        return "{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + path
            + "\"}},\"server\":true,\"wait\":false" + more + "}}";
    }

    private static String tcpServer(final int port, final String more) {
        return "{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"inet\",\"data\":{\"host\":\"127.0.0.1\","
            + "\"port\":\"" + port + "\"}},\"server\":true,\"wait\":false" + more + "}}";
    }

    private static int freePort() throws IOException {
        try (java.net.ServerSocket probe = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return probe.getLocalPort();
        }
    }

    /** The bytes a new client of a telnet server gets first: QEMU's options. */
    private static void expectTelnetOptions(final SocketChannel peer) throws IOException {
        final java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(12);
        while (b.hasRemaining() && peer.read(b) >= 0) {
            // until the options are in
        }
        assertEquals("[-1, -5, 1, -1, -5, 3, -1, -5, 0, -1, -3, 0]", java.util.Arrays.toString(b.array()));
    }

    @Test
    void changeToTheSameAddressSwitchesTelnetOnAsInQemu() throws Exception {
        // No frontend: QEMU removes the old chardev first, then adds the new one on the freed address.
        final int port = freePort();
        qmp.call("chardev-add", "{\"id\":\"t\",\"backend\":" + tcpServer(port, "") + "}");
        assertEquals("{}", qmp.call("chardev-change", "{\"id\":\"t\",\"backend\":" + tcpServer(port,
            ",\"telnet\":true") + "}").get("return").toString());
        assertEquals("disconnected:telnet:127.0.0.1:" + port + ",server=on", filename("t"));
        final Path free = dir.resolve("free.sock");
        qmp.call("chardev-add", "{\"id\":\"u\",\"backend\":" + unixServer(free, "") + "}");
        assertEquals("{}", qmp.call("chardev-change", "{\"id\":\"u\",\"backend\":" + unixServer(free,
            ",\"telnet\":true") + "}").get("return").toString());
        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(free));
            expectTelnetOptions(peer);
        }

        // The port's chardev: the new one takes over the listening socket (QEMU's own virtio ports cannot be
        // swapped at all), for tcp and for unix, and the socket file stays.
        final int portOfPort = freePort();
        assertEquals("{}", qmp.call("chardev-change", "{\"id\":\"r0\",\"backend\":" + tcpServer(portOfPort, "")
            + "}").get("return").toString());
        assertEquals("{}", qmp.call("chardev-change", "{\"id\":\"r0\",\"backend\":" + tcpServer(portOfPort,
            ",\"telnet\":true") + "}").get("return").toString());
        try (SocketChannel peer = SocketChannel.open(new java.net.InetSocketAddress("127.0.0.1", portOfPort))) {
            expectTelnetOptions(peer);
        }
        final Path linked = dir.resolve("linked.sock");
        qmp.call("chardev-change", "{\"id\":\"r0\",\"backend\":" + unixServer(linked, "") + "}");
        assertEquals("{}", qmp.call("chardev-change", "{\"id\":\"r0\",\"backend\":" + unixServer(linked,
            ",\"telnet\":true") + "}").get("return").toString());
        assertTrue(java.nio.file.Files.exists(linked), "the socket file outlives the old chardev");
        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(linked));
            expectTelnetOptions(peer);
        }
    }

    @Test
    void changeOfAnUnusedChardevThatFailsRemovesItAsQemuDoes() throws Exception {
        final Path missing = dir.resolve("no/such/dir/out");
        assertEquals("Failed to add chardev 'spare': Could not open '" + missing + "': No such file or directory",
            qmp.error("chardev-change", "{\"id\":\"spare\",\"backend\":{\"type\":\"file\",\"data\":{\"out\":\""
                + missing + "\"}}}"));
        assertEquals(null, filename("spare"));
        // So also when the new backend's options are refused: QEMU checks them only while opening it.
        assertEquals("{}", qmp.call("chardev-add", "{\"id\":\"c1\",\"backend\":{\"type\":\"null\",\"data\":{}}}")
            .get("return").toString());
        assertEquals("Failed to add chardev 'c1': size of ringbuf chardev must be power of two",
            qmp.error("chardev-change", "{\"id\":\"c1\",\"backend\":{\"type\":\"ringbuf\","
                + "\"data\":{\"size\":100}}}"));
        assertEquals(null, filename("c1"));
    }

    @Test
    void ptyRefusesAnExistingPathOverQmp() throws Exception {
        final Path file = dir.resolve("user-file");
        java.nio.file.Files.writeString(file, "keep me");
        assertEquals("Failed to add chardev 'p': Failed to create PTY symlink: File exists",
            qmp.error("chardev-add", "{\"id\":\"p\",\"backend\":{\"type\":\"pty\",\"data\":{\"path\":\"" + file
                + "\"}}}"));
        assertEquals("keep me", java.nio.file.Files.readString(file));
    }

    /**
     * chardev-remove answers once the chardev is gone with all it held: its base is free for the next command, and
     * a server's socket file is gone. Sent back to back, many times, so that a removal still running would show.
     */
    @Test
    void removeIsCompleteWhenItAnswers() throws Exception {
        for (int i = 0; i < 25; i++) {
            final Path sock = dir.resolve("b" + i + ".sock");
            final String front = i % 2 == 0 ? "{\"type\":\"mux\",\"data\":{\"chardev\":\"b\"}}"
                : "{\"type\":\"hub\",\"data\":{\"chardevs\":[\"b\"]}}";
            assertTrue(qmp.call("chardev-add", "{\"id\":\"b\",\"backend\":" + unixServer(sock, "") + "}")
                .has("return"));
            assertTrue(qmp.call("chardev-add", "{\"id\":\"f\",\"backend\":" + front + "}").has("return"));
            assertTrue(java.nio.file.Files.exists(sock));
            qmp.send("chardev-remove", "{\"id\":\"f\"}", "front");
            qmp.send("chardev-remove", "{\"id\":\"b\"}", "base");
            final JsonNode first = qmp.read();
            final JsonNode second = qmp.read();
            assertEquals("{}", String.valueOf(first.get("return")), "round " + i + ": " + first);
            assertEquals("{}", String.valueOf(second.get("return")), "round " + i + ": " + second);
            assertFalse(java.nio.file.Files.exists(sock, java.nio.file.LinkOption.NOFOLLOW_LINKS),
                "round " + i + ": the socket file is gone when chardev-remove answers");
        }
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
