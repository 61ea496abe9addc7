package org.vsbridge.nativetest;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import javax.xml.parsers.DocumentBuilderFactory;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * The end of {@code mvn verify}: one short account of the whole run on the console, read from the files the build
 * wrote during this Maven invocation (older files are left out). Per module and surefire execution the counts; every
 * skip with its reason (the same reason once, with a count); every failure; and the line coverage of the data-path
 * classes from JaCoCo's aggregated report. Tests print into target/surefire-reports, not here.
 *
 * <p>Arguments: the reactor root, then the aggregated JaCoCo CSV (may be missing).
 */
public final class TestReport {

    /** The classes bytes pass through (docs/testing.md: each at 85 % of lines or more, or a note why not). */
    static final List<String> DATA_PATH = List.of(
        "org.vsbridge.vhost.queue.AbstractVirtqueue", "org.vsbridge.vhost.queue.SplitVirtqueue",
        "org.vsbridge.vhost.queue.PackedVirtqueue", "org.vsbridge.vhost.queue.DescriptorChain",
        "org.vsbridge.vhost.queue.InflightRegion", "org.vsbridge.vhost.memory.GuestMemory",
        "org.vsbridge.vhost.memory.MemoryRegion", "org.vsbridge.vhost.device.DeviceWorker",
        "org.vsbridge.console.ConsoleDevice", "org.vsbridge.console.TransmitPath", "org.vsbridge.console.ReceivePath",
        "org.vsbridge.console.ControlChannel",
        "org.vsbridge.console.Port", "org.vsbridge.console.PortChannel",
        "org.vsbridge.console.ControlOutbox", "org.vsbridge.core.port.PortLink", "org.vsbridge.core.port.StreamRing",
        "org.vsbridge.core.port.OutputOwner", "org.vsbridge.core.port.DirectWriter", "org.vsbridge.core.port.RingDrainer",
        "org.vsbridge.core.port.HostInput",
        "org.vsbridge.chardev.SocketChardev", "org.vsbridge.chardev.SocketServer",
        "org.vsbridge.chardev.SocketClient", "org.vsbridge.chardev.SocketPipeline", "org.vsbridge.chardev.SocketInputLoan",
        "org.vsbridge.chardev.DirectInput", "org.vsbridge.chardev.DirectOutput",
        "org.vsbridge.chardev.InputPump");

    private TestReport() {
    }

    public static void main(final String[] args) throws Exception {
        final Path root = Path.of(args[0]);
        final long since = ManagementFactory.getRuntimeMXBean().getStartTime();
        final StringBuilder out = new StringBuilder();
        out.append("\n==== Test report (this run) ====\n");
        final List<String> skips = new ArrayList<>();
        final List<String> failures = new ArrayList<>();
        out.append(String.format("%-14s %-10s %6s %6s %6s %7s%n", "module", "execution", "tests", "failed", "errors",
            "skipped"));
        try (Stream<Path> modules = Files.list(root)) {
            for (final Path module : modules.filter(Files::isDirectory).sorted().toList()) {
                final Map<String, int[]> byExecution = new TreeMap<>();
                for (final Path xml : reports(module.resolve("target"), since)) {
                    final String execution = execution(xml);
                    final int[] n = byExecution.computeIfAbsent(execution, k -> new int[4]);
                    read(xml, module.getFileName() + " " + execution, n, skips, failures);
                }
                byExecution.forEach((execution, n) -> out.append(String.format("%-14s %-10s %6d %6d %6d %7d%n",
                    module.getFileName(), execution, n[0], n[1], n[2], n[3])));
            }
        }
        out.append(summarise("Skipped", skips));
        out.append(summarise("Failed", failures));
        if (args.length > 1 && Files.isRegularFile(Path.of(args[1]))
            && Files.getLastModifiedTime(Path.of(args[1])).toMillis() >= since) {
            out.append(coverage(Path.of(args[1])));
        }
        System.out.print(out);
        System.out.flush();
    }

    private static List<Path> reports(final Path target, final long since) throws IOException {
        if (!Files.isDirectory(target)) {
            return List.of();
        }
        try (Stream<Path> dirs = Files.list(target)) {
            final List<Path> out = new ArrayList<>();
            for (final Path dir : dirs.filter(d -> d.getFileName().toString().startsWith("surefire-reports")).toList()) {
                try (Stream<Path> files = Files.list(dir)) {
                    for (final Path f : files.filter(f -> f.getFileName().toString().startsWith("TEST-")
                        && f.getFileName().toString().endsWith(".xml")).sorted().toList()) {
                        if (Files.getLastModifiedTime(f).toMillis() >= since) {
                            out.add(f);
                        }
                    }
                }
            }
            return out;
        }
    }

