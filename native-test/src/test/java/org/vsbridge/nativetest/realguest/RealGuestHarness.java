package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.vsbridge.nativetest.kit.BridgeProcess;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * Everything around the guest for one backend: the port layout, the host peers on the three
 * chardevs, the QMP client and, for {@link Backend#BRIDGE}, one bridge process that serves
 * every VM of the harness in turn. Sockets live in a short temporary directory (Unix socket
 * paths are limited to 107 bytes); logs go to {@code target/realguest/<name>/}.
 */
final class RealGuestHarness implements AutoCloseable {
    private final RealGuestEnvironment env;
    private final Backend backend;
    private final Path dir;
    private final Path logDir;
    private final PortLayout layout;
    private final Map<String, HostPeer> peers = new LinkedHashMap<>();
    private final List<GuestRun> runs = new ArrayList<>();
    private final BridgeProcess bridge;
    private QmpClient qmp;

    private RealGuestHarness(final RealGuestEnvironment env, final Backend backend, final String name)
        throws IOException, InterruptedException {
        this.env = env;
        this.backend = backend;
        this.dir = Files.createTempDirectory("vsb-rg-");
        this.logDir = env.moduleDir.resolve("target/realguest").resolve(name);
        Files.createDirectories(logDir);
        this.layout = PortLayout.in(dir);
        peers.put(PortLayout.CONSOLE_TTY, new HostPeer("console", layout.console(), 0).discardUnexpected(true));
        peers.put(PortLayout.PORT1_NAME, new HostPeer(PortLayout.PORT1_NAME, layout.port1(), 1).discardUnexpected(true));
        peers.put(PortLayout.PORT2_NAME, new HostPeer(PortLayout.PORT2_NAME, layout.port2(), 2).discardUnexpected(true));
        if (backend.isBridge()) {
            final Path log = logDir.resolve("bridge.log");
            Files.deleteIfExists(log);
            // The kit runs a private copy of the jar: the one in target/ may be rebuilt while this harness runs.
            bridge = BridgeProcess.start(env.bridgeJar, dir, log, bridgeArguments(layout, backend));
            try {
                bridge.awaitListening(layout.vhostSocket(), Duration.ofSeconds(30));
            } catch (final IOException | RuntimeException e) {
                bridge.close();
                throw e;
            }
        } else {
            bridge = null;
        }
    }

    /** The bridge's command line: one console port and two named ports on the layout's sockets, QMP, and the
     *  backend's own options. */
    private static List<String> bridgeArguments(final PortLayout layout, final Backend backend) {
        final List<String> args = new ArrayList<>(List.of(
            "--socket-path", layout.vhostSocket().toString(),
            "--chardev", "socket,id=c0," + layout.console().chardevAddress() + ",server=on,wait=off",
            "--device", "virtconsole,chardev=c0,id=" + PortLayout.CONSOLE_ID,
            "--chardev", "socket,id=c1," + layout.port1().chardevAddress() + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c1,name=" + PortLayout.PORT1_NAME + ",id=" + PortLayout.PORT1_ID,
            "--chardev", "socket,id=c2," + layout.port2().chardevAddress() + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c2,name=" + PortLayout.PORT2_NAME + ",id=" + PortLayout.PORT2_ID,
            "--qmp", "unix:" + layout.qmp().unixPath() + ",server=on,wait=off"));
        args.addAll(backend.bridgeOptions());
        return args;
    }

    /** A harness for {@code backend}; skips the calling test when the machine cannot run it. */
    static RealGuestHarness open(final Backend backend, final String name) throws IOException, InterruptedException {
        final RealGuestEnvironment env = RealGuestEnvironment.require(backend.isBridge());
        final RealGuestHarness h = new RealGuestHarness(env, backend, name);
        if (backend.isBridge()) {
            try {
                h.connectPeers();
                h.qmp = QmpClient.connect(h.layout.qmp(), Duration.ofSeconds(10));
            } catch (final IOException | RuntimeException e) {
                final String log = h.bridge.log();
                h.close();
                throw new IOException(e.getMessage() + "\n---- bridge log\n" + log, e);
            }
        }
        return h;
    }

    Backend backend() {
        return backend;
    }

    PortLayout layout() {
        return layout;
    }

    HostPeer peer(final String target) {
        return peers.get(target);
    }

    BridgeProcess bridge() {
        return bridge;
    }

    QmpClient qmp() {
        return qmp;
    }

    void connectPeers() throws IOException, InterruptedException {
        for (final HostPeer p : peers.values()) {
            p.connect(Duration.ofSeconds(15));
        }
    }

    /** Boots a guest with {@code plan}; returns once QEMU runs and the host side is attached. */
    GuestRun start(final String name, final GuestPlan plan) throws IOException, InterruptedException {
        if (backend.isBridge()) {
            connectPeers();
        }
        final GuestRun run = GuestRun.start(name, env.qemu, backend, env.image, layout, plan, peers, logDir);
        runs.add(run);
        if (backend.isBridge()) {
            run.attachQmp(qmp, qmp.events().size());
        } else {
            // QEMU owns the chardevs and the QMP socket: attach once they exist, before the guest
            // is far enough to open a port (about 4 s of boot).
            connectPeers();
            qmp = QmpClient.connect(layout.qmp(), Duration.ofSeconds(15));
            run.attachQmp(qmp, 0);
        }
        return run;
    }

    /** Boots, waits for the guest to finish (at most {@code timeoutMillis}) and detaches. */
    GuestRun run(final String name, final GuestPlan plan, final long timeoutMillis) throws IOException, InterruptedException {
        final GuestRun run = start(name, plan);
        run.awaitDone(Duration.ofMillis(timeoutMillis));
        finish(run);
        return run;
    }

    /** Detaches the host side from a finished (or killed) run. */
    void finish(final GuestRun run) throws InterruptedException, IOException {
        run.snapshotEvents();
        for (final HostPeer p : peers.values()) {
            p.clearExpectations();
        }
        if (backend == Backend.QEMU_BUILTIN) {
            for (final HostPeer p : peers.values()) {
                p.close();
            }
            if (qmp != null) {
                qmp.close();
                qmp = null;
            }
        }
        run.close();
    }

    /** The bridge's log, QEMU command lines, serial consoles and QMP events of every run. */
    String diagnostics() {
        final StringBuilder sb = new StringBuilder();
        sb.append("==== real-guest diagnostics, backend ").append(backend).append(", logs in ").append(logDir).append('\n');
        for (final GuestRun r : runs) {
            sb.append(r.diagnostics());
        }
        if (bridge != null) {
            sb.append("---- bridge command\n").append(String.join(" ", bridge.command())).append('\n');
            sb.append("---- bridge log (alive=").append(bridge.isAlive()).append(")\n").append(bridge.log());
        }
        return sb.toString();
    }

    @Override
    public void close() throws InterruptedException, IOException {
        for (final GuestRun r : runs) {
            r.close();
        }
        for (final HostPeer p : peers.values()) {
            p.close();
        }
        if (qmp != null) {
            qmp.close();
        }
        if (bridge != null) {
            bridge.close();
        }
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
