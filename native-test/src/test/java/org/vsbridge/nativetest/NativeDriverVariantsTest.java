package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * The same exact-bytes exchange under the driver and frontend choices a backend must accept: tx buffers split
 * into descriptor chains (segments placed in reverse memory order), chains in indirect tables, no EVENT_IDX
 * (plain flags-based notification), SET_MEM_TABLE instead of ADD_MEM_REG with the control receiveq filled
 * before the rings start (no kick: the backend must rescan avail), and larger rings; then packed rings
 * (VIRTIO_F_RING_PACKED, which the bridge offers here with --packed-ring) under the same choices.
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeDriverVariantsTest extends NativeRigTest {

    private static final long BYTES = 4L << 20;
    private static final Duration WAIT = Duration.ofMinutes(2);

    @Override
    List<String> bridgeOptions() {
        return List.of("--packed-ring"); // offered; a split driver simply does not ack it
    }

    @ParameterizedTest(name = "frontend options [{0}]")
    @ValueSource(strings = {"--tx-segs 4", "--tx-segs 3 --indirect", "--feature-mask 0x100000003",
        "--proto-mask 0x209 --early-fill", "--queue-size 256 --tx-chunk 1000",
        // Packed rings (VIRTIO_F_RING_PACKED): the same cases, and rings small enough to wrap every few chains.
        "--packed", "--packed --tx-segs 3 --indirect", "--packed --feature-mask 0x500000003",
        "--packed --early-fill", "--packed --queue-size 4 --tx-chunk 1000", "--packed --queue-size 256 --tx-segs 5"})
    void exactBytesBothWays(final String options) throws Exception {
        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final CompletableFuture<HostPeer.Transfer> in1 = p1.receive(BYTES);
        final CompletableFuture<HostPeer.Transfer> in2 = p2.receive(BYTES);
        final CompletableFuture<HostPeer.Transfer> out1 = p1.send(BYTES);
        final CompletableFuture<HostPeer.Transfer> out2 = p2.send(BYTES);
        final List<String> args = new ArrayList<>(List.of(options.split(" ")));
        args.addAll(List.of("--port", "1:tx=" + BYTES + ":rx=" + BYTES + ":open",
            "--port", "2:tx=" + BYTES + ":rx=" + BYTES + ":open", "--port", "0:tx=65536"));
        final FrontendProcess f = rig.frontend(args.toArray(new String[0]));
        f.assertExitsCleanly(WAIT);
        assertEquals(f.result(1).txSum(), HostPeer.await(in1, WAIT, "port 1 guest->host").sum());
        assertEquals(f.result(2).txSum(), HostPeer.await(in2, WAIT, "port 2 guest->host").sum());
        assertEquals(HostPeer.await(out1, WAIT, "port 1 host->guest").sum(), f.result(1).rxSum());
        assertEquals(HostPeer.await(out2, WAIT, "port 2 host->guest").sum(), f.result(2).rxSum());
        rig.assertDataPath(1, true, true);
        rig.assertDataPath(2, true, true);
        rig.assertBridgeServes();
    }
}
