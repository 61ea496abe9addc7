package org.vsbridge.chardev;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vsbridge.chardev.ByteBufs.on;
import static org.vsbridge.chardev.ByteBufs.run;

import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.io.InputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chardev peers and files that misbehave: socket peers that connect and vanish in a loop, a peer that stops
 * reading (backpressure, bounded buffering), a file on a full filesystem (a 64 KiB tmpfs when this process may
 * mount one, else /dev/full), a FIFO nobody reads. Each time: a log line where something was lost, no
 * exception, no leaked socket, and the chardev serves the next peer.
 */
class ChardevFaultTest {

    /** Held here: the logging framework keeps loggers only weakly, and a collected one loses the handler. */
    private static final Logger CHARDEV_LOG = Logger.getLogger("org.vsbridge.chardev");

    private static EventLoopGroup group;
    private static ChardevFactory factory;

    @TempDir
    Path dir;

    private final List<String> log = new ArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(final LogRecord r) {
            String m = r.getMessage();
            final Object[] p = r.getParameters();
            for (int i = 0; p != null && i < p.length; i++) {
                m = m.replace("{" + i + "}", String.valueOf(p[i]));
            }
            synchronized (log) {
                log.add(r.getLevel() + " " + m.replace("''", "'"));
            }
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeAll
    static void start() {
        group = Transports.newEventLoopGroup(1, "test-faults");
        factory = new ChardevFactory(group);
    }

    @AfterAll
    static void stop() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    @BeforeEach
    void logs() {
        CHARDEV_LOG.addHandler(handler);
    }

    @AfterEach
    void noLogs() {
        CHARDEV_LOG.removeHandler(handler);
    }

    private String awaitLog(final String... needles) {
        return await("a log line with " + List.of(needles)).atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
            .pollInterval(Duration.ofMillis(10)).until(() -> {
                synchronized (log) {
                    return log.stream().filter(l -> Stream.of(needles).allMatch(l::contains)).findFirst()
                        .orElse(null);
                }
            }, Objects::nonNull);
    }

    private static Chardev create(final String spec) throws ChardevException {
        return factory.create(ChardevOptions.parse(spec));
    }

    private static RecordingFrontend attach(final Chardev c) throws Exception {
        final RecordingFrontend fe = new RecordingFrontend(c);
        run(c, () -> c.attach(fe));
        return fe;
    }

    private static long sockets() throws IOException {
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            return s.filter(p -> {
                try {
                    return Files.readSymbolicLink(p).toString().startsWith("socket:");
                } catch (final IOException e) {
                    return false;
                }
            }).count();
        }
    }

