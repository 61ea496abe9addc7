package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.Main;

/**
 * The whole bridge process as systemd runs it: sockets from {@code systemd-socket-activate}, a configuration
 * file, a real notify socket, signals. Runs {@link Main} in a child JVM on the test class path.
 */
class ServiceProcessTest {

    private static final Path SOCKET_ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path config(final String text) throws IOException {
        final Path file = dir.resolve("vm1.json");
        Files.writeString(file, text);
        return file;
    }

    private static final String RINGBUF_CONSOLE = """
        {"chardevs": ["ringbuf,id=r0"],
         "devices": [{"driver": "virtconsole", "chardev": "r0", "id": "con0"}]}
        """;

    @Test
    void socketActivatedBridgeNotifiesServesQmpOnItsFdAndStopsCleanly() throws Exception {
        assumeTrue(Files.isExecutable(SOCKET_ACTIVATE) || System.getenv("CI") != null,
            "systemd-socket-activate not installed");
        // Everything else the file says must survive the bridge taking systemd's socket: vhost options, objects
        // and further devices.
        final Path second = dir.resolve("vm1-b.sock");
        final Path cfg = config("""
            {"chardevs": ["ringbuf,id=r0", "ringbuf,id=r1"],
             "devices": [{"driver": "virtconsole", "chardev": "r0", "id": "con0"}],
             "packed-ring": true,
             "objects": [{"qom-type": "authz-simple", "id": "auth0", "identity": "CN=client"}],
             "device-groups": [{"socket-path": "%s",
                                "devices": [{"driver": "virtserialport", "chardev": "r1", "id": "b1"}]}]}
            """.formatted(second));
        final Path vhost = dir.resolve("vm1.sock");
        final Path qmp = dir.resolve("vm1.qmp");
        final String notifyPath = dir.resolve("notify").toString();
        try (NotifyListener manager = new NotifyListener(notifyPath)) {
            final List<String> cmd = new ArrayList<>(List.of(SOCKET_ACTIVATE.toString(),
                "-l", vhost.toString(), "-l", qmp.toString(), "--fdname=vhost-user:qmp",
                "-E", "NOTIFY_SOCKET=" + notifyPath, "-E", "WATCHDOG_USEC=200000"));
            cmd.addAll(ChildJvm.command(Main.class, "--config", cfg.toString()));
            final Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile()).start();
            try {
                // Connecting makes systemd-socket-activate exec the bridge; it greets once it serves the fd.
                try (SocketChannel ch = ChildJvm.connectWhenListening(qmp)) {
                    final BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch),
                        StandardCharsets.UTF_8));
                    final OutputStream out = Channels.newOutputStream(ch);
                    final String ready = manager.awaitContaining("READY=1", 60_000);
                    assertNotNull(ready, "no READY=1");
                    assertTrue(ready.contains("STATUS=2 devices, 2 port(s)"), ready);
                    assertTrue(JSON.readTree(in.readLine()).has("QMP"));
                    out.write(("{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"query-chardev\"}\n"
                        + "{\"execute\":\"query-vserport\"}\n"
                        + "{\"execute\":\"object-del\",\"arguments\":{\"id\":\"auth0\"}}\n")
                        .getBytes(StandardCharsets.UTF_8));
                    assertTrue(JSON.readTree(in.readLine()).has("return"));
                    final JsonNode chardevs = JSON.readTree(in.readLine()).get("return");
                    assertEquals("r0", chardevs.get(0).get("label").asText());
                    final JsonNode ports = JSON.readTree(in.readLine()).get("return");
                    assertEquals(2, ports.size(), ports.toString());
                    assertEquals("vsb1.0", ports.get(1).get("bus").asText(), ports.toString());
                    assertEquals("b1", ports.get(1).get("id").asText(), ports.toString());
                    final JsonNode deleted = JSON.readTree(in.readLine());
                    assertTrue(deleted.has("return"), "the file's object exists: " + deleted);
                }
                assertTrue(Files.exists(second), "the second device listens on its path");
                assertTrue((features(vhost) & (1L << 34)) != 0, "packed-ring from the file is offered on the "
                    + "inherited socket");
                assertNotNull(manager.awaitContaining("WATCHDOG=1", 30_000), "no WATCHDOG=1");
                p.destroy(); // SIGTERM
                assertNotNull(manager.awaitContaining("STOPPING=1", 30_000), "no STOPPING=1");
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "did not exit");
                final String out = Files.readString(dir.resolve("out.txt"));
                assertEquals(0, p.exitValue(), out);
                assertTrue(out.contains("socket activation: fd 3=vhost-user, fd 4=qmp"), out);
                assertTrue(out.contains("QMP listening on inherited fd 4"), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    /** GET_FEATURES over a fresh vhost-user connection to {@code socket}: the features the backend offers. */
    private static long features(final Path socket) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(socket));
            final ByteBuffer request = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
            request.putInt(1).putInt(1).putInt(0).flip(); // GET_FEATURES, version 1, no payload
            ch.write(request);
            final ByteBuffer reply = ByteBuffer.allocate(20).order(ByteOrder.LITTLE_ENDIAN);
            while (reply.hasRemaining() && ch.read(reply) >= 0) {
                // a reply may arrive in pieces
            }
            assertEquals(1, reply.getInt(0), "reply to GET_FEATURES");
            assertEquals(8, reply.getInt(8), "u64 payload");
            return reply.getLong(12);
        }
    }

    @Test
    void fdOptionServesAnAlreadyListeningSocket() throws Exception {
        assumeTrue(Files.isExecutable(SOCKET_ACTIVATE) || System.getenv("CI") != null,
            "systemd-socket-activate not installed");
        final Path cfg = config(RINGBUF_CONSOLE);
        final Path vhost = dir.resolve("fd.sock");
        final String notifyPath = dir.resolve("notify").toString();
        try (NotifyListener manager = new NotifyListener(notifyPath)) {
            // systemd-socket-activate only creates the listening fd 3; the shell drops LISTEN_* so that the
            // bridge sees nothing but --fd 3, as a management layer starting a vhost-user backend would.
            final StringBuilder java = new StringBuilder();
            for (final String a : ChildJvm.command(Main.class, "--config", cfg.toString(), "--fd", "3")) {
                java.append(" '").append(a).append('\'');
            }
            final List<String> cmd = List.of(SOCKET_ACTIVATE.toString(), "-l", vhost.toString(),
                "-E", "NOTIFY_SOCKET=" + notifyPath,
                "/bin/sh", "-c", "unset LISTEN_FDS LISTEN_PID LISTEN_FDNAMES; exec" + java);
            final Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile()).start();
            try {
                try (SocketChannel ch = ChildJvm.connectWhenListening(vhost)) {
                    assertNotNull(manager.awaitContaining("READY=1", 60_000), "no READY=1");
                }
                p.destroy();
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "did not exit");
                final String out = Files.readString(dir.resolve("out.txt"));
                assertEquals(0, p.exitValue(), out);
                assertTrue(out.contains("vhost-user backend listening on fd 3"), out);
                assertTrue(out.contains("frontend connected"), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    private record Result(int status, String stdout, String stderr) {
    }

    private Result run(final String... args) throws Exception {
        final Path out = dir.resolve("stdout");
        final Path err = dir.resolve("stderr");
        final Process p = new ProcessBuilder(ChildJvm.command(Main.class, args))
            .redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "did not exit");
        return new Result(p.exitValue(), Files.readString(out), Files.readString(err));
    }

    @Test
    void aBadConfigFileFailsNamingTheKeyAndPosition() throws Exception {
        final Path cfg = config("{\n  \"socket-path\": \"" + dir.resolve("x.sock") + "\",\n  \"max_ports\": 4\n}\n");
        final Result r = run("--config", cfg.toString());
        assertEquals(1, r.status(), r.stderr());
        assertTrue(r.stderr().contains(cfg + ":3:3: 'max_ports': unknown key"), r.stderr());
        final Result check = run("--config", cfg.toString(), "--check-config");
        assertEquals(1, check.status());
        assertTrue(check.stderr().contains("'max_ports': unknown key"), check.stderr());
    }

    @Test
    void aValidConfigurationThatFailsToOpenExitsForARestartNotForGood() throws Exception {
        // A client chardev whose peer is not listening yet: the configuration is fine, opening it is not (yet).
        final Path cfg = config("""
            {"socket-path": "%s",
             "chardevs": ["socket,id=c0,path=%s"],
             "devices": [{"driver": "virtconsole", "chardev": "c0"}]}
            """.formatted(dir.resolve("v.sock"), dir.resolve("nobody-listens.sock")));
        assertEquals(0, run("--config", cfg.toString(), "--check-config").status());
        final Result r = run("--config", cfg.toString());
        assertEquals(75, r.status(), r.stderr());
        assertTrue(r.stderr().contains("Failed to connect to"), r.stderr());
    }

    @Test
    void checkConfigValidatesThePortPlanWithTheCommandLineOnTop() throws Exception {
        final Path cfg = config(RINGBUF_CONSOLE);
        final Result ok = run("--config", cfg.toString(), "--check-config");
        assertEquals(0, ok.status(), ok.stderr());
        assertTrue(ok.stdout().startsWith("configuration OK: vhost-user socket (from socket activation"), ok.stdout());
        assertTrue(ok.stdout().contains("port 0: virtconsole chardev=r0 id=con0"), ok.stdout());
        final Result bad = run("--config", cfg.toString(), "--check-config", "--device",
            "virtserialport,chardev=r0,nr=0");
        assertEquals(1, bad.status());
        assertTrue(bad.stderr().contains("Port number 0 on virtio-serial devices reserved"), bad.stderr());
    }

    @Test
    void printCapabilitiesFollowsTheBackendConvention() throws Exception {
        final Result r = run("--print-capabilities", "--socket-path", "/nonexistent/dir/x.sock");
        assertEquals(0, r.status(), r.stderr());
        final JsonNode caps = JSON.readTree(r.stdout());
        assertEquals("console", caps.get("type").asText());
        assertEquals(0, caps.get("features").size());
    }
}
