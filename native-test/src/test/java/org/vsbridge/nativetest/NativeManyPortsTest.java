package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The largest console the spec allows: max_nr_ports 511 (1024 queues), the console on port 0 and 510 generic
 * ports, each with its own unix-socket chardev, 1 MiB each way on every port at once, every byte checked by
 * pattern at the host end and by checksum at both. Queues 256..1023 cannot be named by the spec's 8-bit index in
 * SET_VRING_KICK/CALL/ERR, so the frontend uses the bridge's extension ({@code --wide-index}); one selector thread
 * plays all 511 host peers.
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class NativeManyPortsTest {

    private static final int PORTS = 511;
    private static final int BYTES = 1 << 20;
    private static final Duration WAIT = Duration.ofMinutes(5);

    @TempDir
    Path dir;
    private BridgeProcess bridge;
    private FrontendProcess frontend;

    @AfterEach
    void stop() {
        if (frontend != null) {
            frontend.close();
        }
        if (bridge != null) {
            bridge.close();
        }
    }

    @Test
    void fiveHundredElevenPortsOneMebibyteEachWay() throws Exception {
        final List<String> args = new ArrayList<>(List.of("--socket-path", dir.resolve("bridge.sock").toString(),
            "--max-ports", String.valueOf(PORTS)));
        for (int p = 0; p < PORTS; p++) {
            args.addAll(List.of("--chardev", "socket,id=c" + p + ",path=" + sock(p) + ",server=on,wait=off",
                "--device", (p == 0 ? "virtconsole" : "virtserialport") + ",chardev=c" + p + ",name=org.many." + p
                    + ",id=port" + p + ",nr=" + p));
        }
        bridge = BridgeProcess.start(dir, args);
        final Peers peers = Peers.connect(this::sock, bridge);

        final List<String> scenario = new ArrayList<>(List.of("--socket", dir.resolve("bridge.sock").toString(),
            "--wide-index", "--tx-depth", "8", "--stall-timeout", "120"));
        for (int p = 0; p < PORTS; p++) {
            scenario.addAll(List.of("--port", p + ":tx=" + BYTES + ":rx=" + BYTES + (p == 0 ? "" : ":open")));
        }
        frontend = FrontendProcess.start(dir, "frontend", scenario);
        peers.run(WAIT);
        frontend.assertExitsCleanly(WAIT);
        for (int p = 0; p < PORTS; p++) {
            final FrontendProcess.Result r = frontend.result(p);
            assertEquals(BYTES, r.txBytes(), "port " + p + " guest->host bytes");
            assertEquals(BYTES, r.rxBytes(), "port " + p + " host->guest bytes");
            assertEquals(r.txSum(), peers.receivedSum(p), "port " + p + " guest->host checksum");
            assertEquals(peers.sentSum(p), r.rxSum(), "port " + p + " host->guest checksum");
        }
        bridge.assertAlive();
    }

    private Path sock(final int port) {
        return dir.resolve("p" + port + ".sock");
    }

    /** All host peers on one selector: each writes its host-to-guest pattern and checks its guest-to-host one. */
    private static final class Peers {

        private final Selector selector;
        private final Peer[] peers;

        private Peers(final Selector selector, final Peer[] peers) {
            this.selector = selector;
            this.peers = peers;
        }

        static Peers connect(final java.util.function.IntFunction<Path> sock, final BridgeProcess bridge)
            throws IOException, InterruptedException {
            final Selector selector = Selector.open();
            final Peer[] peers = new Peer[PORTS];
            final long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            for (int p = 0; p < PORTS; p++) {
                SocketChannel ch = null;
                while (ch == null) {
                    if (!bridge.isAlive() || System.nanoTime() > deadline) {
                        throw new IOException("chardev socket " + sock.apply(p) + " does not accept connections");
                    }
                    if (Files.exists(sock.apply(p))) {
                        ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                        try {
                            ch.connect(UnixDomainSocketAddress.of(sock.apply(p)));
                        } catch (final java.net.ConnectException e) {
                            ch.close(); // bound, not yet listening
                            ch = null;
                        }
                    }
                    if (ch == null) {
                        Thread.sleep(10);
                    }
                }
                ch.configureBlocking(false);
                peers[p] = new Peer(p, ch);
                ch.register(selector, SelectionKey.OP_READ | SelectionKey.OP_WRITE, peers[p]);
            }
            return new Peers(selector, peers);
        }

        void run(final Duration timeout) throws IOException {
            final long deadline = System.nanoTime() + timeout.toNanos();
            int done = 0;
            while (done < PORTS) {
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("host peers not done within " + timeout + ": " + progress());
                }
                selector.select(1000);
                for (final SelectionKey key : selector.selectedKeys()) {
                    final Peer peer = (Peer) key.attachment();
                    final boolean wasDone = peer.done();
                    if (key.isValid() && key.isWritable()) {
                        peer.write();
                        if (peer.sent == BYTES) {
                            key.interestOps(key.interestOps() & ~SelectionKey.OP_WRITE);
                        }
                    }
                    if (key.isValid() && key.isReadable()) {
                        peer.read();
                    }
                    if (!wasDone && peer.done()) {
                        done++;
                    }
                }
                selector.selectedKeys().clear();
            }
            selector.close();
        }

        private String progress() {
            final StringBuilder b = new StringBuilder();
            for (final Peer p : peers) {
                if (!p.done()) {
                    b.append(" port ").append(p.port).append(" sent ").append(p.sent).append(" received ")
                        .append(p.received).append(';');
                }
            }
            return b.toString();
        }

        String sentSum(final int port) {
            return peers[port].sentSum.hex();
        }

        String receivedSum(final int port) {
            return peers[port].receivedSum.hex();
        }
    }

    private static final class Peer {

        private final int port;
        private final SocketChannel channel;
        private final PatternStream toGuest;
        private final PatternStream fromGuest;
        private final Fnv1a64 sentSum = new Fnv1a64();
        private final Fnv1a64 receivedSum = new Fnv1a64();
        private final byte[] out = new byte[16384];
        private final ByteBuffer outBuf = ByteBuffer.wrap(out).limit(0);
        private final byte[] in = new byte[16384];
        private final byte[] expected = new byte[16384];
        private int sent;
        private int received;

        Peer(final int port, final SocketChannel channel) {
            this.port = port;
            this.channel = channel;
            this.toGuest = PatternStream.hostToGuest(port);
            this.fromGuest = PatternStream.guestToHost(port);
        }

        boolean done() {
            return sent == BYTES && received == BYTES;
        }

        void write() throws IOException {
            while (true) {
                if (!outBuf.hasRemaining()) {
                    final int n = Math.min(out.length, BYTES - sent); // everything generated so far is sent
                    if (n == 0) {
                        return;
                    }
                    toGuest.fill(out, 0, n);
                    sentSum.update(out, 0, n);
                    outBuf.clear().limit(n);
                }
                final int w = channel.write(outBuf);
                sent += w;
                if (outBuf.hasRemaining()) {
                    return;
                }
            }
        }

        void read() throws IOException {
            final ByteBuffer buf = ByteBuffer.wrap(in);
            while (true) {
                buf.clear().limit(Math.min(in.length, Math.max(1, BYTES - received)));
                final int n = channel.read(buf);
                if (n < 0) {
                    throw new IOException("port " + port + ": the bridge closed the connection after " + received
                        + " bytes");
                }
                if (n == 0) {
                    return;
                }
                if (received + n > BYTES) {
                    throw new IOException("port " + port + ": more than " + BYTES + " bytes from the guest");
                }
                fromGuest.fill(expected, 0, n);
                for (int i = 0; i < n; i++) {
                    if (in[i] != expected[i]) {
                        throw new IOException(String.format("port %d: guest-to-host byte %d is 0x%02x, the pattern "
                            + "says 0x%02x", port, received + i, in[i] & 0xff, expected[i] & 0xff));
                    }
                }
                receivedSum.update(in, 0, n);
                received += n;
            }
        }
    }
}
