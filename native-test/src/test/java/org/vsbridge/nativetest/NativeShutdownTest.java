package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * SIGTERM while guest output the bridge already took (used descriptors) is still buffered because the host
 * peer is not reading: the bridge hands all of it to the chardev before it exits, and exits 0. Runs on both data
 * paths ({@code -Dvsb.path=ring}: all of it waits in the port's ring).
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES)
class NativeShutdownTest extends NativeRigTest {

    private static final long MIB = 1024 * 1024;
    private static final Duration WAIT = Duration.ofSeconds(60);


    @Test
    void sigtermFlushesEveryByteTheGuestHandedOver() throws Exception {
        final HostPeer peer = rig.peer(1); // connected, reading nothing yet
        // 16 KiB tx buffers: the bridge takes them into its port ring when the socket is full (32 KiB ones it
        // writes at once and holds in the guest while the socket is full: those are still the guest's at SIGTERM).
        final FrontendProcess f = rig.frontend("--stdin", "--tx-chunk", "16384", "--port", "1");
        f.awaitLine("^NAME port=1 org\\.test\\.1$", WAIT);
        f.command("open 1");
        // 1 MiB fits in what the bridge buffers for a port (its ring and the socket's queue), so the guest's
        // buffers are all used although the peer reads nothing: the bridge owns every byte of it now.
        f.command("tx 1 " + MIB);
        f.command("wait");
        f.awaitLine("^IDLE$", WAIT);
        rig.assertDataPath(1, true, false);

        // SIGTERM first, then the peer starts reading: the bridge must wait for it, not exit without the bytes.
        final CompletableFuture<Integer> exit = CompletableFuture.supplyAsync(() -> {
            try {
                return rig.bridge.terminate(WAIT);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                return -2;
            }
        });
        // The bridge took the signal and is shutting down (waiting for the chardevs to take the output) before
        // the peer reads a byte.
        rig.bridge.awaitLogLine("shutting down", WAIT);
        final CompletableFuture<HostPeer.Transfer> in = peer.receive(MIB);
        // Every byte pattern-checked, none missing: receive fails if the connection ends early.
        assertEquals(MIB, HostPeer.await(in, WAIT, "port 1 guest->host after SIGTERM").bytes());
        assertEquals(0, exit.get(WAIT.toSeconds(), TimeUnit.SECONDS), () -> "exit status after SIGTERM\n"
            + rig.bridge.logTail(40));
    }
}
