package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * A frontend that misbehaves must not take the bridge down: bad vhost-user messages get an error ack and the
 * device goes on; a descriptor pointing outside guest memory (or otherwise broken) on one port's transmitq
 * leaves the other ports flowing; afterwards QMP answers and a new frontend connection carries data. Runs on both
 * data paths ({@code -Dvsb.path=ring}).
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeMisbehaviourTest extends NativeRigTest {

    private static final long MIB = 1L << 20;
    private static final Duration WAIT = Duration.ofMinutes(2);


    @Test
    void badMessagesGetAnErrorAckAndTheDeviceGoesOn() throws Exception {
        final HostPeer p1 = rig.peer(1);
        final CompletableFuture<HostPeer.Transfer> in = p1.receive(4 * MIB);
        final CompletableFuture<HostPeer.Transfer> out = p1.send(4 * MIB);
        final FrontendProcess f = rig.frontend("--garbage", "unknown", "--garbage", "badsize", "--garbage", "badindex",
            "--port", "1:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open");
        f.assertExitsCleanly(WAIT);
        for (final String kind : List.of("unknown", "badsize", "badindex")) {
            final String line = f.awaitLine("^GARBAGE kind=" + kind + " ", Duration.ofSeconds(1));
            assertNotEquals("GARBAGE kind=" + kind + " ack=0", line, "the bridge acknowledged a bad " + kind + " request as success");
        }
        assertEquals(f.result(1).txSum(), HostPeer.await(in, WAIT, "guest->host").sum());
        assertEquals(HostPeer.await(out, WAIT, "host->guest").sum(), f.result(1).rxSum());
        rig.assertDataPath(1, true, true);
        rig.assertBridgeServes();
        newConnectionCarriesData();
    }

    @ParameterizedTest(name = "bad descriptor: {0}")
    @ValueSource(strings = {"addr", "len", "wrap", "next", "loop", "indirect"})
    void badDescriptorOnOnePortLeavesTheOthersFlowing(final String kind) throws Exception {
        final HostPeer con = rig.peer(0);
        rig.peer(1); // host side of the broken port is open, so the guest writes into it
        final HostPeer p2 = rig.peer(2);
        final CompletableFuture<HostPeer.Transfer> conIn = con.receive(256 * 1024);
        final CompletableFuture<HostPeer.Transfer> in2 = p2.receive(4 * MIB);
        final CompletableFuture<HostPeer.Transfer> out2 = p2.send(4 * MIB);
        final FrontendProcess f = rig.frontend("--port", "1:open:bad=" + kind,
            "--port", "2:tx=" + 4 * MIB + ":rx=" + 4 * MIB + ":open", "--port", "0:tx=" + 256 * 1024);
        f.assertExitsCleanly(WAIT);
        f.awaitLine("^BADDESC port=1 kind=" + kind + " posted", Duration.ofSeconds(1));
        assertEquals(f.result(2).txSum(), HostPeer.await(in2, WAIT, "port 2 guest->host").sum());
        assertEquals(HostPeer.await(out2, WAIT, "port 2 host->guest").sum(), f.result(2).rxSum());
        assertEquals(f.result(0).txSum(), HostPeer.await(conIn, WAIT, "console guest->host").sum());
        System.out.println("bad descriptor " + kind + ": " + f.result(1).badDesc() + ", vring errors signalled: "
            + f.linesMatching("^EVENT vring_err").size());
        rig.assertDataPath(2, true, true);
        rig.assertBridgeServes();
        p2.close(); // a socket chardev serves one client at a time
        newConnectionCarriesData();
    }

    /** A fresh frontend moves 1 MiB each way on port 2 (a fresh process restarts the pattern: fresh peer). */
    private void newConnectionCarriesData() throws Exception {
        try (HostPeer p2 = HostPeer.tcp(rig.tcpPort, 2, NativeRig.CONNECT)) {
            final CompletableFuture<HostPeer.Transfer> in = p2.receive(MIB);
            final CompletableFuture<HostPeer.Transfer> out = p2.send(MIB);
            final FrontendProcess g = rig.frontend("--port", "2:tx=" + MIB + ":rx=" + MIB + ":open");
            g.assertExitsCleanly(WAIT);
            assertEquals(g.result(2).txSum(), HostPeer.await(in, WAIT, "new connection guest->host").sum());
            assertEquals(HostPeer.await(out, WAIT, "new connection host->guest").sum(), g.result(2).rxSum());
        }
        rig.assertBridgeServes();
    }
}
