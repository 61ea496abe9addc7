package org.vsbridge.nativetest.realguest;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import org.awaitility.core.ConditionTimeoutException;
import org.vsbridge.nativetest.kit.Endpoint;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.QmpClient;
import org.vsbridge.nativetest.kit.Waits;

/**
 * One boot of the guest under QEMU: builds the command line for the backend, arms the host
 * peers with what the plan makes the guest send, follows the serial console and reacts to
 * the guest ({@code VSB-READY}: start a host-to-guest stream; {@code VSB-WAIT}: close or open
 * the host side of a port), and collects every result line.
 */
final class GuestRun implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(GuestRun.class.getName());
    private static final long STALL_SECONDS = 60;

    private final String name;
    private final GuestPlan plan;
    private final Map<String, HostPeer> peers;
    private final Process process;
    private final Path serialLog;
    private final Path stderrLog;
    private final Path qemuQmp;
    private final List<String> command;
    private final List<SerialLine> lines = new CopyOnWriteArrayList<>();
    private final Map<Integer, SerialLine> results = new ConcurrentHashMap<>();
    private final Map<Integer, GuestPattern.Sink> sinks = new ConcurrentHashMap<>();
    private final Map<Integer, GuestInbound.Echo> echoes = new ConcurrentHashMap<>();
    private final Map<Integer, HostPeer.Sender> senders = new ConcurrentHashMap<>();
    private final List<String> hostErrors = new CopyOnWriteArrayList<>();
    private final CountDownLatch done = new CountDownLatch(1);
    /** Host actions (connect, disconnect, start a sender) run here, never on the serial reader. */
    private final ExecutorService actions = Executors.newSingleThreadExecutor(r -> {
        final Thread t = new Thread(r, "guest-actions");
        t.setDaemon(true);
        return t;
    });
    private final Thread serialReader;
    private volatile SerialLine doneLine;
    private volatile long lastLineNanos = System.nanoTime();
    private volatile QmpClient qmp;
    private volatile int firstEvent;
    private volatile List<JsonNode> eventSnapshot;

    private GuestRun(final String name, final GuestPlan plan, final Map<String, HostPeer> peers, final Process process,
                     final Path serialLog, final Path stderrLog, final Path qemuQmp, final List<String> command) {
        this.name = name;
        this.plan = plan;
        this.peers = peers;
        this.process = process;
        this.serialLog = serialLog;
        this.stderrLog = stderrLog;
        this.qemuQmp = qemuQmp;
        this.command = command;
        this.serialReader = new Thread(this::readSerial, "serial-" + name);
        this.serialReader.setDaemon(true);
    }

    /** QEMU's arguments for {@code backend}, without the binary. */
    static List<String> qemuArguments(final Backend backend, final GuestImage image, final PortLayout layout,
                                      final Path qemuQmp, final String checks) {
        final List<String> a = new ArrayList<>(List.of(
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-accel", "tcg", "-smp", "1",
            "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
            "-machine", "q35,memory-backend=mem", "-m", "512M",
            "-kernel", image.kernel().toString(), "-initrd", image.initramfs().toString(),
            "-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=5 " + checks,
            "-serial", "stdio",
            "-qmp", "unix:" + qemuQmp + ",server=on,wait=off"));
        switch (backend) {
            case BRIDGE, BRIDGE_PACKED -> a.addAll(List.of(
                "-chardev", "socket,id=vu,path=" + layout.vhostSocket(),
                // max_nr_ports = 3: queues 2 * (3 + 1); the 12-byte config carries max_nr_ports.
                "-device", "vhost-user-test-device-pci,chardev=vu,virtio-id=3,num_vqs=8,config_size=12"));
            case QEMU_BUILTIN -> a.addAll(List.of(
                "-device", "virtio-serial-pci,id=vser0,max_ports=3",
                "-chardev", "socket,id=c0," + layout.console().chardevAddress() + ",server=on,wait=off",
                "-device", "virtconsole,bus=vser0.0,chardev=c0,id=" + PortLayout.CONSOLE_ID,
                "-chardev", "socket,id=c1," + layout.port1().chardevAddress() + ",server=on,wait=off",
                "-device", "virtserialport,bus=vser0.0,chardev=c1,id=" + PortLayout.PORT1_ID
                    + ",name=" + PortLayout.PORT1_NAME,
                "-chardev", "socket,id=c2," + layout.port2().chardevAddress() + ",server=on,wait=off",
                "-device", "virtserialport,bus=vser0.0,chardev=c2,id=" + PortLayout.PORT2_ID
                    + ",name=" + PortLayout.PORT2_NAME));
        }
        return a;
    }

    /**
     * Arms the peers for the plan and starts QEMU. The caller connects the peers (before for
     * the bridge, whose chardevs outlive a VM; after for QEMU, which owns them).
     */
    static GuestRun start(final String name, final Path qemu, final Backend backend, final GuestImage image,
                          final PortLayout layout, final GuestPlan plan, final Map<String, HostPeer> peers,
                          final Path logDir) throws IOException {
        final List<String> cmd = new ArrayList<>();
        cmd.add(qemu.toString());
        // With QEMU's own device the QMP events come from QEMU; with the bridge, from the bridge.
        final Path qemuQmp = backend == Backend.QEMU_BUILTIN ? layout.qmp().unixPath() : layout.dir().resolve("qemu-qmp.sock");
        cmd.addAll(qemuArguments(backend, image, layout, qemuQmp, plan.checksParameter()));
        final Path serial = logDir.resolve(name + ".serial.log");
        final Path stderr = logDir.resolve(name + ".qemu-stderr.log");
        Files.deleteIfExists(serial);
        Files.deleteIfExists(stderr);
        final Map<Integer, GuestPattern.Sink> sinks = new ConcurrentHashMap<>();
        final Map<Integer, GuestInbound.Echo> echoes = new ConcurrentHashMap<>();
        for (int i = 1; i <= plan.steps().size(); i++) {
            final GuestPlan.Step step = plan.step(i);
            if (step instanceof GuestPlan.G2h g) {
                // The console's bytes are kept: QEMU's own console may cut pieces out, and what is left is checked for order.
                final GuestPattern.Sink sink = new GuestPattern.Sink(new GuestPattern(g.seed()), g.bytes(), g.md5(),
                    PortLayout.CONSOLE_TTY.equals(g.target()) && g.bytes() <= 64L << 20);
                sinks.put(i, sink);
                peer(peers, g.target()).expect(new GuestInbound.Sink(sink));
            } else if (step instanceof GuestPlan.Echo e) {
                final GuestInbound.Echo echo = new GuestInbound.Echo((long) e.count() * e.size());
                echoes.put(i, echo);
                peer(peers, e.target()).expect(echo);
            }
        }
        final Process p = new ProcessBuilder(cmd)
            .redirectError(ProcessBuilder.Redirect.to(stderr.toFile()))
            .start();
        final GuestRun run = new GuestRun(name, plan, peers, p, serial, stderr, qemuQmp, cmd);
        run.sinks.putAll(sinks);
        run.echoes.putAll(echoes);
        run.serialReader.start();
        LOG.info(() -> "guest " + name + ": started QEMU pid " + p.pid() + " with " + plan.checksParameter());
        return run;
    }

    private static HostPeer peer(final Map<String, HostPeer> peers, final String target) {
        final HostPeer p = peers.get(target);
        if (p == null) {
            throw new IllegalArgumentException("no host peer for port " + target);
        }
        return p;
    }

    private void readSerial() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
             PrintWriter log = new PrintWriter(Files.newBufferedWriter(serialLog, StandardCharsets.UTF_8), true)) {
            String line;
            while ((line = in.readLine()) != null) {
                log.println(line);
                lastLineNanos = System.nanoTime();
                SerialLine.parse(line).ifPresent(this::onLine);
            }
        } catch (final IOException e) {
            hostErrors.add("serial: " + e);
        } finally {
            done.countDown();
        }
    }

    private void onLine(final SerialLine line) {
        lines.add(line);
        switch (line.kind()) {
            case "RESULT" -> results.put(line.step(), line);
            case "DONE" -> {
                doneLine = line;
                done.countDown();
            }
            case "READY" -> {
                final int step = line.step();
                if (step >= 1 && step <= plan.steps().size() && plan.step(step) instanceof GuestPlan.H2g h) {
                    actions.execute(() -> {
                        try {
                            senders.put(step, peer(peers, h.target()).send(new GuestPattern(h.seed()).source(), h.bytes()));
                        } catch (final IOException e) {
                            hostErrors.add("step " + step + ": cannot send: " + e.getMessage());
                        }
                    });
                }
            }
            case "WAIT" -> {
                final HostPeer p = peers.get(line.get("port"));
                final boolean open = "1".equals(line.get("want"));
                actions.execute(() -> {
                    try {
                        if (open) {
                            p.connect(Duration.ofSeconds(10));
                        } else {
                            p.close();
                        }
                    } catch (final IOException | RuntimeException e) {
                        hostErrors.add("step " + line.step() + ": peer " + (open ? "connect" : "disconnect") + ": " + e);
                    }
                });
            }
            default -> { }
        }
    }

    /**
     * Waits until the guest printed {@code VSB-DONE} (or QEMU ended) and QEMU exited, then until
     * the host received what the guest reported sending.
     *
     * @return true when the guest finished its plan
     */
    boolean awaitDone(final Duration timeout) throws InterruptedException {
        try {
            Waits.upTo(timeout, "guest " + name + " done").pollInterval(Duration.ofMillis(200)).until(() -> {
                // A guest that printed nothing for a minute is stuck: no transfer here takes that long.
                if (done.getCount() > 0 && System.nanoTime() - lastLineNanos > TimeUnit.SECONDS.toNanos(STALL_SECONDS)) {
                    hostErrors.add("guest printed nothing for " + STALL_SECONDS + " s; giving up");
                    probeQemu();
                    return true;
                }
                return done.getCount() == 0;
            });
        } catch (final ConditionTimeoutException e) {
            hostErrors.add("guest not done within " + timeout);
        }
        final boolean finished = doneLine != null;
        if (!process.waitFor(finished ? 20 : 1, TimeUnit.SECONDS)) {
            LOG.warning(() -> "guest " + name + ": QEMU still running, killing it");
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        serialReader.join(5_000);
        // Until each host peer has what the guest reported sending, or cannot get more: its connection ended (QEMU's
        // own chardevs close with QEMU, after everything QEMU wrote).
        try {
            Waits.upTo(Duration.ofSeconds(10), "guest " + name + ": host peers received what the guest sent")
                .until(this::hostCaughtUp);
        } catch (final ConditionTimeoutException e) {
            hostErrors.add("host peers still short of what the guest sent: " + hostState());
        }
        for (final HostPeer.Sender s : senders.values()) {
            s.await(Duration.ofSeconds(10));
        }
        actions.shutdown();
        actions.awaitTermination(10, TimeUnit.SECONDS);
        return finished;
    }

    private boolean hostCaughtUp() {
        for (final Map.Entry<Integer, GuestPattern.Sink> e : sinks.entrySet()) {
            final SerialLine r = results.get(e.getKey());
            final long sent = r == null ? -1 : r.getLong("bytes");
            final GuestPattern.Sink sink = e.getValue();
            final HostPeer peer = peers.get(plan.step(e.getKey()).target());
            if (!sink.isComplete() && sink.received() < sent && !(peer != null && peer.sawEof())) {
                return false;
            }
        }
        return true;
    }

    /**
     * Asks a stuck QEMU where the guest is: whether its main loop answers QMP at all (it blocks
     * while waiting for a vhost-user reply) and where the vCPU executes (a guest spinning on an
     * unused control or console buffer shows the same instruction pointer every time).
     */
    private void probeQemu() {
        if (!process.isAlive()) {
            return;
        }
        try (QmpClient q = QmpClient.connect(Endpoint.unix(qemuQmp), Duration.ofSeconds(5))) {
            hostErrors.add("QEMU query-status: " + q.execute("query-status", Duration.ofSeconds(5)));
            // Samples back to back: a vCPU that runs shows a different RIP in each.
            for (int i = 0; i < 3; i++) {
                final JsonNode r = q.execute("human-monitor-command", Map.of("command-line", "info registers"),
                    Duration.ofSeconds(5));
                final String regs = r.path("return").asText();
                hostErrors.add("QEMU vCPU sample " + i + ": " + regs.lines()
                    .filter(l -> l.startsWith("RAX") || l.startsWith("RIP") || l.startsWith("RSP"))
                    .reduce("", (a, b) -> a + b.strip() + " | "));
            }
        } catch (final IOException | RuntimeException e) {
            hostErrors.add("QEMU does not answer QMP (main loop blocked?): " + e.getMessage());
        }
    }

    /** Ends QEMU with SIGKILL, as a crash would. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
        serialReader.join(5_000);
        actions.shutdownNow();
    }

    /** The QMP client whose events belong to this run, from event number {@code from} on. */
    void attachQmp(final QmpClient client, final int from) {
        qmp = client;
        firstEvent = from;
    }

    /** Freezes the events of this run (before its QMP client goes away). */
    void snapshotEvents() {
        final QmpClient q = qmp;
        if (q != null) {
            final List<JsonNode> all = q.events();
            eventSnapshot = all.subList(Math.min(firstEvent, all.size()), all.size());
        }
    }

    /** QMP events seen since this run started. */
    List<JsonNode> events() {
        final List<JsonNode> frozen = eventSnapshot;
        if (frozen != null) {
            return frozen;
        }
        final QmpClient q = qmp;
        if (q == null) {
            return List.of();
        }
        final List<JsonNode> all = q.events();
        return all.subList(Math.min(firstEvent, all.size()), all.size());
    }

    boolean isAlive() {
        return process.isAlive();
    }

    String name() {
        return name;
    }

    GuestPlan plan() {
        return plan;
    }

    List<SerialLine> lines() {
        return List.copyOf(lines);
    }

    List<SerialLine> lines(final String kind) {
        return lines.stream().filter(l -> l.kind().equals(kind)).toList();
    }

    SerialLine result(final int step) {
        return results.get(step);
    }

    SerialLine doneLine() {
        return doneLine;
    }

    GuestPattern.Sink sink(final int step) {
        return sinks.get(step);
    }

    GuestInbound.Echo echo(final int step) {
        return echoes.get(step);
    }

    HostPeer.Sender sender(final int step) {
        return senders.get(step);
    }

    List<String> hostErrors() {
        return List.copyOf(hostErrors);
    }

    List<String> command() {
        return command;
    }

    /** Serial console and QEMU's stderr, for a failure report. */
    String diagnostics() {
        final StringBuilder sb = new StringBuilder();
        sb.append("---- ").append(name).append(": QEMU command\n").append(String.join(" ", command)).append('\n');
        sb.append("---- ").append(name).append(": serial console (").append(serialLog).append(")\n");
        sb.append(readQuietly(serialLog));
        sb.append("---- ").append(name).append(": QEMU stderr\n").append(readQuietly(stderrLog));
        sb.append("---- ").append(name).append(": host side\n").append(hostState());
        sb.append("---- ").append(name).append(": QMP events\n");
        events().forEach(e -> sb.append(e).append('\n'));
        if (!hostErrors.isEmpty()) {
            sb.append("---- ").append(name).append(": host errors\n").append(String.join("\n", hostErrors)).append('\n');
        }
        return sb.toString();
    }

    /** What the host peers got and sent per step: where a stuck transfer stopped. */
    String hostState() {
        final StringBuilder sb = new StringBuilder();
        sinks.forEach((step, k) -> sb.append("step ").append(step).append(" guest-to-host: received ").append(k.received())
            .append(" of ").append(k.expected()).append(", first mismatch ").append(k.firstMismatch()).append('\n'));
        echoes.forEach((step, e) -> sb.append("step ").append(step).append(" echo: echoed ").append(e.echoed())
            .append(" of ").append(e.total()).append('\n'));
        senders.forEach((step, s) -> sb.append("step ").append(step).append(" host-to-guest: sent ").append(s.sent())
            .append(" of ").append(s.requested()).append(s.error() != null ? ", error " + s.error() : "").append('\n'));
        peers.forEach((target, p) -> sb.append("peer ").append(target).append(": connected ").append(p.isConnected())
            .append(", received ").append(p.totalReceived()).append(", unexpected ").append(p.unexpectedBytes()).append('\n'));
        return sb.toString();
    }

    static String readQuietly(final Path p) {
        try {
            return Files.exists(p) ? Files.readString(p) : "(missing " + p + ")\n";
        } catch (final IOException e) {
            return "(unreadable " + p + ": " + e + ")\n";
        }
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
        actions.shutdownNow();
    }
}
