package org.vsbridge.core;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.CommandLine;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.config.ConfigFile;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The configuration file of docs/configuration.md is the shipped {@code vm1.json.example}, the QEMU command of
 * docs/systemd.md has that file's {@code num_vqs}, and the file leaves room for the {@code device_add} example of
 * docs/qmp.md (one port, not two).
 */
class ShippedExampleTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();
    private static final Path EXAMPLE = ROOT.resolve("packaging").resolve("vm1.json");

    @TempDir
    Path dir;

    @Test
    void theDocsShowTheShippedFileAndItsQueueCount() throws Exception {
        final String readme = Files.readString(ROOT.resolve("docs").resolve("configuration.md"));
        final int at = readme.indexOf("The shipped example\n(`vm1.json.example`)");
        assertTrue(at >= 0, "docs/configuration.md introduces the shipped example");
        final int start = readme.indexOf("\n    {\n", at) + 1;
        final int end = readme.indexOf("\n    }\n", start) + 7;
        final String shown = readme.substring(start, end).replaceAll("(?m)^    ", "");
        assertEquals(Files.readString(EXAMPLE), shown);

        final PortPlan plan = ConfigFile.check(ConfigFile.load(EXAMPLE), false).get(0);
        assertEquals(List.of(0, 1, 2), plan.ports().stream().map(p -> p.nr()).toList());
        assertEquals(4, plan.maxPorts());
        final int numVqs = 2 * (plan.maxPorts() + 1);
        final String service = Files.readString(ROOT.resolve("docs").resolve("systemd.md"));
        assertTrue(service.contains("num_vqs=" + numVqs + ",config_size=12"), "the service's QEMU command");
        final String qmp = Files.readString(ROOT.resolve("docs").resolve("qmp.md"));
        assertTrue(qmp.contains("\"device_add\", \"arguments\": {\"driver\": \"virtserialport\", \"chardev\": \"extra\""),
            "docs/qmp.md shows the device_add this test runs");
    }

    @Test
    void theShippedFileTakesTheDocumentedDeviceAddOnce() throws Exception {
        // The shipped file with this test's sockets: chardevs of the same ids, the same ports and max-ports.
        final BridgeConfig config = ConfigFile.merge(ConfigFile.load(EXAMPLE), CommandLine.parse(new String[] {
            "--socket-path", dir.resolve("vm1.sock").toString(),
            "--chardev", "ringbuf,id=con", "--chardev", "ringbuf,id=agent", "--chardev", "ringbuf,id=log",
            "--qmp", "unix:" + dir.resolve("vm1.qmp") + ",server,nowait"}, true).config());
        final Bridge bridge = new Bridge(config, () -> { });
        bridge.start();
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            channel.connect(UnixDomainSocketAddress.of(dir.resolve("vm1.qmp")));
            final BufferedReader in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel),
                StandardCharsets.UTF_8));
            final OutputStream out = Channels.newOutputStream(channel);
            assertTrue(read(in).has("QMP"));
            assertTrue(call(in, out, "{\"execute\": \"qmp_capabilities\"}").has("return"));
            assertEquals("{}", call(in, out, "{\"execute\": \"chardev-add\", \"arguments\": {\"id\": \"extra\","
                + " \"backend\": {\"type\": \"ringbuf\", \"data\": {}}}}").get("return").toString());
            assertEquals("{}", call(in, out, "{\"execute\": \"device_add\", \"arguments\": {\"driver\":"
                + " \"virtserialport\", \"chardev\": \"extra\", \"id\": \"extra0\", \"name\": \"org.example.extra\"}}")
                .get("return").toString());
            call(in, out, "{\"execute\": \"chardev-add\", \"arguments\": {\"id\": \"extra2\","
                + " \"backend\": {\"type\": \"ringbuf\", \"data\": {}}}}");
            final JsonNode full = call(in, out, "{\"execute\": \"device_add\", \"arguments\": {\"driver\":"
                + " \"virtserialport\", \"chardev\": \"extra2\", \"id\": \"extra1\"}}");
            assertEquals("virtio-serial-bus: Maximum port limit for this device reached",
                full.get("error").get("desc").asText(), full.toString());
        } finally {
            bridge.close();
        }
    }

    private static JsonNode read(final BufferedReader in) throws Exception {
        final String line = CompletableFuture.supplyAsync(() -> {
            try {
                return in.readLine();
            } catch (final java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }).get(20, TimeUnit.SECONDS);
        assertNotNull(line, "QMP connection closed");
        return JSON.readTree(line);
    }

    private static JsonNode call(final BufferedReader in, final OutputStream out, final String command)
        throws Exception {
        out.write((command + "\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        JsonNode reply;
        while ((reply = read(in)).has("event")) {
            continue;
        }
        return reply;
    }
}
