package org.vsbridge.nativetest.realguest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.vsbridge.nativetest.kit.Waits;

/**
 * The real-guest checks against the bridge jar behind QEMU's {@code vhost-user-test-device-pci},
 * then the bridge's own life cycle: one bridge process serving VMs one after the other, and
 * surviving a QEMU killed with SIGKILL in the middle of a transfer.
 */
class RealGuestBridgeTest extends RealGuestSuite {
    private GuestRun afterKill;
    private int afterKillPort2Step;

    @Override
    Backend backend() {
        return Backend.BRIDGE;
    }

    @Test
    @Order(20)
    void secondVmIsServedByTheSameBridge() throws Exception {
        final GuestPlan plan = new GuestPlan();
        final int list = plan.add(new GuestPlan.ListPorts(3, 2)).lastStep();
        final int g2h = plan.add(new GuestPlan.G2h(P1, 4 * MIB, 21, true)).lastStep();
        final int h2g = plan.add(new GuestPlan.H2g(P1, 4 * MIB, 22, true)).lastStep();
        final int echo = plan.add(new GuestPlan.Echo(P2, 50, 64)).lastStep();
        final GuestRun second = harness.run("second", plan, 120_000);
        assertOk(result(second, list));
        assertGuestToHost(second, g2h);
        assertHostToGuest(second, h2g);
        assertEcho(second, echo);
        assertTrue(harness.bridge().isAlive(), "bridge alive after the second VM");
    }

    @Test
    @Order(21)
    void qemuKilledMidTransferThenTheNextVmIsServed() throws Exception {
        // Guest to host, killed once the host has seen a few MiB.
        final GuestPlan g2hPlan = new GuestPlan().add(new GuestPlan.G2h(P1, 1024 * MIB, 31, false));
        final GuestRun killedG2h = harness.start("killed-g2h", g2hPlan);
        final long base = harness.peer(P1).totalReceived();
        awaitOrFail(() -> harness.peer(P1).totalReceived() - base >= 4 * MIB, killedG2h, "4 MiB guest to host");
        killedG2h.kill();
        harness.finish(killedG2h);
        // What the bridge still held for the old guest may arrive now; it belongs to no check.
        harness.peer(P1).awaitQuiet(Duration.ofMillis(500), Duration.ofSeconds(10));

        // Host to guest, killed once the guest has taken a few MiB.
        final GuestPlan h2gPlan = new GuestPlan().add(new GuestPlan.H2g(P2, 1024 * MIB, 32, false));
        final GuestRun killedH2g = harness.start("killed-h2g", h2gPlan);
        awaitOrFail(() -> killedH2g.sender(1) != null && killedH2g.sender(1).sent() >= 8 * MIB, killedH2g,
            "8 MiB host to guest");
        killedH2g.kill();
        harness.finish(killedH2g);
        // A fresh host connection: bytes the old one had queued are not part of the next check. The old one is
        // reset: a plain close would sit behind the megabytes it still has queued towards the paused chardev.
        harness.peer(P2).abort();

        assertTrue(harness.bridge().isAlive(), () -> "bridge died with its QEMU:\n" + harness.bridge().log());
        final JsonNode version = harness.qmp().execute("query-version", Duration.ofSeconds(10));
        assertTrue(version.has("return"), () -> "QMP query-version after the kills: " + version);

        final GuestPlan plan = new GuestPlan();
        final int list = plan.add(new GuestPlan.ListPorts(3, 2)).lastStep();
        final int g2h = plan.add(new GuestPlan.G2h(P1, 8 * MIB, 33, true)).lastStep();
        final int h2g = plan.add(new GuestPlan.H2g(P1, 8 * MIB, 34, true)).lastStep();
        final int echo = plan.add(new GuestPlan.Echo(P1, 50, 200)).lastStep();
        afterKillPort2Step = plan.add(new GuestPlan.G2h(P2, 8 * MIB, 35, true)).lastStep();
        afterKill = harness.run("after-kill", plan, 120_000);
        final GuestRun after = afterKill;
        assertOk(result(after, list));
        assertGuestToHost(after, g2h);
        assertHostToGuest(after, h2g);
        assertEcho(after, echo);
        final JsonNode chardevs = harness.qmp().execute("query-chardev", Duration.ofSeconds(10));
        assertTrue(chardevs.has("return"), () -> "QMP query-chardev after the next VM: " + chardevs);
        assertEquals(0, after.hostErrors().size(), () -> "host errors: " + after.hostErrors());
    }

    /**
     * Port 2's host connection was replaced after the VM that was killed while the host was
     * streaming to it: the old connection died while the port was flow-controlled (nothing read
     * from it). The next VM's output on that port must reach the new connection, complete.
     */
    @Test
    @Order(22)
    void replacedHostPeerOfAFlowControlledPortGetsTheNextVmsOutput() {
        assertNotNull(afterKill, "runs after qemuKilledMidTransferThenTheNextVmIsServed");
        assertGuestToHost(afterKill, afterKillPort2Step);
    }

    private static void awaitOrFail(final java.util.function.BooleanSupplier condition, final GuestRun run,
                                    final String what) {
        try {
            Waits.upTo(Duration.ofSeconds(90), run.name() + ": " + what).until(() -> {
                if (!run.isAlive()) {
                    throw new AssertionError(run.name() + ": QEMU ended before " + what + "; last lines:\n" + tail(run));
                }
                return condition.getAsBoolean();
            });
        } catch (final ConditionTimeoutException e) {
            throw new AssertionError(run.name() + ": never reached " + what + "; last lines:\n" + tail(run), e);
        }
    }
}
