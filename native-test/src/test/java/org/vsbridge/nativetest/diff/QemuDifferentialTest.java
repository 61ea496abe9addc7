package org.vsbridge.nativetest.diff;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bridge against QEMU 10.2 on the same inputs (issue 13): {@code -chardev} strings, QMP commands and raw QMP
 * input from {@code qemu-differential/cases.txt}. Each group runs on one QEMU and one bridge started for it; each
 * case is a dynamic test that compares the two normalised outcomes. A case whose outcomes differ passes only when
 * the README's table "Differences from QEMU" lists it with both outcomes; a listed case that no longer differs,
 * or that no case runs, fails.
 */
class QemuDifferentialTest {

    private static final Pattern ID = Pattern.compile("(?:^|,)id=([^,]+)");

    @TempDir
    Path tmp;

    private final Map<String, String[]> differences = new LinkedHashMap<>();
    private final Set<String> ran = new LinkedHashSet<>();
    private final List<String> timings = new ArrayList<>();
    private final Map<String, Integer> reasons = new java.util.TreeMap<>();
    private final Set<String> bridgeCommands = new TreeSet<>();

    @TestFactory
    Stream<DynamicNode> sameAsQemu() throws IOException {
        final Path moduleDir = Path.of(System.getProperty("basedir", System.getProperty("user.dir"))).toAbsolutePath();
        final Path qemu = QemuBinary.require(moduleDir);
        final DiffCases cases = DiffCases.load("/qemu-differential/cases.txt");
        final DifferencesTable table = DifferencesTable.read(moduleDir.resolve("../README.md").normalize());
        final long t0 = System.nanoTime();
        System.out.println("[diff] " + cases.size() + " cases in " + cases.groups().size() + " groups against " + qemu);
        final Stream<DynamicNode> groups = cases.groups().stream().map(g -> group(qemu, g, table));
        final Stream<DynamicNode> end = Stream.of(DynamicTest.dynamicTest("README table: every row still covers a difference",
            () -> {
                final List<String> stale = new ArrayList<>();
                for (final DifferencesTable.Row r : table.rows.values()) {
                    if (!table.used.contains(r.key())) {
                        stale.add(r.key());
                    }
                }
                final long identical = ran.size() - differences.size();
                System.out.println("[diff] " + ran.size() + " cases, " + identical + " identical, "
                    + differences.size() + " listed differences, " + (System.nanoTime() - t0) / 1_000_000 + " ms; "
                    + String.join(", ", timings));
                System.out.println("[diff] differences by reason: " + reasons);
                final int byDesign = reasons.entrySet().stream().filter(e -> e.getKey().startsWith("by design"))
                    .mapToInt(Map.Entry::getValue).sum();
                System.out.println("[diff] " + byDesign + " of the " + differences.size()
                    + " listed differences are by design");
                differences.forEach((k, v) -> System.out.println("[diff-case] " + k + "\t" + v[0] + "\t" + v[1]));
                assertTrue(stale.isEmpty(), "README rows that cover no difference any more: " + stale);
                // Every command the bridge lists in query-commands is given to both at least once.
                final Set<String> untried = new TreeSet<>(bridgeCommands);
                cases.groups().forEach(g -> g.cases().forEach(c -> untried.removeIf(
                    n -> c.text().contains("\"execute\":\"" + n + "\"") || c.text().contains("'execute':'" + n + "'"))));
                assertTrue(!bridgeCommands.isEmpty() && untried.isEmpty(), "commands no case runs: " + untried);
            }));
        return Stream.concat(groups, end);
    }

