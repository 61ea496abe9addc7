package org.vsbridge.nativetest.realguest;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * Throughput and latency seen by a real guest: the bridge's named port and console against
 * QEMU's own {@code virtserialport} and {@code virtconsole}, same guest, same sizes, in
 * interleaved rounds (TCG figures drift about 2x from run to run). Prints a table; asserts
 * only that every transfer was intact, never a time. Run with {@code -Dvsb.bench=true}.
 */
@EnabledIfSystemProperty(named = "vsb.bench", matches = "true")
class RealGuestBenchmark {
    static final long MIB = 1024 * 1024;
    static final long BULK = Long.getLong("vsb.bench.bulkMiB", 256) * MIB;
    static final long CONSOLE = Long.getLong("vsb.bench.consoleMiB", 16) * MIB;
    static final int ECHOES = Integer.getInteger("vsb.bench.echoes", 1000);
    static final int ROUNDS = Integer.getInteger("vsb.bench.rounds", 3);

    /** One VM's figures. */
    record Figures(double g2hMBs, double h2gMBs, double echoMicros, double conG2hMBs, double conH2gMBs,
                   long conG2hLost, long conH2gLost) { }

    @Test
    void bridgeAgainstQemuBuiltin() throws Exception {
        final Map<Backend, List<Figures>> all = new EnumMap<>(Backend.class);
        final StringBuilder out = new StringBuilder();
        try (RealGuestHarness bridge = RealGuestHarness.open(Backend.BRIDGE, "benchmark-bridge");
             RealGuestHarness qemu = RealGuestHarness.open(Backend.QEMU_BUILTIN, "benchmark-qemu")) {
            for (int round = 1; round <= ROUNDS; round++) {
                // Alternate who goes first, so drift of the machine hits both alike.
                final List<RealGuestHarness> order = round % 2 == 1 ? List.of(bridge, qemu) : List.of(qemu, bridge);
                for (final RealGuestHarness h : order) {
                    final Figures f = measure(h, round);
                    all.computeIfAbsent(h.backend(), b -> new ArrayList<>()).add(f);
                    System.out.printf("round %d %-12s %s%n", round, label(h.backend()), f);
                }
            }
        }
        out.append(String.format("real guest (Linux 6.1, TCG, 1 vCPU): %d MiB bulk on a named port, %d MiB on the console,"
            + " %d echoes of 64 B; %d interleaved rounds%n", BULK / MIB, CONSOLE / MIB, ECHOES, ROUNDS));
        out.append(String.format("%-5s %-12s %10s %10s %11s %12s %12s %14s%n", "round", "backend", "g2h MB/s", "h2g MB/s",
            "echo us/rt", "con g2h MB/s", "con h2g MB/s", "con lost g/h"));
        for (int r = 0; r < ROUNDS; r++) {
            for (final Backend b : all.keySet()) {
                final Figures f = all.get(b).get(r);
                out.append(String.format("%-5d %-12s %10.1f %10.1f %11.1f %12.1f %12.1f %14s%n", r + 1, label(b),
                    f.g2hMBs(), f.h2gMBs(), f.echoMicros(), f.conG2hMBs(), f.conH2gMBs(),
                    f.conG2hLost() + "/" + f.conH2gLost()));
            }
        }
        final List<Figures> br = all.get(Backend.BRIDGE);
        final List<Figures> qm = all.get(Backend.QEMU_BUILTIN);
        out.append(String.format("%-18s %10s %10s %11s %12s %12s%n", "median", "g2h MB/s", "h2g MB/s", "echo us/rt",
            "con g2h MB/s", "con h2g MB/s"));
        row(out, "bridge", br);
        row(out, "qemu-builtin", qm);
        out.append(String.format("%-18s %10.2f %10.2f %11.2f %12.2f %12.2f%n", "ratio bridge/qemu",
            median(br, Figures::g2hMBs) / median(qm, Figures::g2hMBs),
            median(br, Figures::h2gMBs) / median(qm, Figures::h2gMBs),
            median(br, Figures::echoMicros) / median(qm, Figures::echoMicros),
            median(br, Figures::conG2hMBs) / median(qm, Figures::conG2hMBs),
            median(br, Figures::conH2gMBs) / median(qm, Figures::conH2gMBs)));
        System.out.println(out);
        final Path report = RealGuestEnvironment.require(false).moduleDir.resolve("target/realguest/benchmark.txt");
        Files.writeString(report, out.toString());
    }

