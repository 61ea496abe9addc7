package org.vsbridge.nativetest.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The figures of one benchmark run as vsb-frontend prints them (SUMMARY and LATPCT lines), written to and read
 * back from a CSV with the columns {@code kind,param,target,unit,median,min,max,runs}. A latency percentile is a
 * row of kind {@code latency} whose param is the percentile and whose median is the time in microseconds.
 */
final class BenchResults {

    static final String HEADER = "kind,param,target,unit,median,min,max,runs";

    record Row(String kind, String param, String target, String unit, double median, double min, double max,
               int runs) {

        String csv() {
            return String.format(Locale.ROOT, "%s,%s,%s,%s,%.3f,%.3f,%.3f,%d", kind, param, target, unit, median,
                min, max, runs);
        }
    }

    private static final Pattern SUMMARY = Pattern.compile(
        "SUMMARY kind=(\\S+) target=(\\S+) param=(\\S+) unit=(\\S+) median=(\\S+) min=(\\S+) max=(\\S+) runs=(\\d+)");
    private static final Pattern LATPCT = Pattern.compile("LATPCT target=(\\S+) p=(\\S+) us=(\\S+)");

    private final List<Row> rows = new ArrayList<>();

    /** Takes one line of vsb-frontend output; lines that carry no figure are ignored. */
    void accept(final String line) {
        Matcher m = SUMMARY.matcher(line);
        if (m.matches()) {
            rows.add(new Row(m.group(1), m.group(3), m.group(2), m.group(4), Double.parseDouble(m.group(5)),
                Double.parseDouble(m.group(6)), Double.parseDouble(m.group(7)), Integer.parseInt(m.group(8))));
            return;
        }
        m = LATPCT.matcher(line);
        if (m.matches()) {
            final double us = Double.parseDouble(m.group(3));
            rows.add(new Row("latency", m.group(2), m.group(1), "us", us, us, us, 1));
        }
    }

    List<Row> rows() {
        return rows;
    }

    Optional<Row> find(final String kind, final String param, final String target) {
        return rows.stream()
            .filter(r -> r.kind.equals(kind) && r.param.equals(param) && r.target.equals(target))
            .findFirst();
    }

    void writeCsv(final Path file) throws IOException {
        final List<String> lines = new ArrayList<>();
        lines.add(HEADER);
        rows.forEach(r -> lines.add(r.csv()));
        Files.write(file, lines, StandardCharsets.UTF_8);
    }

    static BenchResults readCsv(final Path file) throws IOException {
        final BenchResults r = new BenchResults();
        final List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        if (lines.isEmpty() || !lines.get(0).equals(HEADER)) {
            throw new IOException(file + ": not a benchmark CSV (first line must be " + HEADER + ")");
        }
        for (final String l : lines.subList(1, lines.size())) {
            final String[] f = l.split(",");
            if (f.length != 8) {
                throw new IOException(file + ": bad row '" + l + "'");
            }
            r.rows.add(new Row(f[0], f[1], f[2], f[3], Double.parseDouble(f[4]), Double.parseDouble(f[5]),
                Double.parseDouble(f[6]), Integer.parseInt(f[7])));
        }
        return r;
    }

    /** What each measurement is called in the table, and which direction of the ratio is "better". */
    private static final Map<String, String> TITLES = Map.of(
        "gh", "guest->host 32 KiB tx buffers (MB/s)",
        "hg", "host->guest PAGE_SIZE rx buffers (MB/s)",
        "echo-p50", "echo 64 B round trip p50 (us)",
        "echo-p99", "echo 64 B round trip p99 (us)",
        "echo-p999", "echo 64 B round trip p99.9 (us)",
        "size", "guest->host by tx buffer size (MB/s)",
        "multi", "aggregate guest->host, N ports (MB/s)");

    /** The table: one line per measurement with the backend's median, the baseline's, their ratio and spreads. */
    String table(final String backendName) {
        final StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "| %-42s | %8s | %20s | %20s | %7s | %10s |%n", "measurement", "param",
            backendName + " median (min-max)", "baseline median (min-max)", "ratio", "cpu s/GB"));
        b.append("|").append("-".repeat(44)).append("|").append("-".repeat(10)).append("|")
            .append("-".repeat(22)).append("|").append("-".repeat(22)).append("|").append("-".repeat(9))
            .append("|").append("-".repeat(12)).append("|\n");
        for (final Row r : rows) {
            if (!r.target.equals("bridge") || !TITLES.containsKey(r.kind)) {
                continue;
            }
            final Optional<Row> base = find(r.kind, r.param, "baseline");
            final Optional<Row> cpu = find(r.kind, r.param, "bridge-cpu");
            final String ratio = base.map(x -> String.format(Locale.ROOT, "%.2f", r.median / x.median)).orElse("-");
            b.append(String.format(Locale.ROOT, "| %-42s | %8s | %20s | %20s | %7s | %10s |%n", TITLES.get(r.kind),
                r.param, spread(r), base.map(BenchResults::spread).orElse("-"), ratio,
                cpu.map(c -> String.format(Locale.ROOT, "%.2f", c.median)).orElse("-")));
        }
        // A blank line ends the Markdown table: a line after it without one would become a row.
        b.append('\n');
        find("multi", "1", "bridge").ifPresent(one -> rows.stream()
            .filter(r -> r.kind.equals("multi") && r.target.equals("bridge") && !r.param.equals("1"))
            .forEach(r -> b.append(String.format(Locale.ROOT, "%d ports aggregate = %.0f %% of one port%n",
                Integer.parseInt(r.param), 100 * r.median / one.median))));
        return b.toString();
    }

    private static String spread(final Row r) {
        final String f = r.median >= 100 ? "%.0f (%.0f-%.0f)" : "%.1f (%.1f-%.1f)";
        return String.format(Locale.ROOT, f, r.median, r.min, r.max);
    }
}
