package org.vsbridge.nativetest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * chardev-change under a running transfer: the guest writes 64 MiB on port 1; after 8 MiB the host peer of
 * the old chardev (a unix server) stops reading, so the guest is held by backpressure with output queued in
 * the rings and in the old connection; then QMP moves the port's chardev to a unix client connecting to a
 * second peer. The old connection delivers what it had already accepted and closes; the new peer gets the
 * rest. Old bytes followed by new bytes must be exactly the guest's 64 MiB (its FNV-1a sum).
 */
@Timeout(value = 10, unit = TimeUnit.MINUTES) // a safety net for hung processes, never a performance bound
class ChardevChangeTest extends NativeRigTest {

    private static final long BIG = 64L << 20;
    private static final long PAUSE_AT = 8L << 20;
    private static final Duration LONG = Duration.ofMinutes(5);
    private static final ObjectMapper JSON = new ObjectMapper();


    @Test
    void changeUnderA64MiBTransferLosesNoByte() throws Exception {
        final Path oldBytes = dir.resolve("old.bin");
        final Path newBytes = dir.resolve("new.bin");
        final CountDownLatch paused = new CountDownLatch(1);
        final CountDownLatch resume = new CountDownLatch(1);
        final AtomicLong oldCount = new AtomicLong();
        final AtomicLong newCount = new AtomicLong();

        final SocketChannel oldPeer = connect(dir.resolve("p1.sock"));
        final CompletableFuture<Void> oldDone = CompletableFuture.runAsync(() ->
            drain(oldPeer, oldBytes, oldCount, paused, resume, null));

        final Path newSock = dir.resolve("new.sock");
        final ServerSocketChannel listener = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
            .bind(UnixDomainSocketAddress.of(newSock));
        final CompletableFuture<Void> newDone = CompletableFuture.runAsync(() -> {
            try (SocketChannel peer = listener.accept()) {
                // Reads until old + new make the whole transfer.
                drain(peer, newBytes, newCount, null, null, oldCount);
            } catch (final IOException e) {
                throw new RuntimeException(e);
            }
        });

        final FrontendProcess f = rig.frontend("--port", "1:tx=" + BIG + ":open");
        assertTrue(paused.await(LONG.toSeconds(), TimeUnit.SECONDS), "the old peer got its first 8 MiB");

        try (Qmp qmp = new Qmp(dir.resolve("qmp.sock"))) {
            qmp.send("{\"execute\":\"chardev-change\",\"arguments\":{\"id\":\"c1\",\"backend\":{\"type\":\"socket\","
                + "\"data\":{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"" + newSock + "\"}},"
                + "\"server\":false}}},\"id\":\"change\"}");
            // The old peer reads again: what the old connection accepted before the change is still its.
            resume.countDown();
            final JsonNode reply = qmp.reply("change");
            assertEquals("{}", reply.path("return").toString(), reply.toString());
        }

        f.assertExitsCleanly(LONG);
        oldDone.get(LONG.toSeconds(), TimeUnit.SECONDS);
        newDone.get(LONG.toSeconds(), TimeUnit.SECONDS);
        listener.close();

        final FrontendProcess.Result r = f.result(1);
        assertEquals(BIG, r.txBytes(), "bytes the guest wrote");
        assertTrue(oldCount.get() >= PAUSE_AT, "old peer bytes: " + oldCount.get());
        assertTrue(newCount.get() > 0, "the change happened mid-transfer: new peer bytes " + newCount.get());
        assertEquals(BIG, oldCount.get() + newCount.get(), "old + new peer bytes");
        final Fnv1a64 sum = new Fnv1a64();
        hash(oldBytes, sum);
        hash(newBytes, sum);
        assertEquals(r.txSum(), sum.hex(), "guest->host checksum across the change");
        // The guest sees the host side open, and at most one close/open transition for the change.
        final List<String> opens = f.linesMatching("^EVENT port_open port=1 ");
        assertTrue(opens.size() >= 1 && opens.size() <= 3, "PORT_OPEN messages for port 1: " + opens);
        assertTrue(opens.get(0).endsWith("value=1") && opens.get(opens.size() - 1).endsWith("value=1"),
            "the host side is open before and after the change: " + opens);
        rig.assertBridgeServes();
    }

    private static SocketChannel connect(final Path path) throws Exception {
        final long deadline = System.nanoTime() + NativeRig.CONNECT.toNanos();
        while (true) {
            final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                ch.connect(UnixDomainSocketAddress.of(path));
                return ch;
            } catch (final IOException e) {
                ch.close();
                if (System.nanoTime() > deadline) {
                    throw e;
                }
                Thread.sleep(50);
            }
        }
    }

    /**
     * Reads into a file until EOF, or (with {@code other}) until this and {@code other} together hold
     * {@link #BIG}; with {@code paused}, stops at {@link #PAUSE_AT} until {@code resume}.
     */
    private static void drain(final SocketChannel ch, final Path into, final AtomicLong count,
                              final CountDownLatch paused, final CountDownLatch resume, final AtomicLong other) {
        final ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
        try (FileChannel file = FileChannel.open(into, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            while (other == null || count.get() + other.get() < BIG) {
                if (paused != null && paused.getCount() > 0 && count.get() >= PAUSE_AT) {
                    paused.countDown();
                    resume.await();
                }
                buf.clear();
                if (paused != null && paused.getCount() > 0) {
                    buf.limit((int) Math.min(buf.capacity(), PAUSE_AT - count.get()));
                }
                final int n = ch.read(buf);
                if (n < 0) {
                    return;
                }
                buf.flip();
                while (buf.hasRemaining()) {
                    file.write(buf);
                }
                count.addAndGet(n);
            }
        } catch (final IOException | InterruptedException e) {
            throw new RuntimeException(e);
        } finally {
            if (paused != null) {
                paused.countDown();
            }
        }
    }

    private static void hash(final Path file, final Fnv1a64 sum) throws IOException {
        if (!Files.exists(file)) {
            return;
        }
        try (var in = Files.newInputStream(file)) {
            final byte[] b = new byte[1 << 16];
            int n;
            while ((n = in.read(b)) > 0) {
                sum.update(b, 0, n);
            }
        }
    }

    /** A minimal QMP client that can pass arguments (QmpClient sends bare commands). */
    private static final class Qmp implements AutoCloseable {
        private final SocketChannel ch;
        private final BufferedReader in;
        private final OutputStream out;

        Qmp(final Path path) throws Exception {
            ch = connect(path);
            in = new BufferedReader(new InputStreamReader(Channels.newInputStream(ch), StandardCharsets.UTF_8));
            out = Channels.newOutputStream(ch);
            in.readLine();
            send("{\"execute\":\"qmp_capabilities\",\"id\":\"caps\"}");
            reply("caps");
        }

        void send(final String line) throws IOException {
            out.write((line + "\r\n").getBytes(StandardCharsets.UTF_8));
            out.flush();
        }

        JsonNode reply(final String id) throws Exception {
            while (true) {
                final String line = CompletableFuture.supplyAsync(() -> {
                    try {
                        return in.readLine();
                    } catch (final IOException e) {
                        throw new RuntimeException(e);
                    }
                }).get(LONG.toSeconds(), TimeUnit.SECONDS);
                if (line == null) {
                    throw new IOException("QMP closed");
                }
                final JsonNode node = JSON.readTree(line);
                if (id.equals(node.path("id").asText())) {
                    return node;
                }
            }
        }

        @Override
        public void close() throws IOException {
            ch.close();
        }
    }
}
