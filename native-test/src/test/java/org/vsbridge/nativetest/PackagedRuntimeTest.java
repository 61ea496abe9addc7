package org.vsbridge.nativetest;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.nativetest.kit.Fnv1a64;
import org.vsbridge.nativetest.kit.PatternStream;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * The bridge on the Java runtime the package ships, started through the package's launcher: a jlink image of
 * exactly the modules packaging/jlink-modules keeps (java.base, java.logging, jdk.unsupported, jdk.crypto.ec). It
 * must run the embedded default on a terminal and a configuration with a TLS socket chardev (mutual
 * authentication, EC certificates), a websocket chardev, a ring buffer and a QMP socket, and carry bytes both ways
 * through each, so that a module the bridge needs at run time cannot be left out unnoticed.
 *
 * <p>The image is linked here from the running JDK (plain, for speed; the package's is compressed and stripped),
 * or {@code -Dvsb.packagedRuntime=DIR} names an installed tree ({@code DIR/bin/vhost-serial-bridge},
 * {@code DIR/lib/vhost-serial-bridge.jar}, {@code DIR/runtime}), e.g. packaging/target/root/usr/lib/vhost-serial-bridge
 * after packaging/build.sh.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES)
class PackagedRuntimeTest {

    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final Path REPO = Path.of(System.getProperty("user.dir")).getParent();
    private static final int BYTES = 100_000;

    /** The tree /usr/lib/vhost-serial-bridge of the package: bin/, lib/, runtime/. */
    private static Path base;

    @TempDir
    Path dir;

    /** The modules of packaging/jlink-modules that the runtime keeps (lines without a dash). */
    static TreeSet<String> keptModules() throws IOException {
        final TreeSet<String> kept = new TreeSet<>();
        for (final String line : Files.readAllLines(REPO.resolve("packaging/jlink-modules"))) {
            final String t = line.strip();
            if (!t.isEmpty() && !t.startsWith("#") && !t.startsWith("-")) {
                kept.add(t.split("\\s+")[0]);
            }
        }
        return kept;
    }

    @BeforeAll
    static void packagedTree() throws Exception {
        final String given = System.getProperty("vsb.packagedRuntime");
        if (given != null && !given.isBlank()) {
            base = Path.of(given).toAbsolutePath();
            System.out.println("[packaged runtime] " + base + " (given)");
            return;
        }
        final Path tree = Path.of(System.getProperty("user.dir"), "target", "packaged-runtime");
        if (Files.exists(tree)) {
            try (Stream<Path> s = Files.walk(tree)) {
                for (final Path p : s.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(p);
                }
            }
        }
        Files.createDirectories(tree.resolve("bin"));
        Files.createDirectories(tree.resolve("lib"));
        final Path jlink = Path.of(System.getProperty("java.home"), "bin", "jlink");
        run(List.of(jlink.toString(), "--add-modules", String.join(",", keptModules()), "--strip-debug",
            "--no-header-files", "--no-man-pages", "--output", tree.resolve("runtime").toString()), tree);
        Files.copy(REPO.resolve("packaging/bin/vhost-serial-bridge"), tree.resolve("bin/vhost-serial-bridge"));
        tree.resolve("bin/vhost-serial-bridge").toFile().setExecutable(true);
        Files.copy(org.vsbridge.nativetest.kit.BridgeProcess.jar(), tree.resolve("lib/vhost-serial-bridge.jar"),
            StandardCopyOption.REPLACE_EXISTING);
        base = tree;
        System.out.println("[packaged runtime] " + base + " (linked from " + System.getProperty("java.home") + ")");
    }

