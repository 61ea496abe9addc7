package org.vsbridge.nativetest.realguest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.extension.ExtendWith;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * The checks a real Linux guest runs against a virtio-console device, shared by the bridge and
 * by QEMU's own device (which keeps the harness honest). One boot runs them all, because a boot
 * costs seconds under TCG; each test method then judges one aspect of that boot.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
@ExtendWith(PrintDiagnosticsOnFailure.class)
abstract class RealGuestSuite implements PrintDiagnosticsOnFailure.Source {
    static final long MIB = 1024 * 1024;
    static final long BULK = 64 * MIB;
    /**
     * Half the bridge's console ring (1 MiB of ring holds less than 1 MiB of stream: message headers and the wrap),
     * so that even a host peer that stalls on a loaded machine leaves the bridge nothing to drop.
     */
    static final long CONSOLE_BULK = MIB / 2;
    static final int ECHO_COUNT = 200;

    static final String P1 = PortLayout.PORT1_NAME;
    static final String P2 = PortLayout.PORT2_NAME;
    static final String CON = PortLayout.CONSOLE_TTY;

    protected RealGuestHarness harness;
    protected GuestRun main;

    private int listStep;
    private int openCloseStep;
    private int hostConnStep;
    private final int[] g2hSteps = new int[2];
    private final int[] h2gSteps = new int[2];
    private final int[] echoSteps = new int[2];
    private int conG2hStep;
    private int conH2gStep;

    abstract Backend backend();

    @BeforeAll
    void bootMainGuest() throws Exception {
        harness = RealGuestHarness.open(backend(), getClass().getSimpleName());
        final GuestPlan plan = new GuestPlan();
        listStep = plan.add(new GuestPlan.ListPorts(3, 2)).lastStep();
        // First use of port 1, so its VSERPORT_CHANGE events are the first ones of that id.
        openCloseStep = plan.add(new GuestPlan.OpenClose(P1, 1500)).lastStep();
        // A Unix socket: QEMU notices a TCP peer's close only once it reads, which it does
        // only for a port the guest has open; a Unix peer's close is a HUP it sees at once.
        hostConnStep = plan.add(new GuestPlan.HostConn(P1)).lastStep();
        g2hSteps[0] = plan.add(new GuestPlan.G2h(P1, BULK, 11, true)).lastStep();
        h2gSteps[0] = plan.add(new GuestPlan.H2g(P1, BULK, 12, true)).lastStep();
        g2hSteps[1] = plan.add(new GuestPlan.G2h(P2, BULK, 13, true)).lastStep();
        h2gSteps[1] = plan.add(new GuestPlan.H2g(P2, BULK, 14, true)).lastStep();
        echoSteps[0] = plan.add(new GuestPlan.Echo(P1, ECHO_COUNT, 64)).lastStep();
        // Larger than a page: each message spans several receive buffers of the guest.
        echoSteps[1] = plan.add(new GuestPlan.Echo(P2, 50, 5000)).lastStep();
        conG2hStep = plan.add(new GuestPlan.G2h(CON, CONSOLE_BULK, 15, true)).lastStep();
        conH2gStep = plan.add(new GuestPlan.H2g(CON, CONSOLE_BULK, 16, true)).lastStep();
        main = harness.run("main", plan, 200_000);
    }

    @AfterAll
    void closeHarness() throws Exception {
        if (harness != null) {
            harness.close();
        }
    }

    @Override
    public String diagnostics() {
        return harness == null ? "(no harness)" : harness.diagnostics();
    }

    /** The guest's result line for {@code step}, failing with the guest's last words if missing. */
    static SerialLine result(final GuestRun run, final int step) {
        final SerialLine r = run.result(step);
        assertNotNull(r, () -> run.name() + ": the guest printed no result for step " + step + " ("
            + run.plan().step(step).render() + "); last lines:\n" + tail(run));
        return r;
    }

    static String tail(final GuestRun run) {
        final List<SerialLine> lines = run.lines();
        return lines.subList(Math.max(0, lines.size() - 8), lines.size()).stream()
            .map(SerialLine::raw).collect(Collectors.joining("\n"));
    }

    static void assertOk(final SerialLine r) {
        assertTrue(r.ok(), () -> "guest reports failure: " + r.raw());
    }

    /** Guest to host: the guest's md5 and count of what it sent equal the host's of what it got. */
    static void assertGuestToHost(final GuestRun run, final int step) {
        final SerialLine r = result(run, step);
        assertOk(r);
        final GuestPattern.Sink sink = run.sink(step);
        assertEquals(r.getLong("bytes"), sink.received(), () -> "bytes the guest sent vs the host received: " + r.raw());
        assertEquals(sink.expected(), sink.received(), "host received the whole transfer");
        assertEquals(-1, sink.firstMismatch(), "offset of the first byte that differs from the pattern");
        if (!"-".equals(r.get("md5"))) {
            assertEquals(r.get("md5"), sink.md5(), "md5 guest (sent) vs host (received)");
        }
    }

    /** Host to guest: the guest's md5 and count of what it received equal the host's of what it sent. */
    static void assertHostToGuest(final GuestRun run, final int step) {
        final SerialLine r = result(run, step);
        final HostPeer.Sender sender = run.sender(step);
        assertNotNull(sender, () -> "the host never started sending (no VSB-READY?): " + r.raw());
        assertOk(r);
        assertEquals(sender.requested(), sender.sent(), "host sent everything");
        assertEquals(sender.sent(), r.getLong("bytes"), () -> "bytes the host sent vs the guest received: " + r.raw());
        assertEquals(-1, r.getLong("first_bad"), "first byte the guest saw differ from the pattern");
        if (!"-".equals(r.get("md5"))) {
            assertEquals(sender.sum(), r.get("md5"), "md5 host (sent) vs guest (received)");
        }
    }

