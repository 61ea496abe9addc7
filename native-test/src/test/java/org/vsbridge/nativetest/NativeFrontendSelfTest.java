package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.awaitility.core.ConditionTimeoutException;
import org.vsbridge.nativetest.kit.Fnv1a64;
import org.vsbridge.nativetest.kit.PatternStream;
import org.vsbridge.nativetest.kit.Waits;

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
        final FrontendProcess.Result[] r = agreeOnEveryByte(List.of(), extra, 1, 4194304, 1048576, 262144);
        assertEquals(4194304, r[1].txBytes());
        assertEquals(262144, r[2].rxBytes());
    }

    /**
     * Packed rings (--packed) on both sides: small rings wrap hundreds of times (4 MiB of 4 KiB rx buffers per
     * port, 32 MiB of tx), chains cross the end of the ring (--tx-segs 3 on 4 or 8 entries), indirect tables,
     * without EVENT_IDX (and INDIRECT_DESC), with buffers posted before the rings start.
     */
    @ParameterizedTest(name = "packed rings [{0}]")
    @ValueSource(strings = {"", "--queue-size 4", "--queue-size 8 --tx-segs 3", "--queue-size 4 --tx-segs 3 --indirect",
        "--queue-size 2 --tx-segs 2", "--queue-size 8 --feature-mask 0x500000003",
        "--queue-size 4 --proto-mask 0x209 --early-fill", "--queue-size 8 --tx-chunk 1000 --tx-depth 3 --tx-segs 5"})
    void packedRingsCarryEveryByteBothWays(final String extra) throws Exception {
        final String args = ("--packed " + extra).trim();
        final FrontendProcess.Result[] r = agreeOnEveryByte(List.of("--packed"), args, 1, 33554432, 8388608, 4194304);
        assertEquals(33554432, r[1].txBytes());
        assertEquals(8388608, r[2].txBytes());
        for (int port = 0; port <= 2; port++) {
            assertEquals(4194304, r[port].rxBytes(), "rx of port " + port);
        }
        final String backendOut = read(dir.resolve("backend.out"));
        // QEMU's virtio_queue_get_last_avail_idx() of a fresh packed ring: avail 0 | wrap 1 << 15, used the same << 16
        assertEquals(8, backendOut.lines().filter(l -> l.endsWith(" SET_VRING_BASE 0x80008000")).count(), backendOut);
    }

    @Test
    void packedRingsStartFreshOnEveryRun() throws Exception {
        final FrontendProcess.Result[] r = agreeOnEveryByte(List.of("--packed"), "--packed --queue-size 4 --tx-segs 3 --runs 3",
            3, 4194304, 1048576, 0);
        assertEquals(3 * 4194304, r[1].txBytes());
        assertEquals(3 * 1048576, r[2].txBytes());
    }

    @Test
    void packedNeedsABackendThatOffersIt() throws Exception {
        final Path sock = dir.resolve("b.sock");
        final Process backend = new ProcessBuilder(FrontendProcess.testBackendExecutable().toString(),
            "--socket", sock.toString(), "--ports", "3")
            .redirectErrorStream(true).redirectOutput(dir.resolve("backend.out").toFile()).start();
        try (FrontendProcess f = FrontendProcess.start(dir, "frontend", List.of("--socket", sock.toString(), "--packed",
            "--port", "1:tx=4096:open"))) {
            assertEquals(2, f.awaitExit(WAIT), f.transcript());
            assertTrue(f.stderrText().contains("does not offer VIRTIO_F_RING_PACKED (bit 34"), f.transcript());
            assertTrue(f.linesMatching("^FEATURES ").isEmpty(), f.transcript());
        } finally {
            backend.destroyForcibly();
            backend.waitFor(5, TimeUnit.SECONDS);
        }
    }

    /**
     * Runs the frontend against the test backend (ports 0..2, port 0 a console) and checks that both count the
     * same bytes with the same sums on every port; returns the frontend's last RESULT of each port. rx is what
     * the backend sends each port in all, so a run of several runs has none.
     */
    private FrontendProcess.Result[] agreeOnEveryByte(final List<String> backendExtra, final String extra, final int runs,
                                                      final long tx1, final long tx2, final long rx) throws Exception {
        final Path sock = dir.resolve("b.sock");
        final List<String> bcmd = new ArrayList<>(List.of(FrontendProcess.testBackendExecutable().toString(),
            "--socket", sock.toString(), "--ports", "3", "--rx", Long.toString(rx)));
        bcmd.addAll(backendExtra);
        final Process backend = new ProcessBuilder(bcmd)
            .redirectErrorStream(true).redirectOutput(dir.resolve("backend.out").toFile()).start();
        try {
            final String rxPart = rx > 0 ? ":rx=" + rx : "";
            final List<String> args = new ArrayList<>(List.of("--socket", sock.toString(),
                "--port", "0:tx=262144" + rxPart, "--port", "1:tx=" + tx1 + rxPart + ":open",
                "--port", "2:tx=" + tx2 + rxPart + ":open"));
            if (!extra.isEmpty()) {
                args.addAll(List.of(extra.split(" ")));
            }
            try (FrontendProcess f = FrontendProcess.start(dir, "frontend", args)) {
                f.assertExitsCleanly(WAIT);
                backend.getOutputStream().close();
                final String backendOut = awaitBackendReport(backend, dir.resolve("backend.out"), 3 * runs);
                final FrontendProcess.Result[] out = new FrontendProcess.Result[3];
                for (int port = 0; port <= 2; port++) {
                    final FrontendProcess.Result r = f.result(port);
                    final List<String> reports = backendOut.lines()
                        .filter(l -> l.startsWith("BACKEND port=" + r.port() + " ")).toList();
                    if (reports.isEmpty()) {
                        throw new AssertionError("no backend report\n" + backendOut);
                    }
                    final String line = reports.get(reports.size() - 1); // cumulative over the connections
                    assertEquals(true, line.contains(" tx_bytes=" + r.txBytes() + " tx_sum=" + r.txSum() + " "),
                        "tx of port " + r.port() + ": " + line);
                    assertEquals(true, line.endsWith(" rx_bytes=" + r.rxBytes() + " rx_sum=" + r.rxSum()),
                        "rx of port " + r.port() + ": " + line);
                    assertEquals("org.test." + port, r.name());
                    out[port] = r;
                }
                return out;
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

    private static String awaitBackendReport(final Process backend, final Path out, final int lines) {
        try {
            return Waits.upTo(WAIT, "the test backend's report").until(() -> read(out),
                s -> s.lines().filter(l -> l.startsWith("BACKEND ")).count() >= lines);
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError("the test backend printed no report\n" + uncheckedRead(out), e);
        }
    }

    private static String uncheckedRead(final Path p) {
        try {
            return read(p);
        } catch (final IOException e) {
            return "(unreadable: " + e + ")";
        }
    }

    private static String read(final Path p) throws IOException {
        return Files.exists(p) ? Files.readString(p, StandardCharsets.UTF_8) : "";
    }
}
