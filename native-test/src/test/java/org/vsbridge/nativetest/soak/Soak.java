package org.vsbridge.nativetest.soak;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Soak program (not a unit test): the real bridge jar with N unix-socket ports, driven by the native frontend
 * (vsb-frontend --stdin) for a given time. Each frontend session ("epoch") carries random traffic both ways on
 * every open port, checked byte for byte (pattern) and by FNV-1a sums against what the frontend reports; between
 * rounds, at points where nothing is in flight, it restarts random chardev peers and closes/reopens random guest
 * ports; each session ends with a clean stop, an abrupt disconnect, or an abrupt disconnect in the middle of a
 * guest-to-host transfer (then only "every byte the bridge used reached the peer, in order" is checked). It
 * prints one line per session and, at the end, bytes moved, errors, and the bridge's fd count and RSS at start
 * and end. Exit 0 when there were no errors.
 *
 * <pre>
 * mvn -B -q package -DskipTests
 * nice -n 10 java -cp native-test/target/test-classes org.vsbridge.nativetest.soak.Soak \
 *   --jar bridge-core/target/vhost-serial-bridge.jar --frontend native-test/target/native/vsb-frontend \
 *   --ports 4 --minutes 30 [--seed N] [--dir DIR] [--max-round-bytes B] [--java-opt -Xmx64m]
 * </pre>
 */
public final class Soak {

    private static final long WAIT_MS = 120_000;

    private final Path jar;
    private final Path frontendExe;
    private final int ports;
    private final long endNanos;
    private final Random random;
    private final Path dir;
    private final int maxRoundBytes;
    private final List<String> javaOptions;

    private Process bridge;
    private long bytesToHost;
    private long bytesToGuest;
    private long epochs;
    private long rounds;
    private long peerRestarts;
    private long guestCloses;
    private long cleanStops;
    private long idleDisconnects;
    private long midTransferDisconnects;
    private final List<String> errors = new ArrayList<>();
    private long errorCount;

    private Soak(final Path jar, final Path frontendExe, final int ports, final long seconds, final long seed,
                 final Path dir, final int maxRoundBytes, final List<String> javaOptions) {
        this.jar = jar;
        this.frontendExe = frontendExe;
        this.ports = ports;
        this.endNanos = System.nanoTime() + seconds * 1_000_000_000L;
        this.random = new Random(seed);
        this.dir = dir;
        this.maxRoundBytes = maxRoundBytes;
        this.javaOptions = javaOptions;
    }