    /**
     * "test" for the plain run; another execution by its reports folder (surefire-reports-ring-path) or by its
     * report name suffix (TEST-Class-fuzz.xml).
     */
    private static String execution(final Path xml) {
        final String dir = xml.getParent().getFileName().toString();
        if (dir.startsWith("surefire-reports-")) {
            return dir.substring("surefire-reports-".length());
        }
        final String name = xml.getFileName().toString();
        final String stem = name.substring("TEST-".length(), name.length() - ".xml".length());
        final int dash = stem.lastIndexOf('-');
        return dash < 0 ? "test" : stem.substring(dash + 1);
    }

    private static void read(final Path xml, final String where, final int[] n, final List<String> skips,
                             final List<String> failures) throws Exception {
        final DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        final Document doc = f.newDocumentBuilder().parse(xml.toFile());
        final NodeList cases = doc.getElementsByTagName("testcase");
        for (int i = 0; i < cases.getLength(); i++) {
            final Element c = (Element) cases.item(i);
            n[0]++;
            final String name = simple(c.getAttribute("classname")) + "." + c.getAttribute("name");
            final Element skipped = first(c, "skipped");
            final Element failure = first(c, "failure");
            final Element error = first(c, "error");
            if (skipped != null) {
                n[3]++;
                skips.add(where + ": " + oneLine(skipped.getAttribute("message")) + "\t" + name);
            } else if (failure != null) {
                n[1]++;
                failures.add(where + ": " + name + ": " + oneLine(failure.getAttribute("message")));
            } else if (error != null) {
                n[2]++;
                failures.add(where + ": " + name + ": " + oneLine(error.getAttribute("type") + " "
                    + error.getAttribute("message")));
            }
        }
    }

    private static Element first(final Element parent, final String tag) {
        final NodeList l = parent.getElementsByTagName(tag);
        return l.getLength() == 0 ? null : (Element) l.item(0);
    }

    private static String simple(final String className) {
        return className.substring(className.lastIndexOf('.') + 1);
    }

    private static String oneLine(final String s) {
        final String t = s == null || s.isBlank() ? "(no reason given)" : s.strip().replaceAll("\\s+", " ");
        return t.length() > 240 ? t.substring(0, 240) + " ..." : t;
    }

    /** Skips: one line per reason with how many tests and the first one's name; failures: each. */
    private static String summarise(final String title, final List<String> lines) {
        if (lines.isEmpty()) {
            return title + ": none\n";
        }
        final StringBuilder b = new StringBuilder(title + ":\n");
        if (title.equals("Skipped")) {
            final Map<String, List<String>> byReason = new TreeMap<>();
            for (final String l : lines) {
                final int tab = l.indexOf('\t');
                byReason.computeIfAbsent(l.substring(0, tab), k -> new ArrayList<>()).add(l.substring(tab + 1));
            }
            byReason.forEach((reason, tests) -> b.append("  ").append(reason).append(" (").append(tests.size())
                .append(tests.size() == 1 ? " test: " : " tests, e.g. ").append(tests.get(0)).append(")\n"));
        } else {
            lines.forEach(l -> b.append("  ").append(l).append('\n'));
        }
        return b.toString();
    }

    /** JaCoCo's CSV: GROUP,PACKAGE,CLASS,...,LINE_MISSED,LINE_COVERED,...; nested classes count with their outer. */
    private static String coverage(final Path csv) throws IOException {
        final Map<String, long[]> lines = new TreeMap<>();
        final List<String> rows = Files.readAllLines(csv);
        for (final String row : rows.subList(1, rows.size())) {
            final String[] f = row.split(",");
            final String cls = f[1] + "." + f[2];
            final int dot = cls.indexOf('.', f[1].length() + 1);
            final String outer = dot < 0 ? cls : cls.substring(0, dot);
            final long[] n = lines.computeIfAbsent(outer, k -> new long[2]);
            n[0] += Long.parseLong(f[7]);
            n[1] += Long.parseLong(f[8]);
        }
        final StringBuilder b = new StringBuilder("Line coverage of the data path (unit + native tests; all classes: "
            + csv.getParent().resolve("index.html") + "):\n");
        long missed = 0;
        long covered = 0;
        for (final String cls : DATA_PATH) {
            final long[] n = lines.get(cls);
            if (n == null) {
                b.append(String.format("  %-44s  not in the report%n", cls));
                continue;
            }
            missed += n[0];
            covered += n[1];
            b.append(String.format("  %-44s %5d/%-5d %5.1f %%%n", cls, n[1], n[0] + n[1],
                100.0 * n[1] / Math.max(1, n[0] + n[1])));
        }
        long allMissed = 0;
        long allCovered = 0;
        for (final long[] n : lines.values()) {
            allMissed += n[0];
            allCovered += n[1];
        }
        b.append(String.format("  %-44s %5d/%-5d %5.1f %%%n", "data path, together", covered, missed + covered,
            100.0 * covered / Math.max(1, missed + covered)));
        b.append(String.format("  %-44s %5d/%-5d %5.1f %%%n", "all classes", allCovered, allMissed + allCovered,
            100.0 * allCovered / Math.max(1, allMissed + allCovered)));
        return b.toString();
    }
}