    private static String run(final List<String> cmd, final Path cwd) throws IOException, InterruptedException {
        final Process p = new ProcessBuilder(cmd).directory(cwd.toFile()).redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), String.join(" ", cmd) + " hangs");
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    private static Path launcher() {
        return base.resolve("bin/vhost-serial-bridge");
    }

    @Test
    void theRuntimeHoldsExactlyTheListedModules() throws Exception {
        final String out = run(List.of(base.resolve("runtime/bin/java").toString(), "--list-modules"), base);
        final TreeSet<String> present = new TreeSet<>();
        out.lines().map(l -> l.strip().split("@")[0]).filter(l -> !l.isEmpty()).forEach(present::add);
        assertEquals(keptModules(), present);
        assertFalse(present.contains("java.desktop") || present.contains("java.sql") || present.contains("java.compiler"));
    }

    // ------------------------------------------------------------------------------------------------------------
    // The embedded default in a terminal (a tmux pane), as EmbeddedConsoleTest runs it on the full JDK.

    private String tmux(final Path socket, final String... args) throws IOException, InterruptedException {
        final List<String> cmd = new ArrayList<>(List.of("tmux", "-S", socket.toString()));
        cmd.addAll(List.of(args));
        return run(cmd, dir);
    }

    @Test
    void theEmbeddedDefaultRunsOnThePackagedRuntime() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/tmux")) || System.getenv("CI") != null, "tmux not installed");
        final Path tmuxSocket = dir.resolve("tmux.sock");
        final String script = "env --default-signal=HUP,INT,TERM " + launcher() + "; echo $? > status; exec sleep 600";
        tmux(tmuxSocket, "new-session", "-d", "-s", "console", "-x", "100", "-y", "30", "-c", dir.toString(), "sh", "-c",
            script);
        try (FrontendProcess guest = FrontendProcess.start(dir, "guest", List.of("--socket",
            dir.resolve("vhost-serial-bridge.sock").toString(), "--port", "0", "--stdin", "--no-verify"))) {
            // The terminal's size (read through JNA) reaches the guest.
            guest.awaitLine("^CONFIG cols=100 rows=30 ", WAIT);
            try (QmpClient qmp = QmpClient.connect(dir.resolve("vhost-serial-bridge.qmp"), WAIT)) {
                final JsonNode chardevs = qmp.execute("query-chardev", WAIT).get("return");
                assertTrue(chardevs.toString().contains("\"label\":\"con0\""), chardevs.toString());
                final JsonNode ports = qmp.execute("query-vserport", WAIT).get("return");
                assertEquals("console0", ports.get(0).get("id").asText(), ports.toString());
            }
            // Keys typed on the terminal reach the guest: Ctrl-C, and C-a C-a as one Ctrl-A.
            guest.command("rx 0 2");
            tmux(tmuxSocket, "send-keys", "-t", "console", "C-c");
            tmux(tmuxSocket, "send-keys", "-t", "console", "C-a", "C-a");
            guest.command("wait");
            guest.awaitLine("^IDLE$", WAIT);
            final int mark = guest.mark();
            guest.command("status");
            guest.awaitLine("^STATUS$", mark, WAIT);
            final Fnv1a64 sum = new Fnv1a64();
            sum.update(new byte[] {0x03, 0x01}, 0, 2);
            assertEquals(sum.hex(), guest.result(0).rxSum(), guest.transcript());
            // C-a x stops the bridge with status 0.
            tmux(tmuxSocket, "send-keys", "-t", "console", "C-a", "x");
            await().atMost(WAIT).until(() -> Files.exists(dir.resolve("status"))
                && !Files.readString(dir.resolve("status")).isBlank());
            final String log = Files.readString(dir.resolve("vhost-serial-bridge.log"));
            assertEquals("0", Files.readString(dir.resolve("status")).strip(), log);
            assertTrue(log.contains("shutdown complete"), log);
            assertNoLinkageError(log);
        } finally {
            new ProcessBuilder("tmux", "-S", tmuxSocket.toString(), "kill-server").start().waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static void assertNoLinkageError(final String log) {
        for (final String bad : List.of("NoClassDefFoundError", "ClassNotFoundException", "UnsatisfiedLinkError",
            "LinkageError", "NoSuchAlgorithmException", "SEVERE", "ERROR")) {
            assertFalse(log.contains(bad), "the bridge's log has " + bad + ":\n" + log);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // A configuration file with TLS, websocket, ring buffer and QMP.

    private void openssl(final Path work, final String... args) throws Exception {
        final List<String> cmd = new ArrayList<>(List.of("openssl"));
        cmd.addAll(List.of(args));
        run(cmd, work);
    }

    /** CA, server certificate for 127.0.0.1 and client certificate (EC P-256); the client's also as PKCS#12. */
    private Path certificates() throws Exception {
        final Path pki = Files.createDirectories(dir.resolve("pki"));
        openssl(pki, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=packaged runtime test CA");
        for (final String who : List.of("server", "client")) {
            openssl(pki, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", who + "-key.pem", "-out", who + ".csr", "-subj", "/CN=" + who);
            Files.writeString(pki.resolve(who + ".ext"), who.equals("server") ? "subjectAltName=IP:127.0.0.1\n"
                : "extendedKeyUsage=clientAuth\n");
            openssl(pki, "x509", "-req", "-in", who + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-out", who + "-cert.pem", "-days", "2", "-extfile", who + ".ext");
        }
        openssl(pki, "pkcs12", "-export", "-in", "client-cert.pem", "-inkey", "client-key.pem", "-out", "client.p12",
            "-passout", "pass:test");
        return pki;
    }

    private static SSLContext clientContext(final Path pki) throws Exception {
        final KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(pki.resolve("client.p12"))) {
            keys.load(in, "test".toCharArray());
        }
        final KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, "test".toCharArray());
        final KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(pki.resolve("ca-cert.pem"))) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        final SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return ctx;
    }

    private static int freeTcpPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    private static byte[] pattern(final PatternStream stream, final int length) {
        final byte[] b = new byte[length];
        stream.fill(b, 0, length);
        return b;
    }

    /** A websocket client that collects the payload of every binary message. */
    private static final class Collector implements WebSocket.Listener {
        final ByteArrayOutputStream received = new ByteArrayOutputStream();

        @Override
        public CompletionStage<?> onBinary(final WebSocket ws, final ByteBuffer data, final boolean last) {
            final byte[] b = new byte[data.remaining()];
            data.get(b);
            synchronized (received) {
                received.write(b, 0, b.length);
            }
            ws.request(1);
            return null;
        }

        int size() {
            synchronized (received) {
                return received.size();
            }
        }

        byte[] bytes() {
            synchronized (received) {
                return received.toByteArray();
            }
        }
    }

    @Test
    void tlsWebsocketRingbufAndQmpRunOnThePackagedRuntime() throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/openssl")) || System.getenv("CI") != null,
            "openssl not installed");
        final Path pki = certificates();
        final int tlsPort = freeTcpPort();
        final int wsPort = freeTcpPort();
        final Path vu = dir.resolve("vu.sock");
        final Path qmpSocket = dir.resolve("bridge.qmp");
        final String config = """
            {
              "socket-path": "%s",
              "max-ports": 4,
              "objects": [ "tls-creds-x509,id=tls0,dir=%s,endpoint=server,verify-peer=on" ],
              "chardevs": [
                "socket,id=tls,host=127.0.0.1,port=%d,server=on,wait=off,tls-creds=tls0",
                "socket,id=ws,host=127.0.0.1,port=%d,server=on,wait=off,websocket=on",
                "ringbuf,id=rb,size=65536"
              ],
              "devices": [
                { "driver": "virtconsole", "chardev": "tls", "id": "con0" },
                { "driver": "virtserialport", "chardev": "ws", "name": "org.test.ws", "id": "ws0" },
                { "driver": "virtserialport", "chardev": "rb", "name": "org.test.rb", "id": "rb0" }
              ],
              "qmp": [ "unix:%s,server=on,wait=off" ]
            }
            """.formatted(vu, pki, tlsPort, wsPort, qmpSocket);
        Files.writeString(dir.resolve("vm.json"), config);
        final Path log = dir.resolve("bridge.log");
        final Process bridge = new ProcessBuilder("env", "--default-signal", launcher().toString(), "--config",
            dir.resolve("vm.json").toString()).directory(dir.toFile()).redirectErrorStream(true)
            .redirectOutput(log.toFile()).start();
        await().atMost(WAIT).until(() -> Files.exists(qmpSocket) || !bridge.isAlive());
        assertTrue(bridge.isAlive(), "the bridge exited with " + (bridge.isAlive() ? "" : bridge.exitValue()) + ":\n"
            + Files.readString(log));
        try (QmpClient qmp = QmpClient.connect(qmpSocket, WAIT)) {
            final String chardevs = qmp.execute("query-chardev", WAIT).get("return").toString();
            for (final String id : List.of("tls", "ws", "rb")) {
                assertTrue(chardevs.contains("\"label\":\"" + id + "\""), chardevs);
            }

            // The host peers connect first (a port without one drops guest output).
            try (SSLSocket tls = (SSLSocket) clientContext(pki).getSocketFactory().createSocket("127.0.0.1", tlsPort)) {
                tls.startHandshake();
                final Collector wsIn = new Collector();
                final WebSocket ws = HttpClient.newHttpClient().newWebSocketBuilder().subprotocols("binary")
                    .buildAsync(URI.create("ws://127.0.0.1:" + wsPort + "/"), wsIn).get(60, TimeUnit.SECONDS);
                await().atMost(WAIT).until(() -> {
                    final String s = qmp.execute("query-chardev", WAIT).get("return").toString();
                    return !s.contains("disconnected:");
                });

                try (FrontendProcess guest = FrontendProcess.start(dir, "guest", List.of("--socket", vu.toString(),
                    "--port", "0", "--port", "1:open", "--port", "2:open", "--stdin"))) {
                    guest.awaitLine("^EVENT guest_open port=2 value=1$", WAIT);
                    for (final int port : List.of(0, 1, 2)) {
                        guest.command("tx " + port + " " + (port == 2 ? 4096 : BYTES));
                    }
                    guest.command("rx 0 " + BYTES);
                    guest.command("rx 1 " + BYTES);

                    // Guest to host: TLS, websocket, ring buffer (read with QMP).
                    final byte[] fromGuest = tls.getInputStream().readNBytes(BYTES);
                    assertArrayEquals(pattern(PatternStream.guestToHost(0), BYTES), fromGuest, "TLS guest->host");
                    await().atMost(WAIT).until(() -> wsIn.size() >= BYTES);
                    assertArrayEquals(pattern(PatternStream.guestToHost(1), BYTES), wsIn.bytes(), "websocket guest->host");
                    final ByteArrayOutputStream rb = new ByteArrayOutputStream();
                    await().atMost(WAIT).until(() -> {
                        final JsonNode r = qmp.execute("ringbuf-read", Map.of("device", "rb", "size", 4096,
                            "format", "base64"), WAIT);
                        rb.write(Base64.getDecoder().decode(r.get("return").asText()));
                        return rb.size() >= 4096;
                    });
                    assertArrayEquals(pattern(PatternStream.guestToHost(2), 4096), rb.toByteArray(), "ringbuf guest->host");

                    // Host to guest: the guest checks the pattern itself.
                    final OutputStream tlsOut = tls.getOutputStream();
                    tlsOut.write(pattern(PatternStream.hostToGuest(0), BYTES));
                    tlsOut.flush();
                    ws.sendBinary(ByteBuffer.wrap(pattern(PatternStream.hostToGuest(1), BYTES)), true)
                        .get(60, TimeUnit.SECONDS);
                    guest.command("wait");
                    guest.awaitLine("^IDLE$", WAIT);
                    final int mark = guest.mark();
                    guest.command("status");
                    guest.awaitLine("^STATUS$", mark, WAIT);
                    assertEquals(BYTES, guest.result(0).rxBytes(), guest.transcript());
                    assertEquals(BYTES, guest.result(1).rxBytes(), guest.transcript());
                    assertEquals(BYTES, guest.result(0).txBytes(), guest.transcript());
                    ws.abort();
                }
            }
            // QMP quit stops the bridge with status 0.
            qmp.execute("quit", WAIT);
        }
        assertTrue(bridge.waitFor(60, TimeUnit.SECONDS), "the bridge did not stop after quit:\n" + Files.readString(log));
        final String text = Files.readString(log);
        assertEquals(0, bridge.exitValue(), text);
        assertNoLinkageError(text);
    }
}
