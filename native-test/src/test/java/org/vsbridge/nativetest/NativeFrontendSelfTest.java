package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The native frontend against the small C test backend (vsb-test-backend), without the bridge: checks that
 * the frontend's rings, descriptor chains, EVENT_IDX handling, pattern and checksum agree with an independent
 * implementation, so a failure of the bridge tests points at the bridge.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeFrontendSelfTest {

    private static final Duration WAIT = Duration.ofMinutes(1);

    @TempDir
    Path dir;

    @ParameterizedTest(name = "extra frontend options [{0}]")
    @ValueSource(strings = {"", "--tx-segs 4", "--tx-segs 3 --indirect", "--feature-mask 0x100000003",
        "--proto-mask 0x209 --early-fill"})
    void frontendAndTestBackendAgreeOnEveryByte(final String extra) throws Exception {
        final Path sock = dir.resolve("b.sock");
        final Process backend = new ProcessBuilder(FrontendProcess.testBackendExecutable().toString(),
            "--socket", sock.toString(), "--ports", "3", "--rx", "262144")
            .redirectErrorStream(true).redirectOutput(dir.resolve("backend.out").toFile()).start();
        try {
            final List<String> args = new ArrayList<>(List.of("--socket", sock.toString(),
                "--port", "0:tx=262144:rx=262144", "--port", "1:tx=4194304:rx=262144:open",
                "--port", "2:tx=1048576:rx=262144:open"));
            if (!extra.isEmpty()) {
                args.addAll(List.of(extra.split(" ")));
            }
            try (FrontendProcess f = FrontendProcess.start(dir, "frontend", args)) {
                f.assertExitsCleanly(WAIT);
                backend.getOutputStream().close();
                final String backendOut = awaitBackendReport(backend, dir.resolve("backend.out"));
                for (int port = 0; port <= 2; port++) {
                    final FrontendProcess.Result r = f.result(port);
                    final String line = backendOut.lines().filter(l -> l.startsWith("BACKEND port=" + r.port() + " "))
                        .findFirst().orElseThrow(() -> new AssertionError("no backend report\n" + backendOut));
                    assertEquals(true, line.contains(" tx_sum=" + r.txSum() + " "), "tx of port " + r.port() + ": " + line);
                    assertEquals(true, line.endsWith(" rx_sum=" + r.rxSum()), "rx of port " + r.port() + ": " + line);
                    assertEquals("org.test." + port, r.name());
                }
                assertEquals(4194304, f.result(1).txBytes());
                assertEquals(262144, f.result(2).rxBytes());
            }
        } finally {
            backend.destroyForcibly();
            backend.waitFor(5, TimeUnit.SECONDS);
        }
    }

    @Test
    void patternAndChecksumMatchTheFrontendsDefinition() throws Exception {
        // The first 16 guest->host bytes of port 1, computed by hand from the xorshift definition.
        long x = 0x9E3779B97F4A7C15L ^ (1L << 32) ^ 1;
        final byte[] manual = new byte[16];
        for (int w = 0; w < 2; w++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            for (int i = 0; i < 8; i++) {
                manual[8 * w + i] = (byte) (x >>> (8 * i));
            }
        }
        final byte[] streamed = new byte[16];
        final PatternStream s = PatternStream.guestToHost(1);
        s.fill(streamed, 0, 3); // odd split: the stream must carry its position
        s.fill(streamed, 3, 13);
        assertEquals(java.util.Arrays.toString(manual), java.util.Arrays.toString(streamed));
        final Fnv1a64 h = new Fnv1a64();
        h.update("a".getBytes(StandardCharsets.US_ASCII), 0, 1);
        assertEquals("af63dc4c8601ec8c", h.hex()); // the published FNV-1a 64 of "a"
    }

    private static String awaitBackendReport(final Process backend, final Path out) throws Exception {
        final long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            final String s = read(out);
            if (s.lines().filter(l -> l.startsWith("BACKEND ")).count() >= 3) {
                return s;
            }
            Thread.sleep(20);
        }
        throw new AssertionError("the test backend printed no report\n" + read(out));
    }

    private static String read(final Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
    }
}
