package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.vsbridge.nativetest.kit.HostPeer;
import org.vsbridge.nativetest.kit.QmpClient;

/**
 * What a guest does with the device besides bulk data, played by the native frontend against the real bridge jar:
 * a driver without MULTIPORT (one console, size through a config change on the backend request channel), ports
 * hot-added and removed over QMP while the guest runs, RESIZE, emergency writes, and a guest reboot.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeDeviceBehaviourTest {

    private static final long MIB = 1L << 20;
    private static final Duration WAIT = Duration.ofMinutes(2);
    private static final Duration QMP = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    private NativeRig rig;

    @AfterEach
    void stop() {
        if (rig != null) {
            rig.close();
        }
    }

    /** The virtio features the guest acked, from the frontend's FEATURES line. */
    private static long acked(final String features) {
        final Matcher m = Pattern.compile(" acked=0x(\\p{XDigit}+)").matcher(features);
        assertTrue(m.find(), features);
        return Long.parseUnsignedLong(m.group(1), 16);
    }

    private static void assertReturns(final JsonNode reply, final String what) {
        assertTrue(reply.has("return"), what + ": " + reply);
    }

    /** Sends {@code status} and returns the RESULT of {@code port} printed after it. */
    private static FrontendProcess.Result status(final FrontendProcess f, final int port) throws Exception {
        final int mark = f.mark();
        f.command("status");
        f.awaitLine("^STATUS$", mark, WAIT);
        return f.result(port);
    }

    /** {@code bytes} each way on {@code port} of a --stdin frontend; the guest's sums must match the peer's. */
    private static void exchange(final FrontendProcess f, final HostPeer peer, final int port, final long bytes)
        throws Exception {
        final CompletableFuture<HostPeer.Transfer> in = peer.receive(bytes);
        final CompletableFuture<HostPeer.Transfer> out = peer.send(bytes);
        final int mark = f.mark();
        f.command("tx " + port + " " + bytes);
        f.command("rx " + port + " " + bytes);
        f.command("wait");
        f.awaitLine("^IDLE$", mark, WAIT);
        final HostPeer.Transfer got = HostPeer.await(in, WAIT, "port " + port + " guest->host");
        final HostPeer.Transfer sent = HostPeer.await(out, WAIT, "port " + port + " host->guest");
        final FrontendProcess.Result r = status(f, port);
        assertEquals(r.txSum(), got.sum(), "port " + port + ": guest->host checksum");
        assertEquals(sent.sum(), r.rxSum(), "port " + port + ": host->guest checksum");
        assertEquals(0, r.rxDiscarded(), "port " + port + ": bytes the guest discarded");
    }

    @Test
    void withoutMultiportTheConsoleCarriesDataAndLearnsItsSizeFromAConfigChange() throws Exception {
        rig = NativeRig.start(dir);
        final HostPeer con = rig.peer(0);
        final FrontendProcess f = rig.frontend("--stdin", "--no-multiport", "--port", "0");
        f.awaitLine("^READY$", WAIT);
        final String features = f.awaitLine("^FEATURES ", WAIT);
        assertEquals(0, acked(features) & (1L << 1), "MULTIPORT (bit 1) not acked: " + features);
        exchange(f, con, 0, MIB);
        // No control queues: the size comes as CONFIG_CHANGE_MSG on the backend request channel, and the driver
        // reads cols and rows from config space.
        final int mark = f.mark();
        assertReturns(rig.qmp().execute("vserport-resize", Map.of("id", "con0", "cols", 120, "rows", 40), QMP),
            "vserport-resize");
        f.awaitLine("^EVENT config_change cols=120 rows=40$", mark, WAIT);
        assertEquals(List.of(), f.linesMatching("^EVENT (port_add|resize) "), "no control messages");
        exchange(f, con, 0, 64 * 1024);
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }

    @Test
    void aPortHotAddedWhileTheGuestRunsCarriesDataAndIsRemovedAndAddedAgain() throws Exception {
        rig = NativeRig.start(dir, List.of("--chardev", "socket,id=c3,path=" + dir.resolve("p3.sock")
            + ",server=on,wait=off", "--max-ports", "4"));
        final QmpClient qmp = rig.qmp();
        final HostPeer p3 = rig.unixPeer("p3.sock", 3);
        final FrontendProcess f = rig.frontend("--stdin", "--port", "1");
        f.awaitLine("^READY$", WAIT);
        f.awaitLine("^NAME port=1 org\\.test\\.1$", WAIT);
        for (int round = 1; round <= 2; round++) {
            final int mark = f.mark();
            final int events = qmp.events().size();
            assertReturns(qmp.execute("device_add", Map.of("driver", "virtserialport", "chardev", "c3",
                "name", "org.test.3", "id", "port3"), QMP), "device_add");
            // The running guest sets the port up: rx buffers, PORT_READY, its name, the host side open.
            f.awaitLine("^EVENT port_add port=3$", mark, WAIT);
            f.awaitLine("^NAME port=3 org\\.test\\.3$", mark, WAIT);
            f.awaitLine("^EVENT port_open port=3 value=1$", mark, WAIT);
            f.command("open 3");
            qmp.awaitEvent(QmpClient.vserportChange("port3", true), events, WAIT, "VSERPORT_CHANGE port3 open");
            exchange(f, p3, 3, MIB);
            assertEquals(round * MIB, status(f, 3).txBytes(), "round " + round);

            assertReturns(qmp.execute("device_del", Map.of("id", "port3"), QMP), "device_del");
            f.awaitLine("^EVENT port_remove port=3$", mark, WAIT);
            qmp.awaitEvent(e -> "DEVICE_DELETED".equals(e.path("event").asText())
                && "port3".equals(e.path("data").path("device").asText()), events, WAIT, "DEVICE_DELETED port3");
        }
        // Port 1 was there all along and still works.
        final HostPeer p1 = rig.peer(1);
        f.command("open 1");
        exchange(f, p1, 1, MIB);
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }

    @ParameterizedTest(name = "bridge {0}: RESIZE payload {1}, {2}")
    @CsvSource({"--resize-order rows-cols, 40, 100", "--resize-order cols-rows, 100, 40"})
    void vserportResizeReachesTheGuestAsResize(final String bridgeOptions, final int first, final int second)
        throws Exception {
        rig = NativeRig.start(dir, List.of(bridgeOptions.split(" ")));
        final FrontendProcess f = rig.frontend("--stdin", "--port", "0");
        f.awaitLine("^EVENT console_port port=0$", WAIT);
        final int mark = f.mark();
        assertReturns(rig.qmp().execute("vserport-resize", Map.of("id", "con0", "cols", 100, "rows", 40), QMP),
            "vserport-resize");
        f.awaitLine("^EVENT resize port=0 first=" + first + " second=" + second + "$", mark, WAIT);
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }

    @ParameterizedTest(name = "emergency writes to port {0} (bridge options: {1})")
    @CsvSource({"0, ''", "2, --emergency-chardev c2"})
    void emergencyWritesReachTheHostPeer(final int port, final String bridgeOptions) throws Exception {
        rig = NativeRig.start(dir, bridgeOptions.isEmpty() ? List.of() : List.of(bridgeOptions.split(" ")));
        final HostPeer peer = rig.peer(port);
        final long bytes = 300;
        final CompletableFuture<HostPeer.Transfer> in = peer.receive(bytes);
        final FrontendProcess f = rig.frontend("--stdin", "--emerg-write", "--port", String.valueOf(port));
        f.awaitLine("^READY$", WAIT);
        final String features = f.awaitLine("^FEATURES ", WAIT);
        assertEquals(1L << 2, acked(features) & (1L << 2), "EMERG_WRITE (bit 2) acked: " + features);
        f.command("emerg " + bytes + " " + port);
        f.awaitLine("^EMERG port=" + port + " bytes=" + bytes + "$", WAIT);
        // Every byte went out by SET_CONFIG of emerg_wr, one at a time, and arrives in order, pattern-checked.
        final HostPeer.Transfer got = HostPeer.await(in, WAIT, "emergency bytes at the port " + port + " peer");
        assertEquals(status(f, port).txSum(), got.sum(), "emergency bytes checksum");
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        rig.assertBridgeServes();
    }

    @ParameterizedTest(name = "reboot with frontend {0}: reset by {1}")
    @CsvSource({"--family qemu, SET_STATUS", "--family qemu --proto-mask 0x2229, RESET_DEVICE",
        "--family chv, RESET_OWNER", "--family loopback, RESET_OWNER"})
    void rebootClosesOpenPortsAndDataFlowsAgain(final String frontendOptions, final String reset) throws Exception {
        rig = NativeRig.start(dir);
        final QmpClient qmp = rig.qmp();
        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final List<String> args = new ArrayList<>(List.of(frontendOptions.split(" ")));
        args.addAll(List.of("--stdin", "--port", "1:open", "--port", "2:open"));
        final FrontendProcess f = rig.frontend(args.toArray(new String[0]));
        f.awaitLine("^READY$", WAIT);
        qmp.awaitEvent(QmpClient.vserportChange("port1", true), 0, WAIT, "VSERPORT_CHANGE port1 open");
        qmp.awaitEvent(QmpClient.vserportChange("port2", true), 0, WAIT, "VSERPORT_CHANGE port2 open");
        exchange(f, p1, 1, MIB);
        exchange(f, p2, 2, MIB);

        final int mark = f.mark();
        final int events = qmp.events().size();
        f.command("reboot");
        f.awaitLine("^REBOOTED run=1 reset=" + reset + "$", mark, WAIT);
        // The ports the old guest had open are closed (QEMU's guest_reset) ...
        final int closed1 = qmp.awaitEvent(QmpClient.vserportChange("port1", false), events, WAIT,
            "VSERPORT_CHANGE port1 closed");
        final int closed2 = qmp.awaitEvent(QmpClient.vserportChange("port2", false), events, WAIT,
            "VSERPORT_CHANGE port2 closed");
        // ... the new driver is given every port again, and opens them.
        f.awaitLine("^NAME port=1 org\\.test\\.1$", mark, WAIT);
        f.awaitLine("^NAME port=2 org\\.test\\.2$", mark, WAIT);
        f.awaitLine("^READY$", mark, WAIT);
        f.command("open 1");
        f.command("open 2");
        qmp.awaitEvent(QmpClient.vserportChange("port1", true), closed1 + 1, WAIT, "VSERPORT_CHANGE port1 open again");
        qmp.awaitEvent(QmpClient.vserportChange("port2", true), closed2 + 1, WAIT, "VSERPORT_CHANGE port2 open again");
        exchange(f, p1, 1, MIB);
        exchange(f, p2, 2, MIB);
        assertEquals(2 * MIB, status(f, 1).rxBytes());
        f.command("quit");
        f.assertExitsCleanly(WAIT);
        assertEquals(List.of(), rig.bridge.logLinesContaining("refused"), "requests the bridge refused");
        rig.assertBridgeServes();
    }
}
