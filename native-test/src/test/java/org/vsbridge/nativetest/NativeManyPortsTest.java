package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.nativetest.kit.BridgeProcess;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * The largest console the spec allows: max_nr_ports 511 (1024 queues), the console on port 0 and 510 generic
 * ports, each with its own unix-socket chardev, 1 MiB each way on every port at once, every byte checked by
 * pattern at the host end and by checksum at both. Queues 256..1023 cannot be named by the spec's 8-bit index in
 * SET_VRING_KICK/CALL/ERR, so the frontend uses the bridge's extension ({@code --wide-index}).
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeManyPortsTest {

    private static final int PORTS = 511;
    private static final int BYTES = 1 << 20;
    private static final Duration WAIT = Duration.ofMinutes(5);

    @TempDir
    Path dir;
    private BridgeProcess bridge;
    private FrontendProcess frontend;
    private final List<HostPeer> peers = new ArrayList<>();

    @AfterEach
    void stop() {
        peers.forEach(HostPeer::close);
        if (frontend != null) {
            frontend.close();
        }
        if (bridge != null) {
            bridge.close();
        }
    }

    @Test
    void fiveHundredElevenPortsOneMebibyteEachWay() throws Exception {
        final List<String> args = new ArrayList<>(List.of("--socket-path", dir.resolve("bridge.sock").toString(),
            "--max-ports", String.valueOf(PORTS)));
        for (int p = 0; p < PORTS; p++) {
            args.addAll(List.of("--chardev", "socket,id=c" + p + ",path=" + sock(p) + ",server=on,wait=off",
                "--device", (p == 0 ? "virtconsole" : "virtserialport") + ",chardev=c" + p + ",name=org.many." + p
                    + ",id=port" + p + ",nr=" + p));
        }
        bridge = BridgeProcess.start(dir, args);
        final List<CompletableFuture<HostPeer.Transfer>> in = new ArrayList<>();
        final List<CompletableFuture<HostPeer.Transfer>> out = new ArrayList<>();
        for (int p = 0; p < PORTS; p++) {
            final HostPeer peer = HostPeer.unix(sock(p), p, WAIT);
            peers.add(peer);
            in.add(peer.receive(BYTES));
            out.add(peer.send(BYTES));
        }

        final List<String> scenario = new ArrayList<>(List.of("--socket", dir.resolve("bridge.sock").toString(),
            "--wide-index", "--tx-depth", "8", "--stall-timeout", "120"));
        for (int p = 0; p < PORTS; p++) {
            scenario.addAll(List.of("--port", p + ":tx=" + BYTES + ":rx=" + BYTES + (p == 0 ? "" : ":open")));
        }
        frontend = FrontendProcess.start(dir, "frontend", scenario);
        frontend.assertExitsCleanly(WAIT);
        for (int p = 0; p < PORTS; p++) {
            final FrontendProcess.Result r = frontend.result(p);
            assertEquals(BYTES, r.txBytes(), "port " + p + " guest->host bytes");
            assertEquals(BYTES, r.rxBytes(), "port " + p + " host->guest bytes");
            assertEquals(r.txSum(), HostPeer.await(in.get(p), WAIT, "port " + p + " guest->host").sum(),
                "port " + p + " guest->host checksum");
            assertEquals(HostPeer.await(out.get(p), WAIT, "port " + p + " host->guest").sum(), r.rxSum(),
                "port " + p + " host->guest checksum");
        }
        bridge.assertAlive();
    }

    private Path sock(final int port) {
        return dir.resolve("p" + port + ".sock");
    }
}