    static void assertEcho(final GuestRun run, final int step) {
        final SerialLine r = result(run, step);
        assertOk(r);
        assertEquals(r.getLong("count"), r.getLong("good"), () -> "every reply equal: " + r.raw());
        final GuestInbound.Echo echo = run.echo(step);
        assertEquals(echo.total(), echo.echoed(), "bytes the host echoed");
    }

    @Test
    @Order(1)
    void guestSeesAllThreePortsWithTheirNames() {
        assertOk(result(main, listStep));
        final List<SerialLine> ports = main.lines("PORT");
        assertEquals(3, ports.size(), () -> "ports the guest lists: " + ports);
        for (final String name : List.of(P1, P2)) {
            assertTrue(ports.stream().anyMatch(p -> p.get("name").equals(name) && p.get("console").equals("0")
                    && p.get("node").equals("1")),
                () -> "named port " + name + " with a device node among " + ports);
        }
        assertEquals(1, ports.stream().filter(p -> p.get("console").equals("1")).count(),
            () -> "exactly one console port among " + ports);
        assertTrue(main.lines("CONSOLE").stream().anyMatch(c -> c.get("dev").equals("/dev/hvc0")),
            () -> "/dev/hvc0 can be opened: " + main.lines("CONSOLE"));
    }

    @Test
    @Order(2)
    void guestOpenThenCloseIsReportedAsVserportChange() {
        assertOk(result(main, openCloseStep));
        final List<SerialLine> marks = main.lines("MARK");
        assertTrue(marks.stream().anyMatch(m -> m.get("state").equals("open") && m.get("guest_connected").equals("1")),
            () -> "the guest's own view of the open port: " + marks);
        final List<Boolean> port1 = main.events().stream()
            .filter(e -> e.path("event").asText().equals("VSERPORT_CHANGE"))
            .map(e -> e.path("data"))
            .filter(d -> d.path("id").asText().equals(PortLayout.PORT1_ID))
            .map(d -> d.path("open").asBoolean())
            .toList();
        assertTrue(port1.size() >= 2, () -> "VSERPORT_CHANGE events for " + PortLayout.PORT1_ID + ": " + main.events());
        assertEquals(List.of(true, false), port1.subList(0, 2), "open then close of " + PortLayout.PORT1_ID);
    }

    @Test
    @Order(3)
    void hostConnectAndDisconnectReachTheGuest() {
        final SerialLine r = result(main, hostConnStep);
        assertOk(r);
        assertEquals("yes", r.get("read_eof"), () -> "a read with the host side closed returns EOF: " + r.raw());
        assertTrue(main.hostErrors().isEmpty(), () -> "host errors: " + main.hostErrors());
    }

    @Test
    @Order(4)
    void bulkGuestToHostOnBothNamedPorts() {
        assertGuestToHost(main, g2hSteps[0]);
        assertGuestToHost(main, g2hSteps[1]);
    }

    @Test
    @Order(5)
    void bulkHostToGuestOnBothNamedPorts() {
        assertHostToGuest(main, h2gSteps[0]);
        assertHostToGuest(main, h2gSteps[1]);
    }

    @Test
    @Order(6)
    void echoRoundTripsComeBackIntact() {
        assertEcho(main, echoSteps[0]);
        assertEcho(main, echoSteps[1]);
    }

    /**
     * Whether the device may drop console output the host side cannot take at once: QEMU's virtconsole does (its
     * chardev write would block, the bytes are gone); the bridge must not.
     */
    boolean consoleMayDropOutput() {
        return false;
    }

    @Test
    @Order(7)
    void consolePortCarriesDataBothWaysInRawMode() {
        assertHostToGuest(main, conH2gStep);
        if (!consoleMayDropOutput()) {
            assertGuestToHost(main, conG2hStep);
            return;
        }
        // What such a device still guarantees: the guest wrote it all, and every byte that arrived is the
        // pattern's, in order; the loss is a figure, not a failure.
        final SerialLine r = result(main, conG2hStep);
        assertOk(r);
        final long lost = main.sink(conG2hStep).skippedIfInOrder(r.getLong("bytes"));
        System.out.printf("%s: console guest->host: %d of %d bytes arrived, in order; %d lost (%.2f %%)%n",
            backend(), r.getLong("bytes") - lost, r.getLong("bytes"), lost, 100.0 * lost / r.getLong("bytes"));
    }

    @Test
    @Order(8)
    void guestFinishedEveryCheckAndNothingStrayArrived() {
        final SerialLine done = main.doneLine();
        assertNotNull(done, () -> "the guest never printed VSB-DONE; last lines:\n" + tail(main));
        assertEquals("0", done.get("failed"), done.raw());
        for (final String target : List.of(P1, P2, CON)) {
            assertEquals(0, harness.peer(target).unexpectedBytes(), "bytes no check expected on " + target);
        }
        final List<JsonNode> shutdown = main.events().stream()
            .filter(e -> e.path("event").asText().equals("SHUTDOWN") && backend().isBridge()).toList();
        assertTrue(shutdown.isEmpty(), () -> "the bridge must not shut down with a VM: " + shutdown);
    }
}
