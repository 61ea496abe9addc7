package org.vsbridge.nativetest.diff;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * QEMU without a guest: {@code -machine none}, or for device commands {@code -machine q35 -accel tcg -S} with a
 * {@code virtio-serial-pci} named {@code vsb0} (so its bus is {@code vsb0.0}, as the bridge's) and no vCPU ever
 * running. Both machines carry a {@code null} chardev {@code vsbport0}, on the q35 one under a virtserialport, as
 * the bridge has. {@code -chardev} strings go through HMP's {@code chardev-add} (by {@code human-monitor-command}),
 * which parses the option string with the same option list and code as {@code -chardev}.
 */
final class QemuSide extends Side {

    private final Path binary;

    QemuSide(final Path binary, final Path dir) {
        super("QEMU", dir);
        this.binary = binary;
    }

    @Override
    void start(final String machine) throws IOException {
        final Path sock = dir.resolve("qmp.sock");
        final List<String> cmd = new ArrayList<>(List.of(binary.toString(), "-nodefaults", "-no-user-config",
            "-display", "none", "-chardev", "null,id=vsbport0"));
        if (machine.equals("q35")) {
            cmd.addAll(List.of("-machine", "q35", "-accel", "tcg", "-S", "-m", "64M",
                "-device", "virtio-serial-pci,id=vsb0,max_ports=8",
                "-device", "virtserialport,chardev=vsbport0,bus=vsb0.0"));
        } else {
            cmd.addAll(List.of("-machine", "none"));
        }
        cmd.addAll(List.of("-qmp", "unix:" + sock + ",server=on,wait=off"));
        process = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
            .redirectOutput(dir.resolve("qemu.log").toFile()).start();
        connect(sock);
    }

    @Override
    String cli(final String spec) throws IOException {
        final String args = Side.JSON.writeValueAsString(java.util.Map.of("command-line", "chardev-add " + spec));
        final String line = qmp.send("{\"execute\":\"human-monitor-command\",\"arguments\":" + args + "}", REPLY);
        final String out = Side.JSON.readTree(line).path("return").asText("").replace("\r", "").strip();
        // Not errors: the pty notice of a success, and the deprecation warning of a short-form boolean
        // ('server' for server=on) with its advice on the next line.
        final List<String> lines = new ArrayList<>();
        boolean advice = false;
        for (final String l : out.lines().toList()) {
            if (advice && l.startsWith("Please use ")) {
                advice = false;
                continue;
            }
            advice = l.startsWith("warning: short-form boolean option");
            if (!advice && !l.startsWith("char device redirected to ") && !l.isBlank()) {
                lines.add(l);
            }
        }
        if (lines.isEmpty()) {
            return "ok";
        }
        final String last = lines.get(lines.size() - 1);
        // QemuOpts errors print the reason, any hint, then this line.
        final String message = last.equals("Error: Parsing chardev args failed") ? lines.get(0)
            : last.replaceFirst("^Error: ", "");
        return normalise("error: " + message);
    }

    @Override
    boolean ownChardev(final String label) {
        return label.equals("compat_monitor0");
    }
}
