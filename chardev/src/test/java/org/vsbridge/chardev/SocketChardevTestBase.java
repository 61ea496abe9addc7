package org.vsbridge.chardev;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.vsbridge.chardev.ByteBufs.on;
import static org.vsbridge.chardev.ByteBufs.run;
import static org.vsbridge.chardev.ByteBufs.write;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Socket chardevs against real peers (JDK sockets); run once per transport by the subclasses. */
abstract class SocketChardevTestBase {

    @TempDir
    Path dir;

    private EventLoopGroup group;
    private ChardevFactory factory;

    abstract EventLoopGroup newGroup();

    @BeforeEach
    void setUp() {
        group = newGroup();
        factory = new ChardevFactory(group);
    }

    @AfterEach
    void tearDown() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private Chardev create(final String spec) throws ChardevException {
        return factory.create(ChardevOptions.parse(spec));
    }

    private static SocketChannel connectUnix(final Path path) throws IOException {
        final SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
        ch.connect(UnixDomainSocketAddress.of(path));
        return ch;
    }

    private static void send(final SocketChannel ch, final String s) throws IOException {
        final ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.ISO_8859_1));
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    /** Reads exactly {@code n} bytes, with a safety timeout (closing the channel unblocks a stuck read). */
    private static byte[] readExactly(final SocketChannel ch, final int n) throws Exception {
        final CompletableFuture<byte[]> f = CompletableFuture.supplyAsync(() -> {
            final ByteBuffer b = ByteBuffer.allocate(n);
            try {
                while (b.hasRemaining()) {
                    if (ch.read(b) < 0) {
                        throw new IOException("EOF after " + b.position() + " bytes");
                    }
                }
            } catch (final IOException e) {
                throw new RuntimeException(e);
            }
            return b.array();
        });
        try {
            return f.get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
        } catch (final java.util.concurrent.TimeoutException e) {
            ch.close();
            throw e;
        }
    }

    private static String readString(final SocketChannel ch, final int n) throws Exception {
        return new String(readExactly(ch, n), StandardCharsets.ISO_8859_1);
    }

    private static RecordingFrontend attach(final Chardev c) throws Exception {
        final RecordingFrontend fe = new RecordingFrontend(c);
        run(c, () -> c.attach(fe));
        return fe;
    }

    @Test
    void unixServerServesOneClientAtATime() throws Exception {
        final Path path = dir.resolve("s.sock");
        final Chardev c = create("socket,id=c0,path=" + path + ",server=on,wait=off");
        try {
            assertEquals("socket", c.kind());
            assertEquals("disconnected:unix:" + path + ",server=on", c.filename());
            assertFalse(c.isOpen());
            final RecordingFrontend fe = attach(c);

            try (SocketChannel a = connectUnix(path)) {
                fe.expect("opened");
                assertTrue(c.isOpen());
                assertEquals("unix:" + path + ",server=on", c.filename());
                send(a, "hello");
                assertEquals("hello", fe.takeInput(5));
                assertTrue(write(c, "to-a"));
                assertEquals("to-a", readString(a, 4));

                try (SocketChannel b = connectUnix(path)) {
                    // b is in the listen backlog: connected for the kernel, not accepted by the chardev.
                    send(b, "from-b");
                    send(a, "more-a");
                    assertEquals("more-a", fe.takeInput(6));
                    assertEquals("", fe.drainEvents());

                    a.close();
                    fe.expect("closed");
                    fe.expect("opened");
                    assertEquals("from-b", fe.takeInput(6));
                    assertEquals("unix:" + path + ",server=on", c.filename());
                    assertTrue(write(c, "to-b"));
                    assertEquals("to-b", readString(b, 4));
                }
                fe.expect("closed");
                assertFalse(c.isOpen());
                assertEquals("disconnected:unix:" + path + ",server=on", c.filename());
            }
        } finally {
            c.close();
        }
        assertFalse(Files.exists(path), "the socket file is removed at close");
    }

    @Test
    void tcpServerOnPortZeroShowsTheRealPort() throws Exception {
        final SocketChardev c = (SocketChardev) create(
            "socket,id=t0,host=127.0.0.1,port=0,server=on,wait=off,nodelay=on");
        try {
            final int port = ((InetSocketAddress) c.localAddress()).getPort();
            assertTrue(port > 0);
            assertEquals("disconnected:tcp:127.0.0.1:" + port + ",server=on", c.filename());
            final RecordingFrontend fe = attach(c);
            try (SocketChannel peer = SocketChannel.open(new InetSocketAddress("127.0.0.1", port))) {
                fe.expect("opened");
                final int clientPort = ((InetSocketAddress) peer.getLocalAddress()).getPort();
                assertEquals("tcp:127.0.0.1:" + port + ",server=on <-> 127.0.0.1:" + clientPort, c.filename());
                send(peer, "ping");
                assertEquals("ping", fe.takeInput(4));
                assertTrue(write(c, "pong"));
                assertEquals("pong", readString(peer, 4));
            }
            fe.expect("closed");
            assertEquals("disconnected:tcp:127.0.0.1:" + port + ",server=on", c.filename());
        } finally {
            c.close();
        }
    }

    @Test
    void tcpIpv6FilenamesUseBracketsWhenConnected() throws Exception {
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getByName("::1"))) {
            assumeTrue(probe.isBound());
        } catch (final IOException e) {
            assumeTrue(false, "no IPv6 loopback here");
        }
        final SocketChardev c = (SocketChardev) create("socket,id=t6,host=::1,port=0,server=on,wait=off");
        try {
            final int port = ((InetSocketAddress) c.localAddress()).getPort();
            assertEquals("disconnected:tcp:::1:" + port + ",server=on", c.filename());
            final RecordingFrontend fe = attach(c);
            try (SocketChannel peer = SocketChannel.open(new InetSocketAddress("::1", port))) {
                fe.expect("opened");
                final int clientPort = ((InetSocketAddress) peer.getLocalAddress()).getPort();
                assertEquals("tcp:[::1]:" + port + ",server=on <-> [::1]:" + clientPort, c.filename());
            }
            fe.expect("closed");
        } finally {
            c.close();
        }
    }

    @Test
    void unixClientConnectsAtCreation() throws Exception {
        final Path path = dir.resolve("peer.sock");
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(path));
            final Chardev c = create("socket,id=u0,path=" + path);
            try (SocketChannel peer = server.accept()) {
                assertTrue(c.isOpen());
                assertEquals("unix:" + path, c.filename());
                // Attached after the connection: OPENED is replayed.
                final RecordingFrontend fe = attach(c);
                fe.expect("opened");
                send(peer, "abc");
                assertEquals("abc", fe.takeInput(3));
                assertTrue(write(c, "xyz"));
                assertEquals("xyz", readString(peer, 3));
                peer.close();
                fe.expect("closed");
                assertFalse(c.isOpen());
                assertEquals("disconnected:unix:" + path, c.filename());
                // No reconnect: output is dropped (and does not block) from now on.
                assertTrue(write(c, "lost"));
            } finally {
                c.close();
            }
        }
    }

    @Test
    void tcpClientFilenameShowsBothEnds() throws Exception {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            final int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
            final Chardev c = create("socket,id=t1,host=127.0.0.1,port=" + port);
            try (SocketChannel peer = server.accept()) {
                final int local = ((InetSocketAddress) peer.getRemoteAddress()).getPort();
                assertEquals("tcp:127.0.0.1:" + local + " <-> 127.0.0.1:" + port, c.filename());
                final RecordingFrontend fe = attach(c);
                fe.expect("opened");
                assertTrue(write(c, "hi"));
                assertEquals("hi", readString(peer, 2));
            } finally {
                c.close();
            }
            assertEquals("disconnected:tcp:127.0.0.1:" + port, c.filename());
        }
    }

    @Test
    void clientConnectFailuresAreCreateErrors() throws Exception {
        final int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            port = s.getLocalPort();
        }
        final ChardevException tcp = assertThrows(ChardevException.class,
            () -> create("socket,id=r,host=127.0.0.1,port=" + port));
        assertEquals("Failed to connect to '127.0.0.1:" + port + "': Connection refused", tcp.getMessage());

        final Path missing = dir.resolve("nobody.sock");
        final ChardevException unix = assertThrows(ChardevException.class,
            () -> create("socket,id=r,path=" + missing));
        assertEquals("Failed to connect to '" + missing + "': No such file or directory", unix.getMessage());
    }

    @Test
    void bindFailuresAreCreateErrors() throws Exception {
        try (ServerSocketChannel taken = ServerSocketChannel.open()) {
            taken.bind(new InetSocketAddress("127.0.0.1", 0));
            final int port = ((InetSocketAddress) taken.getLocalAddress()).getPort();
            final ChardevException e = assertThrows(ChardevException.class,
                () -> create("socket,id=b,host=127.0.0.1,port=" + port + ",server=on,wait=off"));
            assertEquals("Failed to find an available port: Address already in use", e.getMessage());
        }
        // A regular file in the way is not deleted (only a stale socket is).
        final Path file = Files.writeString(dir.resolve("plain"), "keep me");
        final ChardevException e = assertThrows(ChardevException.class,
            () -> create("socket,id=b,path=" + file + ",server=on,wait=off"));
        assertTrue(e.getMessage().startsWith("Failed to bind socket to " + file + ": "), e.getMessage());
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void staleSocketFileIsReplaced() throws Exception {
        final Path path = dir.resolve("stale.sock");
        try (ServerSocketChannel old = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            old.bind(UnixDomainSocketAddress.of(path));
        }
        assertTrue(Files.exists(path), "the JDK leaves the socket file behind");
        final Chardev c = create("socket,id=s,path=" + path + ",server=on,wait=off");
        try (SocketChannel peer = connectUnix(path)) {
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
        } finally {
            c.close();
        }
    }

    @Test
    void peerThatDoesNotReadMakesWriteReturnFalseUntilItReads() throws Exception {
        final Path path = dir.resolve("bp.sock");
        final Chardev c = create("socket,id=bp,path=" + path + ",server=on,wait=off");
        try (SocketChannel peer = connectUnix(path)) {
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            final int chunk = 64 * 1024;
            // Write a counting pattern until the chardev says stop (64 MiB cap as a safety net).
            final long written = on(c, () -> {
                long total = 0;
                for (int i = 0; i < 1024; i++) {
                    final ByteBuf b = Unpooled.directBuffer(chunk);
                    for (int k = 0; k < chunk; k++) {
                        b.writeByte((int) ((total + k) % 251));
                    }
                    total += chunk;
                    if (!c.write(b)) {
                        return total;
                    }
                }
                return -1L;
            });
            assertTrue(written > 0, "write never returned false");
            run(c, () -> { }); // a writable() the loop had already queued comes before this
            assertEquals("", fe.drainEvents(), "no writable() before the peer reads");

            final byte[] got = readExactly(peer, Math.toIntExact(written));
            for (int k = 0; k < got.length; k++) {
                if ((got[k] & 0xFF) != k % 251) {
                    throw new AssertionError("byte " + k + " is " + (got[k] & 0xFF));
                }
            }
            fe.expect("writable");
        } finally {
            c.close();
        }
    }

    /**
     * Returns once the chardevs' event loop has handled every byte that reached any of its sockets before this
     * call: a byte sent to the witness (a connected socket chardev on the same loop, reading) comes back through
     * the loop, and a task queued after that runs after the rest of the I/O the loop found ready with it. A
     * chardev that reads what it should not has delivered it by then.
     */
    private static void loopCaughtUp(final Chardev witness, final SocketChannel witnessPeer,
                                     final RecordingFrontend witnessFe) throws Exception {
        send(witnessPeer, "!");
        assertEquals("!", witnessFe.takeInput(1));
        run(witness, () -> { });
    }

    @Test
    void pausedReadsHoldInputUntilResumed() throws Exception {
        final Path path = dir.resolve("pause.sock");
        final Chardev c = create("socket,id=p,path=" + path + ",server=on,wait=off");
        final Path witnessPath = dir.resolve("witness.sock");
        final Chardev witness = create("socket,id=w,path=" + witnessPath + ",server=on,wait=off");
        try (SocketChannel peer = connectUnix(path); SocketChannel witnessPeer = connectUnix(witnessPath)) {
            assertSame(c.eventLoop(), witness.eventLoop(), "the witness shares the loop");
            final RecordingFrontend witnessFe = attach(witness);
            witnessFe.expect("opened");
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            run(c, () -> c.setReadPaused(true));
            send(peer, "held");
            loopCaughtUp(witness, witnessPeer, witnessFe);
            assertEquals(0, fe.inputSize(), "input delivered while paused");
            run(c, () -> c.setReadPaused(false));
            assertEquals("held", fe.takeInput(4));

            // Detached: no reads either; the bytes wait in the socket for the next frontend (a read now would
            // have nobody to give them to, and they would be lost).
            run(c, c::detach);
            send(peer, "later");
            loopCaughtUp(witness, witnessPeer, witnessFe);
            final RecordingFrontend second = attach(c);
            second.expect("opened");
            assertEquals("later", second.takeInput(5));
            assertEquals(0, fe.inputSize());
        } finally {
            c.close();
            witness.close();
        }
    }

    @Test
    void serverWithWaitBlocksCreateUntilAClientConnects() throws Exception {
        final Path path = dir.resolve("wait.sock");
        final List<String> waiting = new CopyOnWriteArrayList<>();
        final Handler log = new Handler() {
            @Override
            public void publish(final LogRecord r) {
                if (r.getMessage().contains("waiting for connection on") && r.getParameters() != null
                    && "w".equals(r.getParameters()[0])) {
                    waiting.add(r.getMessage());
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        final Logger logger = Logger.getLogger(SocketChardev.class.getName());
        logger.addHandler(log);
        final CompletableFuture<Chardev> creating = new CompletableFuture<>();
        final Thread creator = new Thread(() -> {
            try {
                creating.complete(create("socket,id=w,path=" + path + ",server=on"));
            } catch (final Throwable e) {
                creating.completeExceptionally(e);
            }
        }, "create-w");
        try {
            creator.start();
            // The chardev says it waits once it is bound and listening, where a create that does not wait would
            // return; then the creating thread either blocks or returns.
            await("create bound and blocked, or returned").atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
                .pollInterval(Duration.ofMillis(5))
                .until(() -> creating.isDone() || !waiting.isEmpty() && creator.getState() == Thread.State.WAITING);
            assertFalse(creating.isDone(), "create returned before any client connected");
        } finally {
            logger.removeHandler(log);
        }
        try (SocketChannel peer = connectUnix(path)) {
            final Chardev c = creating.get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
            try {
                assertTrue(c.isOpen());
                assertEquals("unix:" + path + ",server=on", c.filename());
                final RecordingFrontend fe = attach(c);
                fe.expect("opened");
                send(peer, "first");
                assertEquals("first", fe.takeInput(5));
            } finally {
                c.close();
            }
        }
    }

    @Test
    void logfileRecordsOutputWithAndWithoutAPeer() throws Exception {
        final Path path = dir.resolve("log.sock");
        final Path log = dir.resolve("out.log");
        Files.writeString(log, "old contents");
        final Chardev c = create("socket,id=l,path=" + path + ",server=on,wait=off,logfile=" + log);
        try {
            assertEquals("", Files.readString(log), "logfile truncated at creation");
            assertTrue(write(c, "abc")); // no peer: dropped, but logged
            try (SocketChannel peer = connectUnix(path)) {
                final RecordingFrontend fe = attach(c);
                fe.expect("opened");
                assertTrue(write(c, "def"));
                assertEquals("def", readString(peer, 3));
            }
        } finally {
            c.close();
        }
        assertEquals("abcdef", Files.readString(log));

        final Chardev appending = create("socket,id=l2,path=" + path + ",server=on,wait=off,logfile=" + log
            + ",logappend=on");
        try {
            assertTrue(write(appending, "ghi"));
        } finally {
            appending.close();
        }
        assertEquals("abcdefghi", Files.readString(log));
    }

    @Test
    void impossibleCombinationsAreRefusedWithQemusWords() {
        final ChardevException e = assertThrows(ChardevException.class,
            () -> create("socket,id=x,host=127.0.0.1,port=0,server=on,reconnect-ms=1"));
        assertEquals("'reconnect-ms' option is incompatible with socket in server listen mode", e.getMessage());
        final ChardevException w = assertThrows(ChardevException.class,
            () -> create("socket,id=x,path=/tmp/x.sock,wait=off"));
        assertEquals("'wait' option is incompatible with socket in client connect mode", w.getMessage());
        final ChardevException ws = assertThrows(ChardevException.class,
            () -> create("socket,id=x,path=/tmp/x.sock,websocket=on"));
        assertEquals("Websocket client is not implemented", ws.getMessage());
        final ChardevException tls = assertThrows(ChardevException.class,
            () -> create("socket,id=x,path=/tmp/x.sock,tls-creds=t"));
        assertEquals("No TLS credentials with id 't'", tls.getMessage()); // QEMU looks them up first
    }

    @Test
    void transportMatchesTheGroup() throws Exception {
        final Path path = dir.resolve("t.sock");
        final Chardev c = create("socket,id=k,path=" + path + ",server=on,wait=off");
        try {
            assertInstanceOf(SocketChardev.class, c);
            assertEquals(Transports.isEpoll(group), Transports.isEpoll(c.eventLoop()));
        } finally {
            c.close();
        }
    }
}
