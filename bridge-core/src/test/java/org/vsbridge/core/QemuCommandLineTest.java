package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.CommandLine;

/** The QEMU command the bridge prints can be pasted into a shell as it is. */
class QemuCommandLineTest {

    @Test
    void printedCommandIsOneValidShellCommandWithNotesOnTheirOwnLines() throws Exception {
        final BridgeConfig config = CommandLine.parse(new String[] {"--socket-path", "/tmp/q cl/v.sock",
            "--chardev", "null,id=c0", "--device", "virtserialport,chardev=c0,name=a"}, false).config();
        final String text = Main.qemuCommandLine(config, 4);
        // bash -n parses without running: a note on a command line would be a syntax error
        final Process bash = new ProcessBuilder("bash", "-n").redirectErrorStream(true).start();
        bash.getOutputStream().write(text.getBytes(StandardCharsets.UTF_8));
        bash.getOutputStream().close();
        final String errors = new String(bash.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, bash.waitFor(), "bash -n: " + errors + "\n" + text);
        final List<String> lines = text.lines().toList();
        for (final String line : lines) {
            assertTrue(line.startsWith("#") || line.startsWith("qemu-system-x86_64") || line.startsWith("    -"),
                "a command line or a note of its own: " + line);
        }
        assertFalse(lines.stream().filter(l -> !l.startsWith("#")).anyMatch(l -> l.contains("(")), text);
        assertTrue(text.contains("-chardev 'socket,id=vu,path=/tmp/q cl/v.sock'"), text);
        assertTrue(text.contains("num_vqs=4,") && text.contains("-nodefaults -display none")
            && text.contains("console=hvc0"), text);
    }
}
