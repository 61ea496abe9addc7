package org.vsbridge.nativetest.bench;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Draws the benchmark plots from the CSV: throughput against tx buffer size (bridge and bare AF_UNIX baseline)
 * and the echo latency distribution (time at each percentile). Run alone: {@code BenchPlots CSV OUTDIR}.
 */
public final class BenchPlots {

    private BenchPlots() {
    }

    public static void main(final String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: BenchPlots bench.csv OUTDIR");
            System.exit(2);
        }
        draw(Path.of(args[0]), Path.of(args[1]), "bridge");
    }

    /** Writes throughput-by-size.png and echo-latency.png into dir; returns the files written. */
    static List<Path> draw(final Path csv, final Path dir, final String backendName) throws IOException {
        final BenchResults r = BenchResults.readCsv(csv);
        final List<Path> written = new ArrayList<>();

        final XYChart size = new XYChartBuilder().width(800).height(500)
            .title("guest->host throughput by tx buffer size (median of runs)")
            .xAxisTitle("tx buffer size (bytes)").yAxisTitle("MB/s").build();
        size.getStyler().setXAxisLogarithmic(true);
        size.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        addSeries(size, r, "size", "bridge", backendName);
        addSeries(size, r, "size", "baseline", "bare AF_UNIX socketpair");
        if (!size.getSeriesMap().isEmpty()) {
            final Path f = dir.resolve("throughput-by-size.png");
            BitmapEncoder.saveBitmap(size, f.toString(), BitmapEncoder.BitmapFormat.PNG);
            written.add(f);
        }

        final XYChart lat = new XYChartBuilder().width(800).height(500)
            .title("echo round trip of 64 B: latency at each percentile (all runs pooled)")
            .xAxisTitle("nines of the percentile: 0.3 = p50, 1 = p90, 2 = p99, 3 = p99.9, 4 = p99.99, 4.5 = max")
            .yAxisTitle("microseconds").build();
        lat.getStyler().setYAxisLogarithmic(true);
        lat.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNW);
        addLatency(lat, r, "bridge", backendName);
        addLatency(lat, r, "baseline", "bare eventfd + socket hops");
        if (!lat.getSeriesMap().isEmpty()) {
            final Path f = dir.resolve("echo-latency.png");
            BitmapEncoder.saveBitmap(lat, f.toString(), BitmapEncoder.BitmapFormat.PNG);
            written.add(f);
        }
        return written;
    }

    private static void addSeries(final XYChart c, final BenchResults r, final String kind, final String target,
                                  final String name) {
        final List<BenchResults.Row> rows = r.rows().stream()
            .filter(x -> x.kind().equals(kind) && x.target().equals(target))
            .sorted(Comparator.comparingDouble(x -> Double.parseDouble(x.param())))
            .toList();
        if (rows.isEmpty()) {
            return;
        }
        final XYSeries s = c.addSeries(name, rows.stream().mapToDouble(x -> Double.parseDouble(x.param())).toArray(),
            rows.stream().mapToDouble(BenchResults.Row::median).toArray());
        s.setMarker(SeriesMarkers.CIRCLE);
    }

    private static void addLatency(final XYChart c, final BenchResults r, final String target, final String name) {
        final List<BenchResults.Row> rows = r.rows().stream()
            .filter(x -> x.kind().equals("latency") && x.target().equals(target))
            .sorted(Comparator.comparingDouble(x -> Double.parseDouble(x.param())))
            .toList();
        if (rows.isEmpty()) {
            return;
        }
        // Percentiles crowd near 100: plot against the "nines" so 99, 99.9 and 99.99 spread out.
        final double[] x = rows.stream().mapToDouble(v -> nines(Double.parseDouble(v.param()))).toArray();
        final XYSeries s = c.addSeries(name, x, rows.stream().mapToDouble(BenchResults.Row::median).toArray());
        s.setMarker(SeriesMarkers.CIRCLE);
    }

    /** -log10(1 - p/100): p50 -> 0.3, p90 -> 1, p99 -> 2, p99.9 -> 3; p100 is drawn at 4.5. */
    private static double nines(final double p) {
        return p >= 100 ? 4.5 : -Math.log10(1 - p / 100);
    }

}