    private DynamicNode group(final Path qemuBinary, final DiffCases.Group g, final DifferencesTable table) {
        final Path qdir = tmp.resolve("q-" + g.name());
        final Path bdir = tmp.resolve("b-" + g.name());
        final QemuSide qemu = new QemuSide(qemuBinary, qdir);
        final BridgeSide bridge = new BridgeSide(bdir);
        final List<String> batch = new ArrayList<>();
        final long[] start = new long[1];
        final List<DynamicNode> tests = new ArrayList<>();
        tests.add(DynamicTest.dynamicTest("start QEMU and the bridge", () -> {
            start[0] = System.nanoTime();
            Files.createDirectories(qdir);
            Files.createDirectories(bdir);
            final CompletableFuture<Void> q = CompletableFuture.runAsync(() -> unchecked(() -> qemu.start(g.machine())));
            final CompletableFuture<Void> b = CompletableFuture.runAsync(() -> unchecked(() -> bridge.start(g.machine())));
            q.join();
            b.join();
        }));
        for (final DiffCases.Case c : g.cases()) {
            tests.add(DynamicTest.dynamicTest(c.key(), () -> {
                final String q = run(qemu, c);
                final String b = run(bridge, c);
                if (c.kind() == DiffCases.Kind.CLI && q.equals("ok") && b.equals("ok")) {
                    batch.add(c.text());
                }
                compare(table, c.key(), q, b, c.kind() == DiffCases.Kind.QMP && c.text().contains("\"query-commands\""));
            }));
        }
        tests.add(DynamicTest.dynamicTest("stop; the -chardev strings both accepted, on the bridge's command line", () -> {
            final Map<String, String> qemuNames = new LinkedHashMap<>();
            for (final String spec : batch) {
                for (final String label : labels(spec)) {
                    final String f = qemu.filename(label);
                    qemuNames.put(label, f == null ? "(none)" : qemu.normalise(f));
                }
            }
            qemu.close();
            bridge.close();
            if (batch.isEmpty()) {
                timings.add(g.name() + " " + (System.nanoTime() - start[0]) / 1_000_000 + " ms");
                return;
            }
            final BridgeSide cli = new BridgeSide(bdir);
            try (cli) {
                cli.startWithChardevs(batch);
                final List<String> bad = new ArrayList<>();
                for (final Map.Entry<String, String> e : qemuNames.entrySet()) {
                    final String f = cli.filename(e.getKey());
                    final String key = g.name() + ": filename " + e.getKey();
                    try {
                        compare(table, key, "filename " + e.getValue(),
                            "filename " + (f == null ? "(none)" : cli.normalise(f)), false);
                    } catch (final AssertionError x) {
                        bad.add(x.getMessage());
                    }
                }
                assertTrue(bad.isEmpty(), String.join("\n", bad));
            } finally {
                timings.add(g.name() + " " + (System.nanoTime() - start[0]) / 1_000_000 + " ms");
            }
        }));
        return DynamicContainer.dynamicContainer(g.name(), tests.stream());
    }

    private static List<String> labels(final String spec) {
        final Matcher m = ID.matcher(spec);
        // QemuOpts takes the first id=.
        final String id = m.find() ? m.group(1) : null;
        if (id == null) {
            return List.of();
        }
        return spec.matches(".*(^|,)mux=(on|yes|true|y)(,|$).*") ? List.of(id + "-base", id) : List.of(id);
    }

    private String run(final Side side, final DiffCases.Case c) throws IOException {
        final String text = side.substitute(c.text());
        return switch (c.kind()) {
            case CLI -> side.cli(text);
            case QMP -> side.qmp(text.getBytes(StandardCharsets.UTF_8));
            case RAW -> side.raw(DiffCases.unescape(text));
            case EXISTS -> side.exists(text);
            case PEER -> side.peer(text);
            case FILENAME -> {
                final String f = side.filename(text);
                yield f == null ? "(none)" : side.normalise(f);
            }
        };
    }

    /** query-commands: the bridge's names, and of QEMU's those the bridge also lists. */
    private String[] commands(final String q, final String b) {
        try {
            final Set<String> mine = names(b);
            bridgeCommands.addAll(mine);
            final Set<String> theirs = names(q);
            theirs.retainAll(mine);
            return new String[] {"commands " + theirs, "commands " + mine};
        } catch (final IOException e) {
            return new String[] {q, b};
        }
    }

    private static Set<String> names(final String outcome) throws IOException {
        final Set<String> out = new TreeSet<>();
        for (final JsonNode n : Side.JSON.readTree(outcome.replaceFirst("^return ", ""))) {
            out.add(n.path("name").asText());
        }
        return out;
    }

    private void compare(final DifferencesTable table, final String key, final String qemu, final String bridge,
                         final boolean commandList) {
        String q = qemu;
        String b = bridge;
        if (commandList) {
            final String[] c = commands(qemu, bridge);
            q = c[0];
            b = c[1];
        }
        ran.add(key);
        if (q.equals(b)) {
            if (table.rows.containsKey(key)) {
                fail("README lists '" + key + "' as a difference, but both now give: " + q);
            }
            return;
        }
        differences.put(key, new String[] {q, b});
        final DifferencesTable.Row row = table.cover(key, q, b);
        if (row == null) {
            fail(key + ": differs from QEMU and no row of README \"Differences from QEMU\" covers it:\n  QEMU:   " + q
                + "\n  bridge: " + b + "\n  row: " + DifferencesTable.suggest(key, q, b));
        }
        reasons.merge(row.reason(), 1, Integer::sum);
    }

    private interface IoAction {
        void run() throws IOException;
    }

    private static void unchecked(final IoAction a) {
        try {
            a.run();
        } catch (final IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
