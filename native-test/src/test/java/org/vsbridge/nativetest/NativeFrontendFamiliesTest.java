package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * The frontend families other than QEMU against the real bridge jar, with the native frontend's --family:
 * cloud-hypervisor / rust-vmm (per queue NUM, ADDR, BASE, CALL, KICK, ENABLE; NEED_REPLY only on the memory table;
 * SET_MEM_TABLE; no STATUS) and the virtio-loopback adapter (GET_CONFIG at realize, its private request 39 with an
 * fd, one sparse memfd of several GiB cut into ~1 GiB regions at unaligned mmap_offsets with userspace_addr ==
 * guest_phys_addr, guest buffers across region boundaries). Each carries exact bytes both ways on a unix port, a
 * tcp port and the console, and the bridge refuses none of its messages.
 */
@Tag("both-paths") // also run with -Dvsb.path=ring (native-test/pom.xml, execution ring-path)
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeFrontendFamiliesTest extends NativeRigTest {

    private static final long BYTES = 4L << 20;
    private static final long CONSOLE = 256L << 10;
    private static final Duration WAIT = Duration.ofMinutes(2);


    private FrontendProcess exchange(final String family) throws Exception {
        final HostPeer con = rig.peer(0);
        final HostPeer p1 = rig.peer(1);
        final HostPeer p2 = rig.peer(2);
        final List<CompletableFuture<HostPeer.Transfer>> in = List.of(con.receive(CONSOLE), p1.receive(BYTES),
            p2.receive(BYTES));
        final List<CompletableFuture<HostPeer.Transfer>> out = List.of(con.send(CONSOLE), p1.send(BYTES),
            p2.send(BYTES));
        final FrontendProcess f = rig.frontend("--family", family,
            "--port", "0:tx=" + CONSOLE + ":rx=" + CONSOLE,
            "--port", "1:tx=" + BYTES + ":rx=" + BYTES + ":open",
            "--port", "2:tx=" + BYTES + ":rx=" + BYTES + ":open");
        f.assertExitsCleanly(WAIT);
        for (int port = 0; port <= 2; port++) {
            final long bytes = port == 0 ? CONSOLE : BYTES;
            final FrontendProcess.Result r = f.result(port);
            assertEquals(bytes, r.txBytes(), family + " port " + port + ": bytes the guest wrote");
            assertEquals(bytes, r.rxBytes(), family + " port " + port + ": bytes the guest read");
            assertEquals(r.txSum(), HostPeer.await(in.get(port), WAIT, family + " port " + port + " guest->host").sum(),
                family + " port " + port + ": guest->host checksum");
            assertEquals(HostPeer.await(out.get(port), WAIT, family + " port " + port + " host->guest").sum(), r.rxSum(),
                family + " port " + port + ": host->guest checksum");
        }
        assertEquals("org.test.1", f.result(1).name());
        assertEquals("org.test.2", f.result(2).name());
        assertEquals(List.of(), rig.bridge.logLinesContaining("refused"), family + ": requests the bridge refused");
        for (int port = 0; port <= 2; port++) {
            // Port 0's host bytes (as many as its ring holds) are all sent before the frontend starts: with no
            // worker serving the port yet, its chardev reads them into the ring, and none is left to read directly.
            rig.assertDataPath(port, true, port != 0);
        }
        rig.assertBridgeServes();
        return f;
    }

    private static long hex(final String line, final String field) {
        final Matcher m = Pattern.compile(field + "=0x(\\p{XDigit}+)").matcher(line);
        assertTrue(m.find(), field + " in " + line);
        return Long.parseUnsignedLong(m.group(1), 16);
    }

    @Test
    void cloudHypervisorOrderCarriesDataBothWays() throws Exception {
        final FrontendProcess f = exchange("chv");
        final String features = f.awaitLine("^FEATURES ", Duration.ofSeconds(1));
        final long proto = hex(features, "protocol_acked");
        assertEquals(0, proto & (1L << 16), "cloud-hypervisor negotiates no STATUS: " + features);
        assertEquals(0, proto & (1L << 15), "nor CONFIGURE_MEM_SLOTS (SET_MEM_TABLE only): " + features);
        assertTrue((proto & (1L << 3)) != 0, "REPLY_ACK negotiated, though hardly ever asked for: " + features);
    }

    @Test
    void loopbackOneMemfdManyUnalignedRegionsAndRequest39() throws Exception {
        final FrontendProcess f = exchange("loopback");
        // Request 39 carrying an fd without STATUS: the bridge acked it and closed the fd (its peer saw EOF).
        f.awaitLine("^LOOPBACK_FD ack=0 closed=1$", Duration.ofSeconds(1));
        assertEquals(1, rig.bridge.logLinesContaining("SHARE_LOOPBACK_FD").size(), rig.bridge.logTail(40));
        final String features = f.awaitLine("^FEATURES ", Duration.ofSeconds(1));
        assertEquals(0, hex(features, "protocol_acked") & (1L << 16), "the adapter negotiates no STATUS");
        // Several regions of about 1 GiB of the one memfd, all but the first at an unaligned mmap_offset.
        final List<String> regions = f.linesMatching("^REGION ");
        assertTrue(regions.size() >= 4, "regions: " + regions);
        final List<Long> offsets = new ArrayList<>();
        for (final String r : regions) {
            offsets.add(hex(r, "mmap_offset"));
            assertEquals(hex(r, "gpa"), hex(r, "mmap_offset"), r);
            assertTrue(hex(r, "size") >= (1L << 30) - 0x100, r);
        }
        assertTrue(offsets.stream().skip(1).allMatch(o -> (o & 0xfff) != 0), "unaligned offsets: " + offsets);
        // Guest buffers that spanned two regions carried data both ways on both named ports.
        for (int port = 1; port <= 2; port++) {
            final String cross = f.awaitLine("^CROSS run=1 port=" + port + " ", Duration.ofSeconds(1));
            final Matcher m = Pattern.compile("rx_buffers=(\\d+) tx_buffers=(\\d+)").matcher(cross);
            assertTrue(m.find(), cross);
            assertTrue(Long.parseLong(m.group(1)) > 0, "host->guest buffers across regions: " + cross);
            assertTrue(Long.parseLong(m.group(2)) > 0, "guest->host buffers across regions: " + cross);
        }
    }

    /** The default family still plays QEMU: ADD_MEM_REG, STATUS and the backend request channel negotiated. */
    @Test
    void qemuFamilyNegotiatesStatusMemSlotsAndTheBackendChannel() throws Exception {
        final FrontendProcess f = exchange("qemu");
        final long proto = hex(f.awaitLine("^FEATURES ", Duration.ofSeconds(1)), "protocol_acked");
        assertEquals((1L << 16) | (1L << 15) | (1L << 5), proto & ((1L << 16) | (1L << 15) | (1L << 5)),
            "STATUS, CONFIGURE_MEM_SLOTS and BACKEND_REQ: 0x" + Long.toHexString(proto));
    }
}