    public static void main(final String[] args) throws Exception {
        Path jar = Path.of("bridge-core/target/vhost-serial-bridge.jar");
        Path fe = Path.of("native-test/target/native/vsb-frontend");
        int ports = 4;
        long seconds = 60;
        long seed = System.nanoTime();
        Path dir = null;
        int maxRound = 2 << 20;
        final List<String> javaOptions = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            final String a = args[i];
            final String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--jar" -> { jar = Path.of(v); i++; }
                case "--frontend" -> { fe = Path.of(v); i++; }
                case "--ports" -> { ports = Integer.parseInt(v); i++; }
                case "--minutes" -> { seconds = Long.parseLong(v) * 60; i++; }
                case "--seconds" -> { seconds = Long.parseLong(v); i++; }
                case "--seed" -> { seed = Long.parseLong(v); i++; }
                case "--dir" -> { dir = Path.of(v); i++; }
                case "--max-round-bytes" -> { maxRound = Integer.parseInt(v); i++; }
                case "--java-opt" -> { javaOptions.add(v); i++; }
                default -> {
                    System.err.println("usage: Soak [--jar JAR] [--frontend EXE] [--ports N] [--minutes M | --seconds S]"
                        + " [--seed N] [--dir DIR] [--max-round-bytes B] [--java-opt OPTION]...");
                    System.exit(2);
                }
            }
        }
        if (ports < 1 || ports > 30) {
            throw new IllegalArgumentException("--ports must be 1..30");
        }
        if (dir == null) {
            dir = Files.createTempDirectory("vsb-soak");
        }
        Files.createDirectories(dir);
        System.out.println("soak: seed " + seed + ", " + ports + " ports, " + seconds + " s, dir " + dir);
        final Soak soak = new Soak(jar, fe, ports, seconds, seed, dir, maxRound, javaOptions);
        System.exit(soak.run());
    }

    private int run() throws Exception {
        startBridge();
        final long pid = bridge.pid();
        final long fdStart = fdCount(pid);
        final long rssStart = rssKiB(pid);
        long fdMax = fdStart;
        long rssMax = rssStart;
        System.out.printf("soak: bridge pid %d at start: %d fds, RSS %d KiB%n", pid, fdStart, rssStart);
        final ExecutorService senders = Executors.newFixedThreadPool(ports);
        try {
            while (System.nanoTime() < endNanos && bridge.isAlive()) {
                epoch(senders);
                fdMax = Math.max(fdMax, fdCount(pid));
                rssMax = Math.max(rssMax, rssKiB(pid));
            }
        } finally {
            senders.shutdownNow();
        }
        final boolean alive = bridge.isAlive();
        if (!alive) {
            error("the bridge exited with " + bridge.exitValue());
        }
        // Let the bridge settle after the last session (it frees per-connection state asynchronously).
        Thread.sleep(2000);
        final long fdEnd = alive ? fdCount(pid) : -1;
        final long rssEnd = alive ? rssKiB(pid) : -1;
        final long warnings = countLog("WARNING") + countLog("<4>");
        final long severe = countLog("SEVERE") + countLog("<3>");
        bridge.destroy();
        final boolean exited = bridge.waitFor(20, TimeUnit.SECONDS);
        System.out.println("soak: ---------------- summary ----------------");
        System.out.printf("soak: sessions %d (clean stop %d, disconnect at idle %d, disconnect mid-transfer %d), "
                + "rounds %d, peer restarts %d, guest port closes %d%n", epochs, cleanStops, idleDisconnects,
            midTransferDisconnects, rounds, peerRestarts, guestCloses);
        System.out.printf("soak: bytes guest->host %d (%.1f MiB), host->guest %d (%.1f MiB)%n", bytesToHost,
            bytesToHost / 1048576.0, bytesToGuest, bytesToGuest / 1048576.0);
        System.out.printf("soak: bridge fds start %d end %d (max %d); RSS start %d KiB end %d KiB (max %d KiB)%n",
            fdStart, fdEnd, fdMax, rssStart, rssEnd, rssMax);
        System.out.printf("soak: bridge log: %d warning lines, %d error lines; SIGTERM exit %s%n", warnings, severe,
            exited ? String.valueOf(bridge.exitValue()) : "timed out");
        System.out.println("soak: errors " + errorCount);
        for (final String e : errors) {
            System.out.println("soak:   " + e);
        }
        return errorCount == 0 && alive && exited && bridge.exitValue() == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------------ one frontend session

    private void epoch(final ExecutorService senders) throws Exception {
        epochs++;
        final long e = epochs;
        final long[] seeds = new long[ports + 1];
        final List<String> args = new ArrayList<>(List.of("--socket", dir.resolve("vhost.sock").toString(), "--stdin",
            "--stall-timeout", "120"));
        for (int p = 1; p <= ports; p++) {
            seeds[p] = random.nextLong();
            args.add("--port");
            args.add(p + ":open:seed=0x" + Long.toHexString(seeds[p]));
        }
        final SoakPeer[] peers = new SoakPeer[ports + 1];
        final boolean[] open = new boolean[ports + 1];
        final long t0 = System.nanoTime();
        String ending = "?";
        try (SoakFrontend fe = new SoakFrontend(frontendExe, args, dir.resolve("frontend.stderr"))) {
            fe.await("^READY", 0, WAIT_MS);
            for (int p = 1; p <= ports; p++) {
                final int m = fe.mark();
                peers[p] = new SoakPeer(p, dir.resolve("p" + p + ".sock"), seeds[p]);
                peers[p].connect(WAIT_MS);
                fe.await("^EVENT port_open port=" + p + " value=1", m, WAIT_MS);
                open[p] = true;
            }
            // Rounds until this session's share of time is used: 3-15 s per session.
            final long sessionEnd = System.nanoTime() + (3 + random.nextInt(13)) * 1_000_000_000L;
            do {
                round(fe, peers, open, senders);
                disturb(fe, peers, open);
            } while (System.nanoTime() < sessionEnd && System.nanoTime() < endNanos);
            check(fe, peers, "session " + e);
            final int how = random.nextInt(4);
            if (how == 0) {
                ending = "clean stop";
                fe.command("quit");
                expectExit(fe, 0, "quit");
                cleanStops++;
            } else if (how == 1) {
                ending = "disconnect at idle";
                fe.command("disconnect");
                expectExit(fe, 0, "disconnect");
                idleDisconnects++;
            } else {
                ending = "disconnect mid-transfer";
                midTransferDisconnect(fe, peers, open);
                midTransferDisconnects++;
            }
        } catch (final IOException | RuntimeException ex) {
            error("session " + e + ": " + ex);
        } finally {
            for (final SoakPeer p : peers) {
                if (p != null) {
                    p.close();
                    if (p.corrupt() > 0) {
                        error("session " + e + ": " + p.corrupt() + " corrupt guest-to-host chunks; first: "
                            + p.firstError());
                    }
                    bytesToHost += p.received();
                    bytesToGuest += p.sent();
                }
            }
        }
        System.out.printf("soak: session %d ended by %s after %.1f s; totals %.1f MiB to host, %.1f MiB to guest, "
                + "errors %d%n", e, ending, (System.nanoTime() - t0) / 1e9, bytesToHost / 1048576.0,
            bytesToGuest / 1048576.0, errorCount);
    }

    /** Random traffic both ways on every open port; returns when the frontend is idle and every byte arrived. */
    private void round(final SoakFrontend fe, final SoakPeer[] peers, final boolean[] open,
                       final ExecutorService senders) throws Exception {
        rounds++;
        final List<Future<?>> sends = new ArrayList<>();
        final long[] expectToHost = new long[ports + 1];
        for (int p = 1; p <= ports; p++) {
            expectToHost[p] = peers[p].received();
            if (!open[p]) {
                continue;
            }
            final int tx = random.nextInt(maxRoundBytes + 1);
            final int rx = random.nextInt(maxRoundBytes + 1);
            expectToHost[p] += tx;
            fe.command("tx " + p + " " + tx);
            fe.command("rx " + p + " " + rx);
            final SoakPeer peer = peers[p];
            sends.add(senders.submit(() -> {
                peer.send(rx);
                return null;
            }));
        }
        final int m = fe.mark();
        fe.command("wait");
        fe.await("^IDLE", m, WAIT_MS);
        for (final Future<?> f : sends) {
            f.get(WAIT_MS, TimeUnit.MILLISECONDS);
        }
        for (int p = 1; p <= ports; p++) {
            awaitReceived(peers[p], expectToHost[p]);
        }
    }

    private static void awaitReceived(final SoakPeer peer, final long bytes) throws IOException, InterruptedException {
        final long deadline = System.nanoTime() + WAIT_MS * 1_000_000L;
        while (peer.received() < bytes) {
            if (System.nanoTime() > deadline) {
                throw new IOException("port " + peer.port + ": peer got " + peer.received() + " of " + bytes
                    + " guest-to-host bytes");
            }
            Thread.sleep(5);
        }
    }

    /** At an idle point: maybe restart a peer, maybe close or reopen a guest port. */
    private void disturb(final SoakFrontend fe, final SoakPeer[] peers, final boolean[] open) throws Exception {
        if (random.nextInt(3) == 0) {
            final int p = 1 + random.nextInt(ports);
            int m = fe.mark();
            peers[p].close();
            fe.await("^EVENT port_open port=" + p + " value=0", m, WAIT_MS);
            m = fe.mark();
            peers[p].connect(WAIT_MS);
            fe.await("^EVENT port_open port=" + p + " value=1", m, WAIT_MS);
            peerRestarts++;
        }
        if (random.nextInt(3) == 0) {
            final int p = 1 + random.nextInt(ports);
            final int m = fe.mark();
            if (open[p]) {
                fe.command("close " + p);
                fe.await("^EVENT guest_open port=" + p + " value=0", m, WAIT_MS);
                guestCloses++;
            } else {
                fe.command("open " + p);
                fe.await("^EVENT guest_open port=" + p + " value=1", m, WAIT_MS);
            }
            open[p] = !open[p];
        }
    }

    /** Compares the frontend's cumulative counts and sums with the peers'. */
    private void check(final SoakFrontend fe, final SoakPeer[] peers, final String what) throws Exception {
        final int m = fe.mark();
        fe.command("status");
        fe.await("^STATUS$", m, WAIT_MS);
        final Map<Integer, SoakFrontend.Result> results = fe.results(m);
        for (int p = 1; p <= ports; p++) {
            final SoakFrontend.Result r = results.get(p);
            if (r == null) {
                error(what + ": no RESULT for port " + p);
                continue;
            }
            if (r.txBytes() != peers[p].received() || !r.txSum().equals(peers[p].receivedSum())) {
                error(what + ": port " + p + " guest->host: frontend used " + r.txBytes() + " sum " + r.txSum()
                    + ", peer got " + peers[p].received() + " sum " + peers[p].receivedSum());
            }
            if (r.rxBytes() != peers[p].sent() || !r.rxSum().equals(peers[p].sentSum())) {
                error(what + ": port " + p + " host->guest: peer sent " + peers[p].sent() + " sum "
                    + peers[p].sentSum() + ", guest got " + r.rxBytes() + " sum " + r.rxSum());
            }
        }
    }

    /** Big guest-to-host transfers, then an abrupt disconnect after a random delay: every used byte must arrive. */
    private void midTransferDisconnect(final SoakFrontend fe, final SoakPeer[] peers, final boolean[] open)
        throws Exception {
        for (int p = 1; p <= ports; p++) {
            if (open[p]) {
                fe.command("tx " + p + " " + (16 << 20));
            }
        }
        Thread.sleep(20 + random.nextInt(400));
        final int m = fe.mark();
        fe.command("disconnect");
        expectExit(fe, 0, "disconnect mid-transfer");
        final Map<Integer, SoakFrontend.Result> results = fe.results(m);
        for (int p = 1; p <= ports; p++) {
            final SoakFrontend.Result r = results.get(p);
            if (r == null) {
                error("mid-transfer disconnect: no RESULT for port " + p);
                continue;
            }
            awaitReceived(peers[p], r.txBytes());
        }
        // Wait until the bridge has flushed what it took beyond the used ring, so no stale byte reaches the next
        // session's peer: quiet for a second.
        long before;
        long after = totalReceived(peers);
        do {
            before = after;
            Thread.sleep(1000);
            after = totalReceived(peers);
        } while (after != before);
    }

    private static long totalReceived(final SoakPeer[] peers) {
        long n = 0;
        for (final SoakPeer p : peers) {
            n += p == null ? 0 : p.received();
        }
        return n;
    }

    private void expectExit(final SoakFrontend fe, final int code, final String what) throws InterruptedException {
        final int got = fe.awaitExit(WAIT_MS);
        if (got != code) {
            error(what + ": frontend exit " + got + " (see " + dir.resolve("frontend.stderr") + ")");
        }
    }

    private void error(final String e) {
        errorCount++;
        if (errors.size() < 50) {
            errors.add(e);
        }
        System.out.println("soak: ERROR " + e);
    }

    // ------------------------------------------------------------------ the bridge

    private void startBridge() throws IOException, InterruptedException {
        final Path copy = dir.resolve("vhost-serial-bridge.jar");
        Files.copy(jar, copy, StandardCopyOption.REPLACE_EXISTING); // the shared jar may be rebuilt meanwhile
        final List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
            .toString()));
        cmd.addAll(javaOptions); // e.g. -Xmx64m, to tell heap sizing from growth
        cmd.addAll(List.of("-jar", copy.toString(), "--socket-path", dir.resolve("vhost.sock").toString(),
            "--max-ports", String.valueOf(ports + 1), "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off"));
        for (int p = 1; p <= ports; p++) {
            cmd.addAll(List.of("--chardev", "socket,id=c" + p + ",path=" + dir.resolve("p" + p + ".sock")
                + ",server=on,wait=off", "--device", "virtserialport,chardev=c" + p + ",name=org.soak." + p
                + ",id=port" + p + ",nr=" + p));
        }
        System.out.println("soak: " + String.join(" ", cmd));
        bridge = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("bridge.log").toFile())
            .start();
        final long deadline = System.nanoTime() + 60_000_000_000L;
        while (!Files.exists(dir.resolve("vhost.sock")) || !Files.exists(dir.resolve("p" + ports + ".sock"))) {
            if (!bridge.isAlive() || System.nanoTime() > deadline) {
                throw new IOException("the bridge did not start; see " + dir.resolve("bridge.log"));
            }
            Thread.sleep(50);
        }
        Thread.sleep(1000); // let start-up allocation settle before the first measurement
    }

    private static long fdCount(final long pid) throws IOException {
        try (var s = Files.list(Path.of("/proc", String.valueOf(pid), "fd"))) {
            return s.count();
        }
    }

    private static long rssKiB(final long pid) throws IOException {
        for (final String l : Files.readAllLines(Path.of("/proc", String.valueOf(pid), "status"))) {
            if (l.startsWith("VmRSS:")) {
                return Long.parseLong(l.replaceAll("[^0-9]", ""));
            }
        }
        return -1;
    }

    private long countLog(final String needle) throws IOException {
        try (var s = Files.lines(dir.resolve("bridge.log"), StandardCharsets.UTF_8)) {
            return s.filter(l -> l.contains(needle)).count();
        }
    }
}
