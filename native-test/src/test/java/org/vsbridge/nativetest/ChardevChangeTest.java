package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * chardev-change under a running transfer: the guest writes 64 MiB on port 1; after 8 MiB the host peer of the old
 * chardev (a unix server) stops reading, so the guest is held by backpressure with output queued in the rings and in
 * the old connection; then QMP moves the port's chardev to a unix client connecting to the test. The old connection
 * delivers what it had already accepted and closes; the new one gets the rest. One peer reads both connections in
 * turn, checking every byte against the guest's one pattern, so old bytes followed by new bytes must be exactly the
 * guest's 64 MiB (and its FNV-1a sum).
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class ChardevChangeTest extends NativeRigTest {

    private static final long BIG = 64L << 20;
    private static final long PAUSE_AT = 8L << 20;
    private static final Duration LONG = Duration.ofMinutes(5);

    @Test
    void changeUnderA64MiBTransferLosesNoByte() throws Exception {
        final HostPeer peer = rig.peer(1); // connected to the old chardev before the guest starts
        final CompletableFuture<HostPeer.Transfer> first = peer.receive(PAUSE_AT); // then it reads nothing more
        final Path newSock = dir.resolve("new.sock");
        try (ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
            .bind(UnixDomainSocketAddress.of(newSock))) {
            final FrontendProcess f = rig.frontend("--port", "1:tx=" + BIG + ":open");
            HostPeer.await(first, LONG, "the old peer's first 8 MiB");

            final CompletableFuture<JsonNode> change = rig.qmp().submit("chardev-change", Map.of("id", "c1",
                "backend", Map.of("type", "socket", "data", Map.of("server", false,
                    "addr", Map.of("type", "unix", "data", Map.of("path", newSock.toString()))))));
            // The old peer reads again: what the old connection accepted before the change is still its, up to the
            // end of that connection, which the change closes.
            final HostPeer.Transfer old;
            try {
                old = HostPeer.await(peer.receiveToEnd(), LONG, "the old connection to its end");
            } catch (final AssertionError e) {
                throw new AssertionError(e.getMessage() + "; " + peer + "\n" + f.transcript(), e);
            }
            final JsonNode reply = change.get(LONG.toSeconds(), TimeUnit.SECONDS);
            assertEquals("{}", reply.path("return").toString(), reply.toString());
            final long oldBytes = PAUSE_AT + old.bytes();

            // The new chardev connected to us during the change (a client connects before chardev-change returns).
            peer.adopt(listener.accept());
            final CompletableFuture<HostPeer.Transfer> rest = peer.receive(BIG - oldBytes);
            f.assertExitsCleanly(LONG);
            HostPeer.await(rest, LONG, "the new connection's " + (BIG - oldBytes) + " bytes");

            final FrontendProcess.Result r = f.result(1);
            assertEquals(BIG, r.txBytes(), "bytes the guest wrote");
            assertTrue(BIG - oldBytes > 0, "the change happened mid-transfer: old connection bytes " + oldBytes);
            assertEquals(BIG, peer.received(), "old + new connection bytes");
            assertEquals(r.txSum(), peer.receivedSum(), "guest->host checksum across the change");
            // The host side was connected from before the guest started until after it stopped (old peer, then
            // the new chardev, connected when the change attached it, and kept connected here until the frontend
            // exited), so the guest sees the host side open once and never closed: the bridge, as QEMU, sends
            // CLOSED at a change only when the new chardev is not connected, and OPENED only on a transition.
            assertEquals(List.of("EVENT port_open port=1 value=1"), f.linesMatching("^EVENT port_open port=1 "),
                "PORT_OPEN messages for port 1");
            rig.assertDataPath(1, true, false);
            rig.assertBridgeServes();
        }
    }
}
