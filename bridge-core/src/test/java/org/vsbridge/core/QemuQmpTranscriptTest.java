package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.CommandLine;

/**
 * QEMU 10.2's answers, recorded from the QEMU in ../shared/tools/qemu (resources qemu-qmp/*.txt), replayed against a
 * real bridge over its QMP socket: every answer must be the same text, byte for byte (QEMU's member order and
 * spacing included), apart from event timestamps. The inputs are QMP's input rules (bad JSON, QEMU's JSON
 * extensions, members, ids, arguments named in QEMU's order), capabilities negotiation, and device_add/device_del.
 */
class QemuQmpTranscriptTest {

    @TempDir
    Path dir;

    private QmpTestClient monitor;

    @BeforeEach
    void start() throws Exception {
        monitor = QmpTestClient.startBridge(CommandLine.parse(new String[] {
            "--chardev", "ringbuf,id=r0", "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
            "--socket-path", dir.resolve("vu.sock").toString(), "--max-ports", "31",
            "--device", "virtconsole,chardev=r0,id=con0"}).config(), dir.resolve("qmp.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        monitor.close();
    }

    private record Step(byte[] input, List<String> replies) {
    }

    private static List<Step> transcript(final String name) throws IOException {
        final List<Step> steps = new ArrayList<>();
        try (InputStream in = QemuQmpTranscriptTest.class.getResourceAsStream("/qemu-qmp/" + name)) {
            for (final String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\r?\n")) {
                if (line.startsWith("#") || line.isEmpty()) {
                    continue;
                }
                if (line.startsWith(">> ")) {
                    final String text = line.substring(3).replace("vser0.0", "vsb0.0");
                    final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                    final String[] parts = text.split("\\\\xff", -1);
                    for (int i = 0; i < parts.length; i++) {
                        if (i > 0) {
                            bytes.write(0xFF);
                        }
                        bytes.writeBytes(parts[i].getBytes(StandardCharsets.UTF_8));
                    }
                    bytes.write('\n');
                    steps.add(new Step(bytes.toByteArray(), new ArrayList<>()));
                } else {
                    steps.get(steps.size() - 1).replies().add(normal(line));
                }
            }
        }
        return steps;
    }

    private static String normal(final String reply) {
        return reply.replaceAll("\"timestamp\": \\{[^}]*\\}", "\"timestamp\": T");
    }

    @ParameterizedTest
    @ValueSource(strings = {"input-rules.txt", "negotiation.txt", "device-commands.txt"})
    void answersAsQemuDid(final String name) throws Exception {
        final boolean negotiate = !name.equals("negotiation.txt");
        try (QmpTestClient c = QmpTestClient.open(dir.resolve("qmp.sock"))) {
            final String greeting = c.readLine();
            assertTrue(greeting.endsWith(", \"capabilities\": [\"oob\"]}}"), greeting);
            assertTrue(greeting.contains("\"package\": \"vhost-serial-bridge "), greeting);
            if (negotiate) {
                c.send("{\"execute\":\"qmp_capabilities\"}\n");
                assertEquals("{\"return\": {}}", c.readLine());
            }
            final List<Step> steps = transcript(name);
            assertTrue(steps.size() > 10, "the transcript " + name);
            for (final Step step : steps) {
                c.send(step.input());
                final String sent = new String(step.input(), StandardCharsets.UTF_8).strip();
                for (final String expected : step.replies()) {
                    assertEquals(expected, normal(c.readLine()), "the answer to " + sent);
                }
            }
        }
    }
}
