package org.vsbridge.nativetest.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * The benchmark in one command (native-test/bench.sh runs it): starts the bridge jar with a console and N
 * generic ports on unix-socket chardevs, runs vsb-frontend's benchmark mode against it (each figure beside its
 * raw baseline, measured in the same run), prints the table, writes bench.csv and draws the plots from it.
 * With --backend-socket it measures another vhost-user console backend instead (nothing is started then).
 * Nothing here judges the figures: this is a measurement, not a test.
 */
public final class BenchMain {

    private static final String USAGE = """
        usage: bench.sh [options] [-- vsb-frontend benchmark options]
          --out DIR              results directory (default native-test/target/bench)
          --publish DIR          also copy bench.csv, table.md and the PNGs there (e.g. docs/bench)
          --ports N              generic ports of the bridge, 1..510 (default 126: with the console 127
                                 ports, 256 queues, the most the spec's SET_VRING_KICK/CALL/ERR can name:
                                 the queue index is bits 0-7, bit 8 is NOFD); above 126 the frontend
                                 names the higher queues with the bridge's extension (--wide-index)
          --runs N               runs per measurement (default 5)
          --quick                fewer bytes and round trips (a smoke run)
          --jfr FILE             record the bridge with JFR (profile settings, 30 s) into FILE
          --bridge-jvm 'OPTS'    more JVM options for the bridge (e.g. -Dvsb.worker.spinIterations=0)
          --backend-socket PATH  measure another backend listening on PATH (not started here)
          --host EP              its host endpoint: unix:PATH (%u = port) or tcp:IP:PORT
          --backend-pid PID      its process, for CPU time per GB
          --bench-port N         its port to measure (default 1; 0 for a console-only backend)
          --name NAME            its name in the table (default: peer)
        """;

    private BenchMain() {
    }

