package org.vsbridge.nativetest.realguest;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What a real-guest run needs from the machine: a QEMU with {@code vhost-user-test-device-pci}
 * (10.2 or later), the bridge jar and the guest image. Missing pieces skip the tests with the
 * reason, except under {@code CI}, where they fail them.
 *
 * <p>QEMU is looked up in this order: env {@code QEMU}; {@code qemu-system-x86_64} on
 * {@code PATH}; the project's test copy at {@code ../shared/tools/qemu/bin} next to the
 * repository (where CI puts it, DESIGN.md). A candidate counts only if {@code -device help}
 * lists {@code vhost-user-test-device-pci}.
 */
final class RealGuestEnvironment {
    static final String DEVICE = "vhost-user-test-device-pci";

    private static RealGuestEnvironment cached;
    private static String cachedProblem;

    final Path moduleDir;
    final Path qemu;
    final Path bridgeJar;
    final GuestImage image;

    private RealGuestEnvironment(final Path moduleDir, final Path qemu, final Path bridgeJar, final GuestImage image) {
        this.moduleDir = moduleDir;
        this.qemu = qemu;
        this.bridgeJar = bridgeJar;
        this.image = image;
    }

    /** The environment, or a skipped (failed under CI) test saying what is missing. */
    static synchronized RealGuestEnvironment require(final boolean needBridge) {
        if (cached == null && cachedProblem == null) {
            try {
                cached = discover();
            } catch (final Exception e) {
                cachedProblem = e.getMessage();
            }
        }
        if (cachedProblem != null) {
            unavailable(cachedProblem);
        }
        if (needBridge && !Files.isRegularFile(cached.bridgeJar)) {
            unavailable("the bridge jar " + cached.bridgeJar + " does not exist (system property bridge.jar;"
                + " build it with mvn package)");
        }
        return cached;
    }

    private static void unavailable(final String why) {
        if (System.getenv("CI") != null) {
            fail("real-guest suite cannot run under CI: " + why);
        }
        assumeTrue(false, "real-guest suite skipped: " + why);
    }

    private static RealGuestEnvironment discover() throws IOException, InterruptedException {
        final Path moduleDir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        final Path qemu = findQemu(moduleDir);
        final String jar = System.getProperty("bridge.jar",
            moduleDir.resolve("../bridge-core/target/vhost-serial-bridge.jar").toString());
        final GuestImage image = GuestImage.build(moduleDir, moduleDir.resolve("target/guest"));
        return new RealGuestEnvironment(moduleDir, qemu, Path.of(jar).toAbsolutePath().normalize(), image);
    }

    private static Path findQemu(final Path moduleDir) throws IOException, InterruptedException {
        final List<String> tried = new ArrayList<>();
        final String env = System.getenv("QEMU");
        if (env != null && !env.isBlank()) {
            final String why = check(Path.of(env));
            if (why == null) {
                return Path.of(env);
            }
            // An explicit QEMU that does not work is an error, not a reason to look elsewhere.
            throw new IOException("QEMU=" + env + " is not usable: " + why);
        }
        final List<Path> candidates = new ArrayList<>();
        for (final String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty()) {
                candidates.add(Path.of(dir, "qemu-system-x86_64"));
            }
        }
        candidates.add(moduleDir.resolve("../../shared/tools/qemu/bin/qemu-system-x86_64").normalize());
        for (final Path c : candidates) {
            if (!Files.isExecutable(c)) {
                continue;
            }
            final String why = check(c);
            if (why == null) {
                return c;
            }
            tried.add(c + ": " + why);
        }
        throw new IOException("no QEMU with " + DEVICE + " (need QEMU >= 10.2; set env QEMU)"
            + (tried.isEmpty() ? ": no qemu-system-x86_64 on PATH" : "; tried " + String.join("; ", tried)));
    }

    /** Null when {@code qemu} runs and offers the generic vhost-user device, else why not. */
    private static String check(final Path qemu) throws IOException, InterruptedException {
        final Process p = new ProcessBuilder(qemu.toString(), "-device", "help").redirectErrorStream(true).start();
        final byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            return "-device help did not finish";
        }
        final String text = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            return "-device help failed (" + p.exitValue() + "): " + text.strip().lines().findFirst().orElse("");
        }
        return text.contains("\"" + DEVICE + "\"") ? null : "no " + DEVICE + " in -device help";
    }
}
