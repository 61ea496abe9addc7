package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import java.io.IOException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The socket file of a unix server: a live socket at the path is refused and kept, a stale one (connect refused)
 * is replaced, and at close only a file that is still the server's own is removed.
 */
class UnixSocketFileTest {

    /** Hang guard only: each call returns at once when it works. */
    private static final Duration GUARD = Duration.ofSeconds(30);
    private static final String IN_USE = ": Address already in use (another process is listening on it)";

    @TempDir
    Path dir;

    private static ServerSocketChannel listen(final Path path, final int backlog) throws IOException {
        return ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(path), backlog);
    }

    private static void connect(final Path path) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(path));
        }
    }

    @Test
    void aLiveSocketIsRefusedAndKept() throws Exception {
        final Path path = dir.resolve("live.sock");
        try (ServerSocketChannel live = listen(path, 0)) {
            final Object before = UnixSocketFile.identity(path);
            final UnixSocketFile.InUseException e = assertThrows(UnixSocketFile.InUseException.class,
                () -> UnixSocketFile.removeIfStale(path));
            assertEquals("Failed to bind socket to " + path + IN_USE, e.getMessage());
            assertEquals(before, UnixSocketFile.identity(path));
            connect(path);
            live.accept().close();
        }
    }

    @Test
    void aListenerWithAFullBacklogIsLiveAndTheProbeDoesNotBlock() throws Exception {
        final Path path = dir.resolve("full.sock");
        final List<SocketChannel> queued = new ArrayList<>();
        try (ServerSocketChannel live = listen(path, 1)) {
            // Fill the backlog: non-blocking connects until the kernel says "try again".
            while (true) {
                final SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
                c.configureBlocking(false);
                try {
                    c.connect(UnixDomainSocketAddress.of(path));
                    queued.add(c);
                } catch (final SocketException full) {
                    c.close();
                    break;
                }
                assertTrue(queued.size() < 1000, "the backlog never filled");
            }
            assertTimeoutPreemptively(GUARD, () -> assertThrows(UnixSocketFile.InUseException.class,
                () -> UnixSocketFile.removeIfStale(path)));
            assertTrue(Files.exists(path));
        } finally {
            for (final SocketChannel c : queued) {
                c.close();
            }
        }
    }

    @Test
    void aStaleSocketIsRemovedAndOtherFilesAreKept() throws Exception {
        final Path stale = dir.resolve("stale.sock");
        listen(stale, 0).close(); // the JDK leaves the file: nobody listens on it any more
        assertTrue(Files.exists(stale));
        UnixSocketFile.removeIfStale(stale);
        assertFalse(Files.exists(stale));

        UnixSocketFile.removeIfStale(dir.resolve("nothing-there.sock"));

        final Path file = Files.writeString(dir.resolve("plain"), "keep me");
        final UnixSocketFile.InUseException e = assertThrows(UnixSocketFile.InUseException.class,
            () -> UnixSocketFile.removeIfStale(file));
        assertEquals("Failed to bind socket to " + file + ": Address already in use (a file that is not a socket is "
            + "there)", e.getMessage());
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void onlyTheFileThatIsStillOwnIsRemoved() throws Exception {
        final Path path = dir.resolve("own.sock");
        try (ServerSocketChannel mine = listen(path, 0)) {
            final Object mineId = UnixSocketFile.identity(path);
            // Somebody else unlinks it and binds their own socket there while this one still listens.
            Files.delete(path);
            try (ServerSocketChannel theirs = listen(path, 0)) {
                UnixSocketFile.removeIfOwn(path, mineId);
                assertTrue(Files.exists(path), "somebody else's socket stays");
                connect(path);
                theirs.accept().close();
                UnixSocketFile.removeIfOwn(path, UnixSocketFile.identity(path));
                assertFalse(Files.exists(path), "a file that is still one's own is removed");
            }
        }
        UnixSocketFile.removeIfOwn(path, null);
    }

    @Test
    void whatThePathAloneSays() throws Exception {
        assertNull(UnixSocketFile.whyNotBindable(dir.resolve("fine.sock")));
        assertNull(UnixSocketFile.whyNotBindable(Path.of("relative.sock")));
        final Path missing = dir.resolve("missing").resolve("x.sock");
        assertEquals("Failed to bind socket to " + missing + ": No such file or directory",
            UnixSocketFile.whyNotBindable(missing));
        final Path underFile = Files.writeString(dir.resolve("file"), "").resolve("x.sock");
        assertEquals("Failed to bind socket to " + underFile + ": Not a directory",
            UnixSocketFile.whyNotBindable(underFile));
        final Path tooLong = dir.resolve("x".repeat(120));
        assertEquals("UNIX socket path '" + tooLong + "' is too long", UnixSocketFile.whyNotBindable(tooLong));
    }

    // ------------------------------------------------------------------ socket chardevs

    private static EventLoopGroup group(final String transport) {
        return transport.equals("nio") ? new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory())
            : Transports.newEventLoopGroup(1, "t-unix-file");
    }

    @ParameterizedTest
    @ValueSource(strings = {"epoll", "nio"})
    void aSecondServerChardevOnALivePathIsRefusedWithACause(final String transport) throws Exception {
        assumeTrue(transport.equals("nio") || Transports.epollAvailable(), "no epoll here");
        final EventLoopGroup group = group(transport);
        try {
            final ChardevFactory factory = new ChardevFactory(group);
            final Path path = dir.resolve("c.sock");
            final Chardev first = factory.create(ChardevOptions.parse("socket,id=a,path=" + path
                + ",server=on,wait=off"));
            final Object identity = UnixSocketFile.identity(path);
            final ChardevException e = assertThrows(ChardevException.class, () -> factory.create(
                ChardevOptions.parse("socket,id=b,path=" + path + ",server=on,wait=off")));
            assertEquals("Failed to bind socket to " + path + IN_USE, e.getMessage());
            assertInstanceOf(UnixSocketFile.InUseException.class, e.getCause());
            assertEquals(identity, UnixSocketFile.identity(path), "the first chardev's file is untouched");
            connect(path);
            first.close();
            assertFalse(Files.exists(path), "the first chardev removes its own file");
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    @Test
    void aServerChardevLeavesASocketThatReplacedItsFile() throws Exception {
        // Netty's NIO channel deletes its path at close whatever is there: only the epoll transport keeps it.
        assumeTrue(Transports.epollAvailable(), "no epoll here");
        final EventLoopGroup group = group("epoll");
        final Path path = dir.resolve("c.sock");
        try (ServerSocketChannel theirs = openAfterReplacing(group, path)) {
            assertTrue(Files.exists(path), "the other socket is still there");
            connect(path);
            theirs.accept().close();
        } finally {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
    }

    /** A chardev binds {@code path}; somebody replaces the file with their socket; the chardev closes. */
    private static ServerSocketChannel openAfterReplacing(final EventLoopGroup group, final Path path)
        throws Exception {
        final Chardev chardev = new ChardevFactory(group).create(ChardevOptions.parse("socket,id=a,path=" + path
            + ",server=on,wait=off"));
        Files.delete(path);
        final ServerSocketChannel theirs = listen(path, 0);
        final Object theirId = UnixSocketFile.identity(path);
        chardev.close();
        // close() hands the listener's close to the event loop: wait for the loop to run it.
        group.next().submit(() -> { }).get(GUARD.toSeconds(), TimeUnit.SECONDS);
        assertEquals(theirId, UnixSocketFile.identity(path));
        return theirs;
    }
}
