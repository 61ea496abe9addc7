package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shipped units pass {@code systemd-analyze verify} without a single warning; the descriptor is valid. */
class UnitFilesTest {

    private static final Path REPO = Path.of(System.getProperty("user.dir")).getParent();
    private static final Path UNITS = REPO.resolve("systemd");
    private static final String BINARY = "/usr/lib/vhost-serial-bridge/bin/vhost-serial-bridge";
    private static final List<String> FILES = List.of("vhost-serial-bridge@.service", "vhost-serial-bridge@.socket",
        "vhost-serial-bridge-qmp@.socket");

    @TempDir
    Path dir;

    @Test
    void unitsVerify() throws Exception {
        final Path analyze = Path.of("/usr/bin/systemd-analyze");
        assumeTrue(Files.isExecutable(analyze) || System.getenv("CI") != null, "systemd-analyze not installed");
        // verify checks that ExecStart= exists; the units name the installed path, so point it at the
        // repository's launcher (the file the package installs there). Nothing else is changed.
        final Path launcher = REPO.resolve("packaging/bin/vhost-serial-bridge");
        assertTrue(Files.isExecutable(launcher), launcher + " must be executable");
        for (final String f : FILES) {
            final String text = Files.readString(UNITS.resolve(f));
            Files.writeString(dir.resolve(f), text.replace(BINARY, launcher.toString()));
        }
        final List<String> cmd = new ArrayList<>(List.of(analyze.toString(), "verify", "--man=no"));
        cmd.add(dir.resolve("vhost-serial-bridge@vm1.service").toString());
        cmd.add(dir.resolve("vhost-serial-bridge@vm1.socket").toString());
        cmd.add(dir.resolve("vhost-serial-bridge-qmp@vm1.socket").toString());
        final Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertEquals("", out.strip(), "systemd-analyze verify warnings");
    }

    @Test
    void unitsHaveTheAgreedShape() throws IOException {
        final String service = Files.readString(UNITS.resolve("vhost-serial-bridge@.service"));
        for (final String line : List.of("Type=notify", "ExecStart=" + BINARY + " --config /etc/vhost-serial-bridge/%i.json",
            "DynamicUser=yes", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_VSOCK", "CapabilityBoundingSet=",
            "RuntimeDirectory=vhost-serial-bridge/%i", "WatchdogSec=10")) {
            assertTrue(service.lines().anyMatch(line::equals), "service lacks " + line);
        }
        final String socket = Files.readString(UNITS.resolve("vhost-serial-bridge@.socket"));
        assertTrue(socket.contains("ListenStream=/run/vhost-serial-bridge/%i.sock\nFileDescriptorName=vhost-user\n"));
        final String qmp = Files.readString(UNITS.resolve("vhost-serial-bridge-qmp@.socket"));
        assertTrue(qmp.contains("FileDescriptorName=qmp\n"));
    }

    /** docs/interop/vhost-user.json, VhostUserBackend: description, type, binary (all required), tags. */
    @Test
    void backendDescriptorFollowsTheSchema() throws IOException {
        final JsonNode d = new ObjectMapper().readTree(REPO.resolve("packaging/qemu/50-vhost-serial-bridge.json").toFile());
        assertEquals("console", d.get("type").asText());
        assertEquals(BINARY, d.get("binary").asText());
        assertTrue(d.get("description").isTextual());
        d.fieldNames().forEachRemaining(k -> assertTrue(List.of("description", "type", "binary", "tags").contains(k), k));
        final JsonNode caps = new ObjectMapper().readTree(ServiceOptions.CAPABILITIES);
        assertEquals("console", caps.get("type").asText());
        assertTrue(caps.get("features").isArray());
    }
}
