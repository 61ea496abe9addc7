package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * A guest open and close of a generic port shows on QMP as exactly VSERPORT_CHANGE open=true, then open=false.
 * QEMU throttles the event to one per second per id, the last state winning inside the window; the test waits
 * for each event before the guest's next change, so none can be coalesced away. The guest then opens the port
 * again: that third event must be the next one of the port, so any extra event between (a duplicate, a late
 * coalesced one) shows, with no sleep to guess how long to look.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeQmpEventTest extends NativeRigTest {

    private static final Duration WAIT = Duration.ofSeconds(20);

    @Test
    void guestOpenThenCloseGivesExactlyTwoVserportChanges() throws Exception {
        final QmpClient qmp = rig.qmp();
        final FrontendProcess f = rig.frontend("--stdin", "--port", "1");
        f.awaitLine("^NAME port=1 org\\.test\\.1$", WAIT);
        final int before = qmp.events().size();

        f.command("open 1");
        final int opened = qmp.awaitEvent(QmpClient.vserportChange("port1"), before, WAIT, "VSERPORT_CHANGE port1");
        f.command("close 1");
        final int closed = qmp.awaitEvent(QmpClient.vserportChange("port1", false), opened + 1, WAIT,
            "VSERPORT_CHANGE port1 open=false");
        // The marker: a later change of the same port, delivered after everything the bridge had for port1 before.
        f.command("open 1");
        final int reopened = qmp.awaitEvent(QmpClient.vserportChange("port1", true), closed + 1, WAIT,
            "VSERPORT_CHANGE port1 open=true again");

        final List<JsonNode> port1 = qmp.events().subList(before, reopened + 1).stream()
            .filter(QmpClient.vserportChange("port1")).toList();
        assertEquals(List.of(true, false, true), port1.stream().map(e -> e.path("data").path("open").asBoolean())
            .toList(), "VSERPORT_CHANGE events for port1 up to the reopen: " + port1);
        for (final JsonNode e : port1) {
            assertTrue(e.path("timestamp").has("seconds") && e.path("timestamp").has("microseconds"),
                "event without a QMP timestamp: " + e);
        }
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }
}
