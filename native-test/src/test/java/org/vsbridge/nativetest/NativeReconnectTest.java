package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.Waits;

/**
 * The frontend goes away and comes back (a VM restart behind the same bridge): after a clean stop, inside one
 * frontend process (--runs 2), and after an abrupt disconnect in the middle of a transfer. Each time the next
 * connection must carry data again, checked byte for byte. Runs on both data paths ({@code -Dvsb.path=ring}).
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeReconnectTest extends NativeRigTest {

    private static final long MIB = 1L << 20;
    private static final Duration WAIT = Duration.ofMinutes(2);


    @Test
    void secondFrontendAfterACleanStopCarriesData() throws Exception {
        for (int round = 1; round <= 2; round++) {
            // A new frontend process starts its streams afresh, so each round gets a fresh host peer too.
            try (HostPeer p1 = rig.peer(1)) {
                final CompletableFuture<HostPeer.Transfer> in = p1.receive(4 * MIB);
                final CompletableFuture<HostPeer.Transfer> out = p1.send(4 * MIB);
                final FrontendProcess f = rig.frontend("--port", "1:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open");
                f.assertExitsCleanly(WAIT);
                final HostPeer.Transfer got = HostPeer.await(in, WAIT, "round " + round + " guest->host");
                final HostPeer.Transfer sent = HostPeer.await(out, WAIT, "round " + round + " host->guest");
                final FrontendProcess.Result r = f.result(1);
                assertEquals(r.txSum(), got.sum(), "round " + round + ": guest->host checksum");
                assertEquals(sent.sum(), r.rxSum(), "round " + round + ": host->guest checksum");
                assertEquals(4 * MIB, r.rxBytes(), "round " + round);
            }
        }
        rig.assertDataPath(1, true, true);
        rig.assertBridgeServes();
    }

    @Test
    void twoRunsInOneFrontendProcessContinueTheStreams() throws Exception {
        final HostPeer p1 = rig.peer(1);
        final CompletableFuture<HostPeer.Transfer> in = p1.receive(8 * MIB);
        final CompletableFuture<HostPeer.Transfer> firstOut = p1.send(4 * MIB);
        final FrontendProcess f = rig.frontend("--runs", "2", "--port", "1:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open");
        f.awaitLine("^RUN 1 done$", WAIT);
        HostPeer.await(firstOut, WAIT, "run 1 host->guest");
        // The second half is offered only after run 1 ended, so no byte of it can be read into a dying run.
        final CompletableFuture<HostPeer.Transfer> secondOut = p1.send(4 * MIB);
        f.assertExitsCleanly(WAIT);
        assertEquals(2, f.linesMatching("^CONNECTED run=").size());
        final HostPeer.Transfer got = HostPeer.await(in, WAIT, "guest->host over both runs");
        final HostPeer.Transfer sent = HostPeer.await(secondOut, WAIT, "run 2 host->guest");
        final FrontendProcess.Result r = f.result(1);
        assertEquals(8 * MIB, r.txBytes());
        assertEquals(8 * MIB, r.rxBytes());
        assertEquals(r.txSum(), got.sum(), "guest->host checksum over both runs");
        assertEquals(sent.sum(), r.rxSum(), "host->guest checksum over both runs");
        rig.assertDataPath(1, true, true);
        rig.assertBridgeServes();
    }

    /**
     * The frontend drops the connection while 64 MiB are on their way. Bytes the bridge already used (completed
     * in the used ring) must still reach the peer; then, with a fresh peer on port 1 (QEMU discards a closed
     * peer's pending output), a new frontend must carry data on ports 1 and 2 exactly.
     */
    @Test
    void abruptDisconnectMidTransferThenANewConnectionWorks() throws Exception {
        final HostPeer first = rig.peer(1);
        final CompletableFuture<HostPeer.Transfer> drain = first.receive(64 * MIB);
        final FrontendProcess a = rig.frontend("--port", "1:tx=" + 64 * MIB + ":open", "--disconnect-after", String.valueOf(8 * MIB));
        a.assertExitsCleanly(WAIT);
        a.awaitLine("^DISCONNECT run=1$", Duration.ofSeconds(1));
        final long used = a.result(1).txBytes();
        assertTrue(used >= 8 * MIB && used < 64 * MIB, "bytes used before the disconnect: " + used);
        // Every byte the bridge used reaches the peer (or the peer's check fails first).
        Waits.upTo(WAIT, "the peer to get the " + used + " bytes the bridge used")
            .until(() -> first.received() >= used || drain.isDone());
        assertTrue(first.received() >= used, "the peer got " + first.received() + " bytes (pattern-checked) of the "
            + used + " the bridge used before the frontend vanished" + (drain.isCompletedExceptionally() ? ": " + drain.handle((v, e) -> e).join() : ""));
        first.close();
        rig.bridge.assertAlive();

        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final CompletableFuture<HostPeer.Transfer> in1 = p1.receive(4 * MIB);
        final CompletableFuture<HostPeer.Transfer> in2 = p2.receive(4 * MIB);
        final CompletableFuture<HostPeer.Transfer> out1 = p1.send(4 * MIB);
        final CompletableFuture<HostPeer.Transfer> out2 = p2.send(4 * MIB);
        final FrontendProcess b = rig.frontend("--port", "1:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open",
            "--port", "2:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open");
        b.assertExitsCleanly(WAIT);
        assertEquals(b.result(1).txSum(), HostPeer.await(in1, WAIT, "port 1 guest->host").sum());
        assertEquals(b.result(2).txSum(), HostPeer.await(in2, WAIT, "port 2 guest->host").sum());
        assertEquals(HostPeer.await(out1, WAIT, "port 1 host->guest").sum(), b.result(1).rxSum());
        assertEquals(HostPeer.await(out2, WAIT, "port 2 host->guest").sum(), b.result(2).rxSum());
        rig.assertDataPath(1, true, true);
        rig.assertDataPath(2, true, true);
        rig.assertBridgeServes();
    }
}
