package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.nativetest.kit.BridgeProcess;
import org.vsbridge.nativetest.kit.Endpoint;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.Waits;

/**
 * INFLIGHT_SHMFD across {@code kill -9} of the bridge: the frontend (as QEMU does for a backend it reconnects to)
 * keeps the inflight buffer and the guest's rings, reconnects to a new bridge process on the same socket and hands
 * the buffer back; the guest's transmit stream must reach the host peers with every byte exactly once. The peers
 * read each connection to its end (what the dead bridge had written is still in the socket) and then connect to
 * the new bridge's chardev; every byte is checked against the pattern, so a lost or repeated byte fails at once.
 * The peers read slower than the guest writes and stop reading just before each kill, so kills find transmit
 * buffers the bridge delivered in part.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeInflightTest {

    private static final long BYTES = 48L << 20;
    private static final int KILLS = 3;
    private static final Duration WAIT = Duration.ofMinutes(3);
    /** Host to guest, sent once the last bridge runs: the guest's open ports must be known to it. */
    private static final int TO_GUEST = 1 << 20;
    /**
     * How late a peer comes back after its bridge died: the new bridge starts its rings before its peer is there,
     * and must hold the guest's output for it (the default policy would drop output while no peer is connected).
     */
    private static final Duration COME_BACK_AFTER = Duration.ofMillis(1500);
    /** Aim, not proof: time for the paused peers' sockets to fill before a kill (a reader inside a read takes one
     *  more chunk, then stops; every assertion holds whatever the timing: this only makes a kill likely to find
     *  transmit buffers delivered in part). */
    private static final long FILL_NANOS = TimeUnit.MILLISECONDS.toNanos(300);

    @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
    Path dir;
    private final List<BridgeProcess> bridges = new ArrayList<>();
    private FrontendProcess frontend;
    private final List<HostPeer> peers = new ArrayList<>();

    @AfterEach
    void stop() {
        peers.forEach(HostPeer::close);
        if (frontend != null) {
            frontend.close();
        }
        bridges.forEach(BridgeProcess::close);
    }

    private List<String> bridgeArgs(final int tcpPort) {
        return List.of("--socket-path", dir.resolve("bridge.sock").toString(),
            "--chardev", "socket,id=c1,path=" + dir.resolve("p1.sock") + ",server=on,wait=off",
            "--chardev", "socket,id=c2,host=127.0.0.1,port=" + tcpPort + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c1,name=org.test.1,id=port1,nr=1",
            "--device", "virtserialport,chardev=c2,name=org.test.2,id=port2,nr=2");
    }

    private BridgeProcess startBridge(final int tcpPort) throws IOException {
        final Path own = Files.createDirectories(dir.resolve("bridge-" + (bridges.size() + 1)));
        final BridgeProcess b = BridgeProcess.start(own, bridgeArgs(tcpPort));
        bridges.add(b);
        return b;
    }

    /**
     * A peer that reads each connection to its end (what the dead bridge had written is still in the socket) and
     * connects again; slower than the guest writes, so the socket is full most of the time and a kill often finds a
     * transmit buffer delivered in part (the case that would repeat bytes). Bytes beyond the guest's are counted.
     */
    private HostPeer peer(final Endpoint endpoint, final int port) throws IOException {
        final HostPeer p = new HostPeer("port " + port, endpoint, port).followReconnects(COME_BACK_AFTER)
            .throttle(16384, 100_000).discardUnexpected(true);
        peers.add(p);
        p.connect(WAIT);
        return p;
    }

    @Test
    void guestOutputExactlyOnceAcrossKill9() throws Exception {
        final int tcpPort;
        try (ServerSocket s = new ServerSocket(0)) {
            tcpPort = s.getLocalPort();
        }
        startBridge(tcpPort);
        final HostPeer r1 = peer(Endpoint.unix(dir.resolve("p1.sock")), 1);
        final HostPeer r2 = peer(Endpoint.tcp(tcpPort), 2);
        final CompletableFuture<HostPeer.Transfer> sum1 = r1.receive(BYTES);
        final CompletableFuture<HostPeer.Transfer> sum2 = r2.receive(BYTES);

        frontend = FrontendProcess.start(dir, "frontend", List.of("--socket", dir.resolve("bridge.sock").toString(),
            "--inflight", "--reconnect", "--stall-timeout", "120",
            "--port", "1:tx=" + BYTES + ":rx=" + TO_GUEST + ":open",
            "--port", "2:tx=" + BYTES + ":rx=" + TO_GUEST + ":open"));

        long lastKill = 0;
        for (int k = 1; k <= KILLS; k++) {
            final long mark = k * BYTES / (KILLS + 1);
            Waits.upTo(WAIT, "both peers past " + mark + " bytes").until(() -> {
                assertFalse(sum1.isCompletedExceptionally(), () -> "port 1 failed: " + peerState(sum1));
                assertFalse(sum2.isCompletedExceptionally(), () -> "port 2 failed: " + peerState(sum2));
                return r1.received() >= mark && r2.received() >= mark;
            });
            // The kill lands while the peers have stopped reading: the sockets are full and the bridge waits for
            // them, holding transmit buffers it delivered in part. (A kill in the instant between a write
            // returning and its record would repeat that write: no process can close that window, so the test
            // does not aim at it.)
            r1.pause(true);
            r2.pause(true);
            LockSupport.parkNanos(FILL_NANOS);
            bridges.get(bridges.size() - 1).kill();
            lastKill = System.nanoTime();
            r1.pause(false);
            r2.pause(false);
            startBridge(tcpPort);
        }
        // The guest opened its ports long ago, for the first bridge; the last one took that over from the
        // inflight buffer, so what the host sends now reaches the guest (the frontend checks the pattern).
        for (final HostPeer r : List.of(r1, r2)) {
            final long killedAt = lastKill;
            // A connection made after the last kill is to the last bridge.
            Waits.upTo(WAIT, r.label() + " connected to the last bridge").until(() -> r.connectedAt() > killedAt);
            r.send(TO_GUEST);
        }

        try {
            frontend.assertExitsCleanly(WAIT);
        } catch (final AssertionError e) {
            // A peer that found a wrong byte stops reading, and the frontend then stalls: say what the peers saw.
            throw new AssertionError("port 1 peer: " + peerState(sum1) + "; port 2 peer: " + peerState(sum2) + "\n"
                + e.getMessage(), e);
        }
        assertEquals(frontend.result(1).txSum(), HostPeer.await(sum1, WAIT, "port 1").sum(), "port 1: guest->host checksum");
        assertEquals(frontend.result(2).txSum(), HostPeer.await(sum2, WAIT, "port 2").sum(), "port 2: guest->host checksum");
        assertEquals(BYTES, frontend.result(1).txBytes());
        assertEquals(TO_GUEST, frontend.result(1).rxBytes());
        assertEquals(TO_GUEST, frontend.result(2).rxBytes());
        assertEquals(0, r1.unexpectedBytes(), "port 1: bytes beyond the " + BYTES + " the guest sent");
        assertEquals(0, r2.unexpectedBytes(), "port 2: bytes beyond the " + BYTES + " the guest sent");
        assertTrue(bridges.get(bridges.size() - 1).logLinesContaining("device state from a previous backend").stream()
            .anyMatch(l -> l.contains("2 open")), "the last bridge took over the guest's open ports");
        assertEquals(KILLS, frontend.transcript().lines().filter(l -> l.startsWith("RECONNECTED")).count(),
            () -> "the frontend reconnects once per kill:\n" + frontend.transcript());
        for (int b = 1; b < bridges.size(); b++) {
            // Each new process found the dead one's state: the transmitqs of ports 1 and 2 are queues 5 and 7.
            final List<String> found = bridges.get(b).logLinesContaining("inflight buffer from a previous backend");
            found.forEach(l -> System.out.println("[inflight] " + l));
            for (final String queue : List.of("queue 5:", "queue 7:")) {
                assertTrue(found.stream().anyMatch(l -> l.contains(queue)), () -> "bridge " + (bridges.size())
                    + " did not resume " + queue + " from the inflight buffer: " + found);
            }
        }
        System.out.println("[inflight] host connections: port 1 " + r1.connections() + ", port 2 "
            + r2.connections());
        bridges.get(bridges.size() - 1).assertAlive();
    }

    private static String peerState(final CompletableFuture<HostPeer.Transfer> f) {
        if (!f.isCompletedExceptionally()) {
            return f.isDone() ? "all bytes received" : "still receiving";
        }
        try {
            f.join();
            return "?";
        } catch (final java.util.concurrent.CompletionException e) {
            return String.valueOf(e.getCause().getMessage());
        }
    }
}
