package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * INFLIGHT_SHMFD across {@code kill -9} of the bridge: the frontend (as QEMU does for a backend it reconnects to)
 * keeps the inflight buffer and the guest's rings, reconnects to a new bridge process on the same socket and hands
 * the buffer back; the guest's transmit stream must reach the host peers with every byte exactly once. The peers
 * read each connection to its end (what the dead bridge had written is still in the socket) and then connect to
 * the new bridge's chardev; every byte is checked against the pattern, so a lost or repeated byte fails at once.
 * The peers read slower than the guest writes and stop reading just before each kill, so kills find transmit
 * buffers the bridge delivered in part.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeInflightTest {

    private static final long BYTES = 48L << 20;
    private static final int KILLS = 3;
    private static final Duration WAIT = Duration.ofMinutes(3);
    /** Host to guest, sent once the last bridge runs: the guest's open ports must be known to it. */
    private static final int TO_GUEST = 1 << 20;

    @TempDir(cleanup = org.junit.jupiter.api.io.CleanupMode.ON_SUCCESS)
    Path dir;
    private final List<BridgeProcess> bridges = new ArrayList<>();
    private FrontendProcess frontend;
    private final List<Receiver> receivers = new ArrayList<>();
    private long lastKill;

    @AfterEach
    void stop() {
        receivers.forEach(Receiver::close);
        if (frontend != null) {
            frontend.close();
        }
        bridges.forEach(BridgeProcess::close);
    }

    private List<String> bridgeArgs(final int tcpPort) {
        return List.of("--socket-path", dir.resolve("bridge.sock").toString(),
            "--chardev", "socket,id=c1,path=" + dir.resolve("p1.sock") + ",server=on,wait=off",
            "--chardev", "socket,id=c2,host=127.0.0.1,port=" + tcpPort + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c1,name=org.test.1,id=port1,nr=1",
            "--device", "virtserialport,chardev=c2,name=org.test.2,id=port2,nr=2");
    }

    private BridgeProcess startBridge(final int tcpPort) throws IOException {
        final Path own = Files.createDirectories(dir.resolve("bridge-" + (bridges.size() + 1)));
        final BridgeProcess b = BridgeProcess.start(own, bridgeArgs(tcpPort));
        bridges.add(b);
        return b;
    }

    @Test
    void guestOutputExactlyOnceAcrossKill9() throws Exception {
        final int tcpPort;
        try (ServerSocket s = new ServerSocket(0)) {
            tcpPort = s.getLocalPort();
        }
        startBridge(tcpPort);
        final Receiver r1 = new Receiver(1, UnixDomainSocketAddress.of(dir.resolve("p1.sock")),
            StandardProtocolFamily.UNIX);
        final Receiver r2 = new Receiver(2, new InetSocketAddress("127.0.0.1", tcpPort), StandardProtocolFamily.INET);
        receivers.addAll(List.of(r1, r2));
        final CompletableFuture<String> sum1 = r1.start();
        final CompletableFuture<String> sum2 = r2.start();

        frontend = FrontendProcess.start(dir, "frontend", List.of("--socket", dir.resolve("bridge.sock").toString(),
            "--inflight", "--reconnect", "--stall-timeout", "120",
            "--port", "1:tx=" + BYTES + ":rx=" + TO_GUEST + ":open",
            "--port", "2:tx=" + BYTES + ":rx=" + TO_GUEST + ":open"));

        for (int k = 1; k <= KILLS; k++) {
            final long mark = k * BYTES / (KILLS + 1);
            final long deadline = System.nanoTime() + WAIT.toNanos();
            while (r1.received() < mark || r2.received() < mark) {
                assertFalse(sum1.isDone() && sum1.isCompletedExceptionally(), () -> "port 1 failed: " + sum1);
                assertFalse(sum2.isDone() && sum2.isCompletedExceptionally(), () -> "port 2 failed: " + sum2);
                assertTrue(System.nanoTime() < deadline, () -> "no progress to " + mark + " bytes: port 1 at "
                    + r1.received() + ", port 2 at " + r2.received() + "\n" + frontend.transcript());
                Thread.sleep(2);
            }
            // The kill lands while the peers have stopped reading: the sockets are full and the bridge waits for
            // them, holding transmit buffers it delivered in part. (A kill in the instant between a write
            // returning and its record would repeat that write: no process can close that window, so the test
            // does not aim at it.)
            r1.pause(true);
            r2.pause(true);
            Thread.sleep(300);
            bridges.get(bridges.size() - 1).kill();
            lastKill = System.nanoTime();
            r1.pause(false);
            r2.pause(false);
            startBridge(tcpPort);
        }
        // The guest opened its ports long ago, for the first bridge; the last one took that over from the
        // inflight buffer, so what the host sends now reaches the guest (the frontend checks the pattern).
        for (final Receiver r : List.of(r1, r2)) {
            final long deadline = System.nanoTime() + WAIT.toNanos();
            while (r.connectedAt() < lastKill) { // a connection made after the last kill is to the last bridge
                assertTrue(System.nanoTime() < deadline, "port " + r.port + " never reached the last bridge");
                Thread.sleep(2);
            }
            r.sendToGuest(TO_GUEST);
        }

        try {
            frontend.assertExitsCleanly(WAIT);
        } catch (final AssertionError e) {
            // A peer that found a wrong byte stops reading, and the frontend then stalls: say what the peers saw.
            throw new AssertionError("port 1 peer: " + peerState(sum1) + "; port 2 peer: " + peerState(sum2) + "\n"
                + e.getMessage(), e);
        }
        assertEquals(frontend.result(1).txSum(), await(sum1, "port 1"), "port 1: guest->host checksum");
        assertEquals(frontend.result(2).txSum(), await(sum2, "port 2"), "port 2: guest->host checksum");
        assertEquals(BYTES, frontend.result(1).txBytes());
        assertEquals(TO_GUEST, frontend.result(1).rxBytes());
        assertEquals(TO_GUEST, frontend.result(2).rxBytes());
        assertTrue(bridges.get(bridges.size() - 1).logLinesContaining("device state from a previous backend").stream()
            .anyMatch(l -> l.contains("2 open")), "the last bridge took over the guest's open ports");
        assertEquals(KILLS, frontend.transcript().lines().filter(l -> l.startsWith("RECONNECTED")).count(),
            () -> "the frontend reconnects once per kill:\n" + frontend.transcript());
        for (int b = 1; b < bridges.size(); b++) {
            // Each new process found the dead one's state: the transmitqs of ports 1 and 2 are queues 5 and 7.
            final List<String> found = bridges.get(b).logLinesContaining("inflight buffer from a previous backend");
            found.forEach(l -> System.out.println("[inflight] " + l));
            for (final String queue : List.of("queue 5:", "queue 7:")) {
                assertTrue(found.stream().anyMatch(l -> l.contains(queue)), () -> "bridge " + (bridges.size())
                    + " did not resume " + queue + " from the inflight buffer: " + found);
            }
        }
        System.out.println("[inflight] host connections: port 1 " + r1.connections() + ", port 2 "
            + r2.connections());
        bridges.get(bridges.size() - 1).assertAlive();
    }

    private static String peerState(final CompletableFuture<String> f) {
        if (!f.isCompletedExceptionally()) {
            return f.isDone() ? "all bytes received" : "still receiving";
        }
        try {
            f.join();
            return "?";
        } catch (final java.util.concurrent.CompletionException e) {
            return String.valueOf(e.getCause().getMessage());
        }
    }

    private static String await(final CompletableFuture<String> f, final String what) throws Exception {
        try {
            return f.get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
        } catch (final java.util.concurrent.ExecutionException e) {
            throw new AssertionError(what + ": " + e.getCause().getMessage(), e.getCause());
        }
    }

    /** A host peer that reads each connection to EOF, reconnects, and checks the one guest-to-host stream. */
    private static final class Receiver implements AutoCloseable {

        private final int port;
        private final SocketAddress address;
        private final StandardProtocolFamily family;
        private final PatternStream pattern;
        private final Fnv1a64 sum = new Fnv1a64();
        private volatile long received;
        private volatile int connections;
        private volatile boolean closed;
        private volatile SocketChannel channel;
        private volatile long connectedAt;
        private volatile boolean paused;

        Receiver(final int port, final SocketAddress address, final StandardProtocolFamily family) {
            this.port = port;
            this.address = address;
            this.family = family;
            this.pattern = PatternStream.guestToHost(port);
        }

        long received() {
            return received;
        }

        /** Writes the host-to-guest pattern on the current connection (from its own thread). */
        void sendToGuest(final int bytes) {
            final SocketChannel ch = channel;
            final Thread t = new Thread(() -> {
                final byte[] data = new byte[bytes];
                PatternStream.hostToGuest(port).fill(data, 0, bytes);
                try {
                    final ByteBuffer b = ByteBuffer.wrap(data);
                    while (b.hasRemaining()) {
                        ch.write(b);
                    }
                } catch (final IOException e) {
                    // the frontend's rx check reports what did not arrive
                }
            }, "sender-" + port);
            t.setDaemon(true);
            t.start();
        }

        int connections() {
            return connections;
        }

        long connectedAt() {
            return connectedAt;
        }

        /** Stop (or resume) reading, so that the bridge's socket towards this peer fills up. */
        void pause(final boolean on) {
            paused = on;
        }

        CompletableFuture<String> start() {
            final CompletableFuture<String> done = new CompletableFuture<>();
            final Thread t = new Thread(() -> {
                try {
                    run(done);
                } catch (final Throwable e) {
                    if (!closed) {
                        done.completeExceptionally(e);
                    }
                }
            }, "receiver-" + port);
            t.setDaemon(true);
            t.start();
            return done;
        }

        /**
         * Reads every connection to its end and connects again, for as long as the test runs (a kill may come
         * after the last guest byte, and the host-to-guest phase needs the connection to the last bridge).
         */
        private void run(final CompletableFuture<String> done) throws IOException, InterruptedException {
            // Small reads with pauses: the peer is slower than the guest, so the socket is full most of the time and
            // a kill often finds a transmit buffer delivered in part (the case that would repeat bytes).
            final byte[] chunk = new byte[16384];
            final byte[] expected = new byte[16384];
            final ByteBuffer buf = ByteBuffer.wrap(chunk);
            boolean first = true;
            while (!closed) {
                if (!first) {
                    // Come back late: the new bridge starts its rings before its peer is there, and must hold the
                    // guest's output for it (the default policy would drop output while no peer is connected).
                    Thread.sleep(1500);
                }
                first = false;
                final SocketChannel ch = connect();
                channel = ch;
                connectedAt = System.nanoTime();
                connections++;
                try (ch) {
                    while (!closed) {
                        while (paused && !closed) {
                            Thread.sleep(1);
                        }
                        buf.clear();
                        final int n;
                        try {
                            n = ch.read(buf);
                        } catch (final IOException e) {
                            break; // a reset: the bridge died; what it wrote before is all read
                        }
                        if (n < 0) {
                            break;
                        }
                        if (received + n > BYTES) {
                            throw new IOException("port " + port + ": more than the " + BYTES + " bytes the guest sent");
                        }
                        pattern.fill(expected, 0, n);
                        for (int i = 0; i < n; i++) {
                            if (chunk[i] != expected[i]) {
                                throw new IOException(String.format("port %d: guest-to-host byte %d (connection %d) "
                                    + "is 0x%02x, the pattern says 0x%02x; %s", port, received + i, connections,
                                    chunk[i] & 0xff, expected[i] & 0xff, whereFrom(chunk, i, n, received + i)));
                            }
                        }
                        sum.update(chunk, 0, n);
                        received += n;
                        if (received == BYTES) {
                            done.complete(sum.hex());
                        }
                        java.util.concurrent.locks.LockSupport.parkNanos(100_000);
                    }
                }
            }
        }

        /** Which part of the stream the bytes at {@code at} are: a repeat (duplicate) or a jump ahead (loss). */
        private String whereFrom(final byte[] chunk, final int at, final int n, final long offset) {
            final int len = Math.min(64, n - at);
            if (len < 16) {
                return "too few bytes to tell where they come from";
            }
            final byte[] stream = new byte[(int) BYTES];
            PatternStream.guestToHost(port).fill(stream, 0, stream.length);
            outer:
            for (int k = 0; k + len <= stream.length; k++) {
                for (int j = 0; j < len; j++) {
                    if (stream[k + j] != chunk[at + j]) {
                        continue outer;
                    }
                }
                return "they are the stream's bytes from offset " + k + " (" + (k < offset ? "repeated: "
                    + (offset - k) + " bytes again" : "ahead: " + (k - offset) + " bytes lost") + ")";
            }
            return "they are nowhere in the stream";
        }

        private SocketChannel connect() throws IOException, InterruptedException {
            final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (true) {
                final SocketChannel ch = SocketChannel.open(family);
                try {
                    ch.connect(address);
                    return ch;
                } catch (final IOException e) {
                    ch.close();
                    if (closed || System.nanoTime() > deadline) {
                        throw new IOException("port " + port + ": no chardev to connect to: " + e.getMessage(), e);
                    }
                    Thread.sleep(5);
                }
            }
        }

        @Override
        public void close() {
            closed = true;
            final SocketChannel ch = channel;
            if (ch != null) {
                try {
                    ch.close();
                } catch (final IOException e) {
                    // closing anyway
                }
            }
        }
    }
}
