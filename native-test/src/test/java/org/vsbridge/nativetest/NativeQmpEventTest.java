package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A guest open and close of a generic port shows on QMP as exactly VSERPORT_CHANGE open=true, then open=false.
 * QEMU throttles the event to one per second per id and coalesces to the last state inside the window; the
 * test spaces the open and the close by more than that window so both must be delivered as such, and then
 * waits another window to make sure nothing else (a duplicate, a late coalesced event) follows.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeQmpEventTest extends NativeRigTest {

    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final long THROTTLE_SPACING_MS = 1500;


    @Test
    void guestOpenThenCloseGivesExactlyTwoVserportChanges() throws Exception {
        final QmpClient qmp = rig.qmp();
        final FrontendProcess f = rig.frontend("--stdin", "--port", "1");
        f.awaitLine("^NAME port=1 org\\.test\\.1$", WAIT);
        final int before = qmp.events().size();

        f.command("open 1");
        final int opened = qmp.awaitEvent(QmpClient.vserportChange("port1"), before, WAIT, "VSERPORT_CHANGE port1");
        Thread.sleep(THROTTLE_SPACING_MS);
        f.command("close 1");
        qmp.awaitEvent(QmpClient.vserportChange("port1").and(e -> !e.path("data").path("open").asBoolean(true)),
            opened + 1, WAIT, "VSERPORT_CHANGE port1 open=false");
        Thread.sleep(THROTTLE_SPACING_MS);

        final List<JsonNode> port1 = qmp.events().stream().filter(QmpClient.vserportChange("port1")).toList();
        assertEquals(2, port1.size(), "VSERPORT_CHANGE events for port1: " + port1);
        assertEquals(true, port1.get(0).path("data").path("open").asBoolean(false), port1.get(0).toString());
        assertEquals(false, port1.get(1).path("data").path("open").asBoolean(true), port1.get(1).toString());
        for (final JsonNode e : port1) {
            assertEquals(true, e.path("timestamp").has("seconds") && e.path("timestamp").has("microseconds"),
                "event without a QMP timestamp: " + e);
        }
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }
}
