package org.vsbridge.nativetest.diff;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The QEMU to compare with, found as the real-guest suite finds it: env {@code QEMU}; {@code qemu-system-x86_64}
 * on {@code PATH}; the project's copy at {@code ../shared/tools/qemu/bin} beside the repository. Without one the
 * suite is skipped, except under {@code CI}, where it fails. The cases were written against QEMU 10.2.
 */
final class QemuBinary {

    private QemuBinary() {
    }

    static Path require(final Path moduleDir) {
        final List<String> tried = new ArrayList<>();
        final String env = System.getenv("QEMU");
        final List<Path> candidates = new ArrayList<>();
        if (env != null && !env.isBlank()) {
            candidates.add(Path.of(env));
        } else {
            for (final String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
                if (!dir.isEmpty()) {
                    candidates.add(Path.of(dir, "qemu-system-x86_64"));
                }
            }
            candidates.add(moduleDir.resolve("../../shared/tools/qemu/bin/qemu-system-x86_64").normalize());
        }
        for (final Path c : candidates) {
            if (!Files.isExecutable(c)) {
                tried.add(c + ": not executable");
                continue;
            }
            final String version = version(c);
            if (version.startsWith("QEMU emulator version 10.2")) {
                return c;
            }
            tried.add(c + ": " + version);
        }
        final String why = "no QEMU 10.2 (set env QEMU); tried " + String.join("; ", tried);
        if (System.getenv("CI") != null) {
            fail("QEMU differential suite cannot run under CI: " + why);
        }
        assumeTrue(false, "QEMU differential suite skipped: " + why);
        return null;
    }

    private static String version(final Path qemu) {
        try {
            final Process p = new ProcessBuilder(qemu.toString(), "-version").redirectErrorStream(true).start();
            final String out = new String(p.getInputStream().readAllBytes()).strip();
            if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
                return "-version failed: " + out;
            }
            return out.lines().findFirst().orElse("");
        } catch (final IOException e) {
            return e.toString();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
    }
}
