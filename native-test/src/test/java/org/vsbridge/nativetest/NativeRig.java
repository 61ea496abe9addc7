package org.vsbridge.nativetest;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.vsbridge.nativetest.kit.BridgeProcess;
import org.vsbridge.nativetest.kit.DataPath;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * The standard end-to-end set-up: the real bridge with a console (c0, unix con.sock), port 1 (c1, unix p1.sock,
 * name org.test.1, id port1) and port 2 (c2, tcp on a free port, name org.test.2, id port2), QMP on qmp.sock;
 * the native frontend plays QEMU and the guest; host peers are opened on demand. Everything started here is
 * stopped by {@link #close()}, which also prints the tails of the logs.
 */
final class NativeRig implements AutoCloseable {

    static final Duration CONNECT = Duration.ofSeconds(20);

    final Path dir;
    final int tcpPort;
    final BridgeProcess bridge;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final List<FrontendProcess> frontends = new ArrayList<>();
    private QmpClient qmp;
    private int frontendCount;

    private NativeRig(final Path dir, final int tcpPort, final BridgeProcess bridge) {
        this.dir = dir;
        this.tcpPort = tcpPort;
        this.bridge = bridge;
    }

    static NativeRig start(final Path dir) throws IOException {
        return start(dir, List.of());
    }

    /** The standard set-up with more bridge options (e.g. --packed-ring). */
    static NativeRig start(final Path dir, final List<String> extra) throws IOException {
        final int tcp = freeTcpPort();
        final List<String> args = new ArrayList<>(List.of(
            "--socket-path", dir.resolve("bridge.sock").toString(),
            "--chardev", "socket,id=c0,path=" + dir.resolve("con.sock") + ",server=on,wait=off",
            "--chardev", "socket,id=c1,path=" + dir.resolve("p1.sock") + ",server=on,wait=off",
            "--chardev", "socket,id=c2,host=127.0.0.1,port=" + tcp + ",server=on,wait=off",
            "--device", "virtconsole,chardev=c0,id=con0",
            "--device", "virtserialport,chardev=c1,name=org.test.1,id=port1",
            "--device", "virtserialport,chardev=c2,name=org.test.2,id=port2",
            "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off"));
        args.addAll(extra);
        return new NativeRig(dir, tcp, BridgeProcess.start(dir, args));
    }

    private static int freeTcpPort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    Path vhostSocket() {
        return dir.resolve("bridge.sock");
    }

    /** A host peer on port 0 (console), 1 (unix) or 2 (tcp). */
    HostPeer peer(final int port) throws IOException {
        final HostPeer p = switch (port) {
            case 0 -> HostPeer.unix(dir.resolve("con.sock"), 0, CONNECT);
            case 1 -> HostPeer.unix(dir.resolve("p1.sock"), 1, CONNECT);
            case 2 -> HostPeer.tcp(tcpPort, 2, CONNECT);
            default -> throw new IllegalArgumentException("port " + port);
        };
        owned.add(p);
        return p;
    }

    /** A host peer of a chardev the test added (a unix socket chardev at {@code file} in the test directory). */
    HostPeer unixPeer(final String file, final int port) throws IOException {
        final HostPeer p = HostPeer.unix(dir.resolve(file), port, CONNECT);
        owned.add(p);
        return p;
    }

    QmpClient qmp() throws Exception {
        if (qmp == null) {
            qmp = QmpClient.connect(dir.resolve("qmp.sock"), CONNECT);
            owned.add(qmp);
        }
        return qmp;
    }

    /** Starts the native frontend against the bridge's vhost-user socket with the given scenario arguments. */
    FrontendProcess frontend(final String... scenario) throws IOException {
        final List<String> args = new ArrayList<>(List.of("--socket", vhostSocket().toString()));
        args.addAll(List.of(scenario));
        final FrontendProcess f = FrontendProcess.start(dir, "frontend-" + (++frontendCount), args);
        frontends.add(f);
        return f;
    }

    /** The {@code query-vserport} entry of port {@code nr}. */
    JsonNode vserport(final int nr) throws Exception {
        final JsonNode r = qmp().execute("query-vserport", Duration.ofSeconds(10));
        for (final JsonNode p : r.path("return")) {
            if (p.path("nr").asInt(-1) == nr) {
                return p;
            }
        }
        throw new AssertionError("no port " + nr + " in query-vserport: " + r);
    }

    /**
     * Port {@code nr} carried its bytes on the path of this run ({@link DataPath#current()}): none directly on the
     * ring path, some directly in each direction that carried any ({@code toHost}, {@code fromHost}) on the direct
     * path; and it dropped none.
     */
    void assertDataPath(final int nr, final boolean toHost, final boolean fromHost) throws Exception {
        final JsonNode p = vserport(nr);
        System.out.printf("port %d (%s path): %d of %d guest->host bytes written directly, %d of %d host->guest bytes"
            + " read directly%n", nr, DataPath.current(), p.path("bytes-to-host-direct").asLong(),
            p.path("bytes-to-host").asLong(), p.path("bytes-from-host-direct").asLong(), p.path("bytes-from-host").asLong());
        DataPath.current().assertCounters(p, toHost, fromHost);
        if (p.path("bytes-dropped").asLong() != 0) {
            throw new AssertionError("port " + nr + " dropped bytes: " + p);
        }
    }

    /** The bridge is still running and answers QMP. */
    void assertBridgeServes() throws Exception {
        bridge.assertAlive();
        // A lost wakeup costs no data, only latency (the worker falls back to its idle timeout), so no transfer
        // check sees it; the worker detects and logs it. The real guest found this one first.
        final List<String> lost = bridge.logLinesContaining("lost wakeup");
        if (!lost.isEmpty()) {
            throw new AssertionError("the device worker lost wakeups: " + lost);
        }
        final var r = qmp().execute("query-version", Duration.ofSeconds(10));
        if (!r.has("return")) {
            throw new AssertionError("query-version failed: " + r + "\n" + bridge.logTail(40));
        }
    }

    @Override
    public void close() {
        for (final FrontendProcess f : frontends) {
            f.close();
        }
        for (final AutoCloseable c : owned) {
            try {
                c.close();
            } catch (final Exception e) {
                // best effort
            }
        }
        bridge.close();
        System.out.println(bridge.logTail(60));
        for (final FrontendProcess f : frontends) {
            final String err = f.stderrText();
            if (!err.isBlank()) {
                System.out.println("--- frontend stderr ---\n" + err);
            }
        }
    }
}
