package org.vsbridge.core.qmp;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.Transports;
import org.vsbridge.core.QmpTestClient;

/**
 * Careless and hostile QMP clients: oversized and deeply nested input, many clients at once, a client that never
 * reads (dropped once its unread output passes {@link QmpServer#DEFAULT_MAX_OUTPUT}, others unaffected), and
 * access control (socket mode, SO_PEERCRED uid allow-list, checked with a real client of another uid).
 */
class QmpLimitsTest {

    /** Held here: the logging framework keeps loggers only weakly, and a collected one loses the handler. */
    private static final Logger QMP_LOG = Logger.getLogger("org.vsbridge.core.qmp");

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private EventLoopGroup group;
    private QmpServer server;
    private final List<String> log = new ArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(final LogRecord r) {
            synchronized (log) {
                log.add(r.getMessage());
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    private Path start(final String options) throws IOException {
        return start(options, QmpServer.DEFAULT_MAX_INPUT, QmpServer.DEFAULT_MAX_OUTPUT);
    }

    private Path start(final String options, final int maxInput, final int maxOutput) throws IOException {
        QMP_LOG.addHandler(handler);
        group = Transports.newEventLoopGroup(1, "qmp-limits");
        final var version = JSON.createObjectNode();
        version.putObject("qemu").put("major", 0).put("minor", 1).put("micro", 0);
        version.put("package", "test");
        final Path sock = dir.resolve("qmp.sock");
        server = new QmpServer(group, QmpAddress.parse("unix:" + sock + ",server=on,wait=off" + options), version,
            () -> { }, maxInput, maxOutput);
        server.register(new QmpCommand("echo", Map.of("text", QmpCommand.Param.required(QmpCommand.Type.STRING)),
            args -> JSON.getNodeFactory().textNode(args.get("text").asText())));
        server.start();
        return sock;
    }

    @AfterEach
    void stop() {
        QMP_LOG.removeHandler(handler);
        if (server != null) {
            server.close();
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    private String awaitLog(final String needle) {
        return await("a log line with '" + needle + "'").atMost(Duration.ofSeconds(30))
            .pollInterval(Duration.ofMillis(10)).until(() -> {
                synchronized (log) {
                    return log.stream().filter(l -> l.contains(needle)).findFirst().orElse(null);
                }
            }, Objects::nonNull);
    }

    private QmpTestClient client() throws Exception {
        return QmpTestClient.connect(dir.resolve("qmp.sock"));
    }

    @Test
    void aConfiguredInputLimitApplies() throws Exception {
        start("", 64 << 10, QmpServer.DEFAULT_MAX_OUTPUT);
        try (QmpTestClient c = client()) {
            final String fits = "x".repeat(32 << 10);
            c.send("{\"execute\":\"echo\",\"arguments\":{\"text\":\"" + fits + "\"}}\n");
            assertEquals(fits, c.read().get("return").asText());
            c.send("{\"execute\":\"echo\",\"arguments\":{\"text\":\"" + "y".repeat(100 << 10) + "\"}}\n");
            assertEquals("JSON token size limit exceeded", c.read().at("/error/desc").asText());
        }
    }

    @Test
    void oversizedInputIsRefusedAndTheSessionGoesOn() throws Exception {
        start("");
        try (QmpTestClient c = client()) {
            // An unterminated string longer than QmpServer.DEFAULT_MAX_INPUT: refused once the limit is passed, without
            // buffering the rest.
            final byte[] huge = new byte[QmpServer.DEFAULT_MAX_INPUT + (1 << 20)];
            java.util.Arrays.fill(huge, (byte) 'a');
            final CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
                try {
                    c.send("{\"execute\":\"echo\",\"arguments\":{\"text\":\"");
                    c.send(huge);
                    c.send("\"}}\n{\"execute\":\"echo\",\"arguments\":{\"text\":\"after\"},\"id\":7}\n");
                } catch (final IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            final JsonNode first = c.read();
            assertEquals("JSON token size limit exceeded", first.at("/error/desc").asText());
            // The tail of the oversized text is garbage to the splitter (parse errors), then the session serves.
            JsonNode r;
            do {
                r = c.read();
            } while (!r.has("id"));
            assertEquals("after", r.get("return").asText());
            assertEquals(7, r.get("id").asInt());
            writer.get(30, TimeUnit.SECONDS);
        }
    }

    @Test
    void deeplyNestedInputIsRefusedAsQemuDoes() throws Exception {
        start("");
        try (QmpTestClient c = client()) {
            // QEMU's streamer allows 1024 levels; the 1025th opening is an error and the stream starts afresh.
            c.send("[".repeat(1024) + "]".repeat(1024) + "\n");
            assertEquals("QMP input must be a JSON object", c.read().at("/error/desc").asText());
            c.send("[".repeat(1025) + "\n");
            assertEquals("JSON nesting depth limit exceeded", c.read().at("/error/desc").asText());
            c.send("{\"a\":".repeat(1024) + "{");
            assertEquals("JSON nesting depth limit exceeded", c.read().at("/error/desc").asText());
            assertEquals("ok", c.exchange("\n{\"execute\":\"echo\",\"arguments\":{\"text\":\"ok\"}}").get("return")
                .asText());
        }
    }

    @Test
    void manyClientsAtOnce() throws Exception {
        start("");
        final int clients = 64;
        final ExecutorService pool = Executors.newFixedThreadPool(clients);
        try {
            final List<Future<Integer>> results = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                final int n = i;
                results.add(pool.submit(() -> {
                    int ok = 0;
                    try (QmpTestClient c = client()) {
                        for (int k = 0; k < 50; k++) {
                            final String text = "c" + n + "-" + k;
                            final JsonNode r = c.exchange("{\"execute\":\"echo\",\"arguments\":{\"text\":\"" + text
                                + "\"},\"id\":" + k + "}");
                            if (text.equals(r.get("return").asText()) && r.get("id").asInt() == k) {
                                ok++;
                            }
                        }
                        assertEquals("CommandNotFound",
                            c.exchange("{\"execute\":\"nope\"}").at("/error/class").asText());
                    }
                    return ok;
                }));
            }
            for (final Future<Integer> f : results) {
                assertEquals(50, f.get(60, TimeUnit.SECONDS));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void aClientThatNeverReadsIsDroppedAndOthersGetEveryEvent() throws Exception {
        start("");
        try (QmpTestClient deaf = client(); QmpTestClient good = client()) {
            final String filler = "x".repeat(8000);
            final int events = (QmpServer.DEFAULT_MAX_OUTPUT / filler.length()) * 2; // twice the limit
            final CompletableFuture<Integer> reader = CompletableFuture.supplyAsync(() -> {
                int seen = 0;
                try {
                    while (seen < events) {
                        if (good.read().has("event")) {
                            seen++;
                        }
                    }
                } catch (final IOException e) {
                    throw new IllegalStateException(e);
                }
                return seen;
            });
            for (int i = 0; i < events; i++) {
                server.emit("TEST_EVENT", JSON.createObjectNode().put("n", i).put("filler", filler));
            }
            assertEquals(events, reader.get(60, TimeUnit.SECONDS), "the reading client got every event");
            assertTrue(awaitLog("does not read its output").contains(String.valueOf(QmpServer.DEFAULT_MAX_OUTPUT)));
            // The deaf client now drains: it finds less than everything, then the end of the stream.
            final ByteBuffer buf = ByteBuffer.allocate(1 << 16);
            long got = 0;
            int n;
            while ((n = deaf.channel().read(buf.clear())) >= 0) {
                got += n;
            }
            assertTrue(got < (long) events * filler.length(), "dropped, not served in full: " + got + " bytes");
            assertEquals("ok", good.exchange("{\"execute\":\"echo\",\"arguments\":{\"text\":\"ok\"}}").get("return")
                .asText(), "the other client is unaffected");
        }
    }

    @Test
    void socketModeIsAppliedBeforeClientsCanConnect() throws Exception {
        final Path sock = start(",mode=0600");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(sock)));
        assertFalse(Files.list(dir).anyMatch(p -> p.getFileName().toString().contains(".bind-")),
            "no temporary name left behind");
        try (QmpTestClient c = client()) {
            assertEquals("ok", c.exchange("{\"execute\":\"echo\",\"arguments\":{\"text\":\"ok\"}}").get("return")
                .asText());
        }
    }

    @Test
    void optionsAreCheckedWhenParsed() {
        assertEquals(0640, QmpAddress.parse("unix:/x,mode=640").mode());
        assertEquals(java.util.Set.of(0, 1000), QmpAddress.parse("unix:/x,uid=0:1000").uids());
        assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,mode=0999"));
        assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,uid=root"));
        assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,uid=1:"));
        assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("tcp:127.0.0.1:0,uid=0"));
        assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("tcp:127.0.0.1:0,mode=0600"));
    }

    @Test
    void uidAllowListAdmitsListedUidsOnly() throws Exception {
        start(",mode=0666,uid=0:65534");
        try (QmpTestClient root = client()) {
            assertEquals("ok", root.exchange("{\"execute\":\"echo\",\"arguments\":{\"text\":\"ok\"}}")
                .get("return").asText());
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertTrue(greetingAs(65534).contains("\"QMP\""), "uid 65534 is listed: greeted");
    }

    @Test
    void uidAllowListRefusesOthersWithALogLine() throws Exception {
        start(",mode=0666,uid=65534");
        try (QmpTestClient root = QmpTestClient.open(dir.resolve("qmp.sock"))) {
            assertEquals(null, root.readLine(), "root (uid 0) is not listed: closed before the greeting");
        }
        awaitLog("uid 0 (pid " + ProcessHandle.current().pid() + ") is not in the allow-list [65534]");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertTrue(greetingAs(65534).contains("\"QMP\""), "the listed uid still gets in");
    }

    /** Connects as another uid (setpriv + python3, a real separate process) and returns what the server sent. */
    private String greetingAs(final int uid) throws Exception {
        final Process p = new ProcessBuilder("setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups",
            "/usr/bin/python3", "-c", "import socket,sys\n"
                + "s=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\ns.connect(sys.argv[1])\n"
                + "print(s.recv(4096).decode())", dir.resolve("qmp.sock").toString())
            .redirectErrorStream(true).start();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        return new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    }
}