    private static String label(final Backend b) {
        return b == Backend.BRIDGE ? "bridge" : "qemu-builtin";
    }

    private static void row(final StringBuilder out, final String name, final List<Figures> f) {
        out.append(String.format("%-18s %10.1f %10.1f %11.1f %12.1f %12.1f%n", name, median(f, Figures::g2hMBs),
            median(f, Figures::h2gMBs), median(f, Figures::echoMicros), median(f, Figures::conG2hMBs),
            median(f, Figures::conH2gMBs)));
    }

    private static double median(final List<Figures> list, final ToDoubleFunction<Figures> field) {
        final double[] v = list.stream().mapToDouble(field).sorted().toArray();
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    private static Figures measure(final RealGuestHarness h, final int round) throws IOException, InterruptedException {
        final String p1 = PortLayout.PORT1_NAME;
        final String con = PortLayout.CONSOLE_TTY;
        final GuestPlan plan = new GuestPlan();
        plan.add(new GuestPlan.ListPorts(3, 2));
        final int g2h = plan.add(new GuestPlan.G2h(p1, BULK, 41, false)).lastStep();
        final int h2g = plan.add(new GuestPlan.H2g(p1, BULK, 42, false)).lastStep();
        final int echo = plan.add(new GuestPlan.Echo(p1, ECHOES, 64)).lastStep();
        final int cg = plan.add(new GuestPlan.G2h(con, CONSOLE, 43, false)).lastStep();
        final int ch = plan.add(new GuestPlan.H2g(con, CONSOLE, 44, false)).lastStep();
        // The console step sleeps a moment first, so late console bytes still count.
        plan.add(new GuestPlan.Sleep(500));
        final GuestRun run = h.run("round" + round, plan, 300_000);
        final String where = run.name() + " on " + h.backend() + ":\n" + run.diagnostics()
            + (h.bridge() != null ? "---- bridge log (last 60 lines)\n" + tail(h.bridge().log(), 60) : "");
        final SerialLine rg = need(run, g2h, where);
        final SerialLine rh = need(run, h2g, where);
        final SerialLine re = need(run, echo, where);
        final SerialLine rcg = need(run, cg, where);
        final SerialLine rch = need(run, ch, where);
        assertTrue(rg.ok() && run.sink(g2h).isComplete() && run.sink(g2h).firstMismatch() < 0, () -> "g2h intact: " + where);
        assertTrue(rh.ok(), () -> "h2g intact: " + where);
        assertTrue(re.ok(), () -> "echo intact: " + where);
        final GuestPattern.Sink conSink = run.sink(cg);
        assertTrue(conSink.firstMismatch() < 0 || conSink.received() < rcg.getLong("bytes"),
            () -> "console bytes differ from the pattern without loss: " + where);
        final HostPeer.Sender conSender = run.sender(ch);
        return new Figures(
            mbps(rg.getLong("bytes"), rg.getLong("ns")),
            mbps(rh.getLong("bytes"), rh.getLong("ns")),
            re.getLong("ns") / 1000.0 / re.getLong("count"),
            mbps(rcg.getLong("bytes"), rcg.getLong("ns")),
            mbps(rch.getLong("bytes"), rch.getLong("ns")),
            rcg.getLong("bytes") - conSink.received(),
            (conSender == null ? 0 : conSender.sent()) - Math.max(0, rch.getLong("bytes")));
    }

    private static String tail(final String text, final int lines) {
        final List<String> all = text.lines().toList();
        return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    private static SerialLine need(final GuestRun run, final int step, final String where) {
        final SerialLine r = run.result(step);
        assertTrue(r != null, () -> "no result for step " + step + " of " + where);
        return r;
    }

    private static double mbps(final long bytes, final long ns) {
        return ns <= 0 ? 0 : bytes * 1000.0 / ns;
    }
}