    public static void main(final String[] args) throws Exception {
        Path out = Path.of("native-test/target/bench");
        Path publish = null;
        int ports = 126;
        String runs = "5";
        boolean quick = false;
        String jfr = null;
        final List<String> bridgeJvm = new ArrayList<>();
        String backendSocket = null;
        String host = null;
        String backendPid = null;
        String benchPort = "1";
        String name = null;
        final List<String> extra = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            final String a = args[i];
            if (a.equals("--")) {
                extra.addAll(Arrays.asList(args).subList(i + 1, args.length));
                break;
            }
            if (a.equals("--help") || a.equals("-h")) {
                System.out.print(USAGE);
                return;
            }
            if (a.equals("--quick")) {
                quick = true;
                continue;
            }
            if (i + 1 >= args.length) {
                usage(a + " needs a value");
            }
            final String v = args[++i];
            switch (a) {
                case "--out" -> out = Path.of(v);
                case "--publish" -> publish = Path.of(v);
                case "--ports" -> ports = Integer.parseInt(v);
                case "--runs" -> runs = v;
                case "--jfr" -> jfr = v;
                case "--bridge-jvm" -> bridgeJvm.addAll(Arrays.asList(v.trim().split("\\s+")));
                case "--backend-socket" -> backendSocket = v;
                case "--host" -> host = v;
                case "--backend-pid" -> backendPid = v;
                case "--bench-port" -> benchPort = v;
                case "--name" -> name = v;
                default -> usage("unknown option " + a);
            }
        }
        if (ports < 1 || ports > 510) {
            usage("--ports must be 1..510 (port 0 is the console; the device has at most 511 ports)");
        }
        if (backendSocket != null && host == null) {
            usage("--backend-socket needs --host");
        }
        Files.createDirectories(out);
        final Path dir = Files.createTempDirectory("vsb-bench");
        Process bridge = null;
        try {
            final List<String> fe = new ArrayList<>(List.of(frontend().toString(), "--bench", "all", "--bench-runs", runs,
                "--bench-port", benchPort));
            if (quick) {
                fe.addAll(List.of("--bench-bytes", "64M", "--bench-multi-bytes", "64M", "--bench-echo", "5000"));
            }
            if (backendSocket == null) {
                bridge = startBridge(dir, ports, jfr, bridgeJvm, out.resolve("bridge.log"));
                fe.addAll(List.of("--socket", dir.resolve("bridge.sock").toString(), "--host",
                    "unix:" + dir.resolve("p%u.sock"), "--backend-pid", Long.toString(bridge.pid())));
                name = "bridge";
            } else {
                fe.addAll(List.of("--socket", backendSocket, "--host", host));
                if (backendPid != null) {
                    fe.addAll(List.of("--backend-pid", backendPid));
                }
                name = name == null ? "peer" : name;
            }
            if (backendSocket == null && ports > 126) {
                fe.add("--wide-index"); // queues 256 and up exist only through the bridge's extension
            }
            fe.addAll(List.of("--bench-ports", ports == 510 ? "1,8,64,510" : "1,8,64," + ports + ",511"));
            fe.addAll(extra);
            final BenchResults results = runFrontend(fe, out.resolve("frontend.out"), out.resolve("frontend.err"));
            final Path csv = out.resolve("bench.csv");
            results.writeCsv(csv);
            final String table = results.table(name) + (bridge != null ? directShare(dir) : "");
            final String machine = machine();
            Files.writeString(out.resolve("table.md"), table + "\n" + machine, StandardCharsets.UTF_8);
            final List<Path> pngs = BenchPlots.draw(csv, out, name);
            System.out.println();
            System.out.print(table);
            System.out.println();
            System.out.print(machine);
            System.out.println("CSV: " + csv + "  plots: " + pngs);
            if (publish != null) {
                Files.createDirectories(publish);
                for (final Path p : concat(List.of(csv, out.resolve("table.md")), pngs)) {
                    Files.copy(p, publish.resolve(p.getFileName()), StandardCopyOption.REPLACE_EXISTING);
                }
                System.out.println("published to " + publish);
            }
        } finally {
            if (bridge != null) {
                bridge.destroy();
                if (!bridge.waitFor(20, TimeUnit.SECONDS)) {
                    bridge.destroyForcibly();
                }
            }
            try (var s = Files.walk(dir)) {
                s.sorted((x, y) -> y.compareTo(x)).forEach(p -> p.toFile().delete());
            }
        }
    }

    private static void usage(final String why) {
        System.err.println("bench: " + why + "\n" + USAGE);
        System.exit(2);
    }

    private static <T> List<T> concat(final List<T> a, final List<T> b) {
        final List<T> r = new ArrayList<>(a);
        r.addAll(b);
        return r;
    }

    private static Path frontend() {
        final String d = System.getProperty("native.dir", "native-test/target/native");
        return Path.of(d, "vsb-frontend");
    }

    /**
     * After the run, from the bridge's {@code query-vserport}: the share of the bytes of all ports that the device
     * worker moved itself (direct output and input on plain sockets), the rest having gone through the port rings and
     * the chardevs' event loops.
     */
    private static String directShare(final Path dir) {
        try (QmpClient qmp = QmpClient.connect(dir.resolve("qmp.sock"), Duration.ofSeconds(30))) {
            final JsonNode ports = qmp.execute("query-vserport", Duration.ofSeconds(30)).get("return");
            long to = 0;
            long toDirect = 0;
            long from = 0;
            long fromDirect = 0;
            for (final JsonNode p : ports) {
                if (!p.has("bytes-to-host-direct") || !p.has("bytes-from-host-direct")) {
                    return "moved by the device worker itself: not known (this bridge does not count it)\n";
                }
                to += p.path("bytes-to-host").asLong();
                toDirect += p.path("bytes-to-host-direct").asLong();
                from += p.path("bytes-from-host").asLong();
                fromDirect += p.path("bytes-from-host-direct").asLong();
            }
            return String.format("moved by the device worker itself (query-vserport, all ports): guest->host %.1f %% of"
                + " %d bytes, host->guest %.1f %% of %d bytes%n", percent(toDirect, to), to,
                percent(fromDirect, from), from);
        } catch (final IOException | RuntimeException e) {
            return "moved by the device worker itself: not known (" + e.getMessage() + ")\n";
        }
    }

    private static double percent(final long part, final long whole) {
        return whole == 0 ? 0 : 100.0 * part / whole;
    }

    private static Process startBridge(final Path dir, final int ports, final String jfr, final List<String> jvm,
                                       final Path log) throws IOException {
        final Path jar = Path.of(System.getProperty("bridge.jar", "bridge-core/target/vhost-serial-bridge.jar"));
        if (!Files.isRegularFile(jar)) {
            throw new IllegalStateException("bridge jar " + jar + " does not exist: mvn -B -q package -DskipTests");
        }
        final List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(jvm);
        if (jfr != null) {
            cmd.add("-XX:+FlightRecorder");
            cmd.add("-XX:StartFlightRecording=duration=30s,settings=profile,filename=" + Path.of(jfr).toAbsolutePath());
        }
        cmd.add("-jar");
        // A private copy, as the tests do: the shared jar may be rebuilt while the bridge runs.
        final Path copy = dir.resolve("vhost-serial-bridge.jar");
        Files.copy(jar, copy, StandardCopyOption.REPLACE_EXISTING);
        cmd.add(copy.toString());
        cmd.addAll(List.of("--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off"));
        cmd.addAll(List.of("--socket-path", dir.resolve("bridge.sock").toString(), "--max-ports",
            Integer.toString(ports + 1), "--log-level", "warning"));
        cmd.addAll(List.of("--chardev", "socket,id=c0,path=" + dir.resolve("p0.sock") + ",server=on,wait=off",
            "--device", "virtconsole,chardev=c0,id=con0,nr=0"));
        for (int i = 1; i <= ports; i++) {
            cmd.addAll(List.of("--chardev", "socket,id=c" + i + ",path=" + dir.resolve("p" + i + ".sock")
                + ",server=on,wait=off", "--device", "virtserialport,chardev=c" + i + ",name=org.bench." + i
                + ",id=port" + i + ",nr=" + i));
        }
        System.out.println("[bench] bridge: " + String.join(" ", cmd.subList(0, cmd.indexOf("-jar") + 2))
            + " ... (" + ports + " generic ports + console), log " + log);
        return new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
            .redirectOutput(log.toFile()).start();
    }

    private static BenchResults runFrontend(final List<String> cmd, final Path outFile, final Path errFile)
        throws IOException, InterruptedException {
        System.out.println("[bench] " + String.join(" ", cmd));
        final Process p = new ProcessBuilder(cmd).redirectError(errFile.toFile()).start();
        final BenchResults r = new BenchResults();
        final List<String> lines = new ArrayList<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                lines.add(line);
                r.accept(line);
                if (line.startsWith("BENCH") || line.startsWith("SUMMARY") || line.startsWith("SKIP")
                    || line.startsWith("READY") || line.startsWith("CONFIG")) {
                    System.out.println(line);
                }
            }
        }
        final int rc = p.waitFor();
        Files.write(outFile, lines, StandardCharsets.UTF_8);
        if (rc != 0) {
            throw new IllegalStateException("vsb-frontend exited with " + rc + ":\n" + Files.readString(errFile));
        }
        return r;
    }

    private static String machine() {
        final StringBuilder b = new StringBuilder("Machine: ");
        b.append(Runtime.getRuntime().availableProcessors()).append(" CPUs (nproc), ");
        try {
            for (final String l : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (l.startsWith("model name")) {
                    b.append(l.substring(l.indexOf(':') + 1).trim()).append(", ");
                    break;
                }
            }
        } catch (final IOException e) {
            b.append("(cpu model unknown), ");
        }
        b.append("Linux ").append(System.getProperty("os.version")).append(", JDK ")
            .append(System.getProperty("java.vm.vendor")).append(' ').append(System.getProperty("java.runtime.version"))
            .append('\n');
        return b.toString();
    }
}