    private SocketChannel peer(final Path path) throws IOException {
        final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(path));
        return ch;
    }

    @Test
    void peersThatConnectAndVanishInALoop() throws Exception {
        final Path path = dir.resolve("s.sock");
        final Chardev c = create("socket,id=s,path=" + path + ",server=on,wait=off");
        try {
            final RecordingFrontend fe = attach(c);
            final long before = sockets();
            for (int i = 0; i < 200; i++) {
                try (SocketChannel p = peer(path)) {
                    if (i % 3 == 0) {
                        p.write(ByteBuffer.wrap(("hello " + i).getBytes()));
                    }
                    if (i % 5 == 0) {
                        on(c, () -> c.write(Unpooled.copiedBuffer(new byte[4096]))); // to a peer that is leaving
                    }
                } // gone, with or without reading
            }
            // The chardev is back to listening: the next peer gets a working connection both ways.
            try (SocketChannel p = peer(path)) {
                await("a peer accepted").atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
                    .pollInterval(Duration.ofMillis(5))
                    .until(() -> c.isOpen() && !c.filename().startsWith("disconnected"));
                p.write(ByteBuffer.wrap("last".getBytes()));
                // A peer of the loop may still sit in the backlog (closed, its bytes unread): the chardev takes it
                // first and reads its "hello" before it reaches this one. Once "last" is in, this is the peer.
                // (Each takeInput waits for more input, or fails.)
                String in = "";
                while (!in.endsWith("last")) {
                    in += fe.takeInput(1);
                }
                assertTrue(on(c, () -> c.write(Unpooled.copiedBuffer("back".getBytes()))));
                final ByteBuffer got = ByteBuffer.allocate(4);
                while (got.hasRemaining()) {
                    assertTrue(p.read(got) >= 0);
                }
                assertEquals("back", new String(got.array()));
            }
            await("no accepted socket left open (" + before + " before)")
                .atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S)).pollInterval(Duration.ofMillis(10))
                .until(ChardevFaultTest::sockets, n -> n <= before);
        } finally {
            c.close();
        }
    }

    @Test
    void aPeerThatStopsReadingGetsBackpressureNotUnboundedBuffering() throws Exception {
        final Path path = dir.resolve("slow.sock");
        final Chardev c = create("socket,id=slow,path=" + path + ",server=on,wait=off");
        try (SocketChannel p = peer(path)) {
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            final byte[] chunk = new byte[64 * 1024];
            final Random random = new Random(5);
            final java.io.ByteArrayOutputStream sent = new java.io.ByteArrayOutputStream();
            long accepted = 0;
            boolean full = false;
            // The peer reads nothing: the chardev must say "no more" after a bounded amount.
            while (!full) {
                random.nextBytes(chunk);
                sent.write(chunk);
                full = !on(c, () -> c.write(Unpooled.copiedBuffer(chunk)));
                accepted += chunk.length;
                assertTrue(accepted <= 64L << 20, "still accepting after " + accepted + " bytes: unbounded buffering");
            }
            run(c, () -> { }); // a writable() the loop had already queued comes before this
            assertFalse(fe.drainEvents().contains("writable"));
            // The peer wakes up and reads everything: writable() follows and no accepted byte is missing.
            final byte[] expected = sent.toByteArray();
            final ByteBuffer got = ByteBuffer.allocate(expected.length);
            while (got.hasRemaining()) {
                assertTrue(p.read(got) >= 0);
            }
            assertArrayEquals(expected, got.array());
            fe.expect("writable");
        } finally {
            c.close();
        }
    }

    /** A 64 KiB tmpfs if this process may mount one (root in CI), else null. */
    private Path smallTmpfs() throws Exception {
        final Path mnt = dir.resolve("full");
        Files.createDirectories(mnt);
        final Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt.toString())
            .redirectErrorStream(true).start();
        return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0 ? mnt : null;
    }

    private static void unmount(final Path mnt) throws Exception {
        new ProcessBuilder("umount", mnt.toString()).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
    }

    @Test
    void fileOnAFullFilesystemLogsOnceAndKeepsServing() throws Exception {
        final Path mnt = smallTmpfs();
        final Path file = mnt != null ? mnt.resolve("out") : Path.of("/dev/full");
        final Chardev c = create("file,id=f,path=" + file);
        final Chardev other = create("ringbuf,id=r,size=1024");
        try {
            attach(c).expect("opened");
            final byte[] chunk = new byte[16 * 1024];
            for (int i = 0; i < 16; i++) { // 256 KiB into at most 64 KiB
                assertTrue(on(c, () -> c.write(Unpooled.copiedBuffer(chunk))), "a file chardev never pushes back");
            }
            assertTrue(awaitLog("WARNING", "chardev 'f'", "failed", "dropped").contains("No space left on device"),
                "the reason is logged");
            synchronized (log) {
                assertEquals(1, log.stream().filter(l -> l.contains("chardev 'f'") && l.contains("failed")).count(),
                    "logged once, not per write: " + log);
            }
            assertTrue(c.isOpen(), "the chardev stays (QEMU drops the output too)");
            assertTrue(on(other, () -> other.write(Unpooled.copiedBuffer("fine".getBytes()))), "others unaffected");
            if (mnt != null) {
                assertTrue(Files.size(file) <= 64 * 1024);
            }
        } finally {
            c.close();
            other.close();
            if (mnt != null) {
                unmount(mnt);
            }
        }
    }

    @Test
    void fifoWithoutAReaderFillsThenHoldsThenDrains() throws Exception {
        final Path fifo = dir.resolve("fifo");
        for (final String suffix : new String[] {".in", ".out"}) {
            assertEquals(0, new ProcessBuilder("mkfifo", fifo + suffix).inheritIO().start().waitFor());
        }
        // Opening must not wait for a reader (QEMU opens pipes read-write), so this returns at once.
        final Chardev c = create("pipe,id=p,path=" + fifo);
        try {
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            final byte[] chunk = new byte[8192];
            final Random random = new Random(9);
            final java.io.ByteArrayOutputStream sent = new java.io.ByteArrayOutputStream();
            boolean full = false;
            while (!full) {
                random.nextBytes(chunk);
                sent.write(chunk);
                full = !on(c, () -> c.write(Unpooled.copiedBuffer(chunk)));
                assertTrue(sent.size() <= 16 << 20, "no backpressure after " + sent.size() + " bytes");
            }
            // A reader comes: it gets every accepted byte in order, and the chardev says it can take more.
            final byte[] expected = sent.toByteArray();
            try (InputStream in = Files.newInputStream(Path.of(fifo + ".out"))) {
                assertArrayEquals(expected, in.readNBytes(expected.length));
            }
            fe.expect("writable");
        } finally {
            c.close();
        }
    }
}
