package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.DataPath;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.Waits;

/**
 * Bulk data through the real bridge: two named ports carry 64 MiB each way (port 1 through a unix socket
 * chardev, port 2 through a tcp one) while the console carries 512 KiB each way beside them. Every byte is
 * checked against the pattern on both ends and the FNV-1a sums must agree. Throughput is printed, never asserted.
 * Runs on both data paths ({@code -Dvsb.path=ring}: every byte through the port rings).
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeTransferTest extends NativeRigTest {

    private static final long BIG = 64L << 20;
    /**
     * Half the console's ring (1 MiB of ring holds less than 1 MiB of stream: message headers and the wrap): it fits
     * even while a peer on a loaded machine does not read, so the console drops nothing that this test counts.
     */
    private static final long CONSOLE = 512L << 10;
    private static final Duration LONG = Duration.ofMinutes(5);


    @Test
    void twoNamedPortsCarry64MiBEachWayBesideTheConsole() throws Exception {
        final HostPeer con = rig.peer(0);
        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final CompletableFuture<HostPeer.Transfer> conIn = con.receive(CONSOLE);
        final CompletableFuture<HostPeer.Transfer> p1In = p1.receive(BIG);
        final CompletableFuture<HostPeer.Transfer> p2In = p2.receive(BIG);
        final CompletableFuture<HostPeer.Transfer> conOut = con.send(CONSOLE);
        final CompletableFuture<HostPeer.Transfer> p1Out = p1.send(BIG);
        final CompletableFuture<HostPeer.Transfer> p2Out = p2.send(BIG);

        final FrontendProcess f = rig.frontend(
            "--port", "0:tx=" + CONSOLE + ":rx=" + CONSOLE,
            "--port", "1:tx=" + BIG + ":rx=" + BIG + ":open",
            "--port", "2:tx=" + BIG + ":rx=" + BIG + ":open");
        f.assertExitsCleanly(LONG);

        final HostPeer.Transfer conGot = HostPeer.await(conIn, LONG, "console guest->host");
        final HostPeer.Transfer p1Got = HostPeer.await(p1In, LONG, "port 1 guest->host");
        final HostPeer.Transfer p2Got = HostPeer.await(p2In, LONG, "port 2 guest->host");
        final HostPeer.Transfer conSent = HostPeer.await(conOut, LONG, "console host->guest");
        final HostPeer.Transfer p1Sent = HostPeer.await(p1Out, LONG, "port 1 host->guest");
        final HostPeer.Transfer p2Sent = HostPeer.await(p2Out, LONG, "port 2 host->guest");

        check(f, 0, CONSOLE, conGot, conSent);
        check(f, 1, BIG, p1Got, p1Sent);
        check(f, 2, BIG, p2Got, p2Sent);
        assertEquals("org.test.1", f.result(1).name());
        assertEquals("org.test.2", f.result(2).name());

        for (int port = 0; port <= 2; port++) {
            final HostPeer.Transfer got = port == 0 ? conGot : port == 1 ? p1Got : p2Got;
            final double[] guest = f.throughput(port);
            System.out.printf("port %d: guest->host %.1f MB/s (host peer receiving), host->guest %.1f MB/s "
                + "(guest receiving); guest tx side %.1f MB/s%n", port, got.megabytesPerSecond(), guest[1], guest[0]);
        }
        // All three are plain sockets: on the direct path the worker wrote guest output to them and read host
        // input from them itself (the ring takes only what a full socket refused); on the ring path every byte went
        // through the rings and the chardevs' event loops.
        for (int port = 0; port <= 2; port++) {
            rig.assertDataPath(port, true, true);
        }
        rig.assertBridgeServes();
    }

    /**
     * Peers that write and close at once, over and over, while the guest reads: the bridge's worker reads the
     * socket itself while the chardev takes the connection's end (the close lands while bytes are still queued),
     * so this is where two readers could reorder or drop bytes. The guest checks every byte against one pattern
     * that runs across all the connections.
     */
    @Test
    void hostInputSurvivesPeersThatCloseRightAfterWriting() throws Exception {
        final int rounds = 12;
        final long each = 2L << 20;
        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final FrontendProcess f = rig.frontend(
            "--port", "1:rx=" + rounds * each + ":open",
            "--port", "2:rx=" + rounds * each + ":open");
        String sum1 = null;
        String sum2 = null;
        for (int r = 0; r < rounds; r++) {
            if (r > 0) {
                p1.reconnect(LONG);
                p2.reconnect(LONG);
            }
            final CompletableFuture<HostPeer.Transfer> s1 = p1.send(each);
            final CompletableFuture<HostPeer.Transfer> s2 = p2.send(each);
            // 2 MiB per round: a minute means the guest stopped reading (it exits at the first wrong byte).
            sum1 = awaitRound(f, s1, 1, r);
            sum2 = awaitRound(f, s2, 2, r);
            p1.close(); // right after the last write: the rest is still queued in the socket
            p2.close();
        }
        f.assertExitsCleanly(LONG);
        for (int port = 1; port <= 2; port++) {
            final FrontendProcess.Result res = f.result(port);
            assertEquals(rounds * each, res.rxBytes(), "port " + port + ": bytes the guest read");
            assertEquals(0, res.rxDiscarded(), "port " + port + ": bytes the guest had to discard");
            assertEquals(port == 1 ? sum1 : sum2, res.rxSum(), "port " + port + ": host->guest checksum");
        }
        rig.assertDataPath(1, false, true);
        rig.assertDataPath(2, false, true);
        rig.assertBridgeServes();
    }

    /**
     * A peer that writes and closes while its input is lent to the device worker: the worker reads the socket to
     * its end itself and gives the input back when it sees the end; the chardev's event loop does not read the lent
     * connection, not even when the peer's close arrives with bytes still queued. So on the direct path none of
     * the second batch goes through the ring (the first batch may, partly, before the loan); on the ring path
     * nothing goes directly. Every byte reaches the guest in order either way.
     */
    @Test
    void aLentConnectionIsReadToItsEndByTheWorkerAlone() throws Exception {
        final long first = 1L << 20;
        final long second = 16L << 20;
        final HostPeer p1 = rig.peer(1);
        final FrontendProcess f = rig.frontend("--port", "1:rx=" + (first + second) + ":open");
        awaitRound(f, p1.send(first), 1, 0);
        Waits.upTo(LONG, "the guest read the first batch")
            .until(() -> rig.vserport(1).path("bytes-from-host").asLong() == first);
        final JsonNode before = rig.vserport(1);
        final long ringBefore = before.path("bytes-from-host").asLong()
            - before.path("bytes-from-host-direct").asLong();
        final String sum = awaitRound(f, p1.send(second), 1, 1);
        p1.close(); // right after the last write: most of the batch is still queued in the socket
        f.assertExitsCleanly(LONG);
        final FrontendProcess.Result res = f.result(1);
        assertEquals(first + second, res.rxBytes(), "bytes the guest read");
        assertEquals(0, res.rxDiscarded(), "bytes the guest had to discard");
        assertEquals(sum, res.rxSum(), "host->guest checksum");
        final JsonNode after = rig.vserport(1);
        final long ringAfter = after.path("bytes-from-host").asLong() - after.path("bytes-from-host-direct").asLong();
        if (DataPath.current() == DataPath.DIRECT) {
            assertEquals(ringBefore, ringAfter, () -> "host->guest bytes the event loop read during the loan: " + after);
        } else {
            assertEquals(first + second, ringAfter, () -> "host->guest bytes read directly on the ring path: " + after);
        }
        rig.assertBridgeServes();
    }

    private static String awaitRound(final FrontendProcess f, final CompletableFuture<HostPeer.Transfer> sent,
                                     final int port, final int round) throws Exception {
        try {
            return HostPeer.await(sent, Duration.ofMinutes(1), "port " + port + " round " + round).sum();
        } catch (final AssertionError e) {
            throw new AssertionError(e.getMessage() + "\n" + f.transcript(), e);
        }
    }

    private static void check(final FrontendProcess f, final int port, final long bytes, final HostPeer.Transfer got,
                              final HostPeer.Transfer sent) {
        final FrontendProcess.Result r = f.result(port);
        assertEquals(bytes, r.txBytes(), "port " + port + ": bytes the guest wrote");
        assertEquals(bytes, r.rxBytes(), "port " + port + ": bytes the guest read");
        assertEquals(0, r.rxDiscarded(), "port " + port + ": bytes the guest had to discard");
        assertEquals(r.txSum(), got.sum(), "port " + port + ": guest->host checksum");
        assertEquals(sent.sum(), r.rxSum(), "port " + port + ": host->guest checksum");
    }
}
