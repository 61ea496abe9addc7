package org.vsbridge.nativetest.kit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;

/**
 * How the bridge's PortLink moves the bytes of a plain socket chardev, chosen for every bridge child of a test run
 * by the system property {@code vsb.path}: {@code direct} (the default, as users run it: the device worker writes
 * guest output to the socket and reads host input from it itself) or {@code ring} (every byte through the port's
 * rings and the chardev's event loop, as for TLS, telnet, websocket, file and pty chardevs).
 */
public enum DataPath {
    DIRECT(List.of()),
    RING(List.of("-Dvsb.directOutput=false", "-Dvsb.directInput=false"));

    private final List<String> jvmOptions;

    DataPath(final List<String> jvmOptions) {
        this.jvmOptions = jvmOptions;
    }

    /** The path of this run ({@code -Dvsb.path=ring|direct}). */
    public static DataPath current() {
        final String p = System.getProperty("vsb.path", "direct").trim();
        return switch (p) {
            case "", "direct" -> DIRECT;
            case "ring" -> RING;
            default -> throw new IllegalStateException("vsb.path=" + p + ": expected direct or ring");
        };
    }

    /** The bridge JVM options that select this path. */
    public List<String> jvmOptions() {
        return jvmOptions;
    }

    /**
     * The {@code query-vserport} entry of a socket-backed port that carried guest-to-host bytes
     * ({@code toHost}) and host-to-guest bytes ({@code fromHost}) shows this path: on the ring path no byte went
     * directly, on the direct path some did in each direction that carried any. The direct counters never exceed
     * the totals.
     */
    public void assertCounters(final JsonNode port, final boolean toHost, final boolean fromHost) {
        final String nr = "port " + port.path("nr").asText() + " on the " + this + " path: ";
        final long direct = port.path("bytes-to-host-direct").asLong(-1);
        final long directIn = port.path("bytes-from-host-direct").asLong(-1);
        assertTrue(port.has("bytes-to-host-direct") && port.has("bytes-from-host-direct"),
            () -> nr + "no direct counters in " + port);
        assertTrue(direct <= port.path("bytes-to-host").asLong(), () -> nr + "direct guest->host bytes " + port);
        assertTrue(directIn <= port.path("bytes-from-host").asLong(), () -> nr + "direct host->guest bytes " + port);
        if (this == RING) {
            assertEquals(0, direct, () -> nr + "guest->host bytes written directly: " + port);
            assertEquals(0, directIn, () -> nr + "host->guest bytes read directly: " + port);
        } else {
            if (toHost) {
                assertTrue(direct > 0, () -> nr + "no guest->host byte was written directly: " + port);
            }
            if (fromHost) {
                assertTrue(directIn > 0, () -> nr + "no host->guest byte was read directly: " + port);
            }
        }
    }
}
