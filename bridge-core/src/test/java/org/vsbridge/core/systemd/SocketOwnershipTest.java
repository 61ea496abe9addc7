package org.vsbridge.core.systemd;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Who owns a socket file: two bridge processes on the same vhost-user, chardev or QMP path. A path another process
 * listens on is refused (status 1, one line), never taken over; a socket nobody listens on any more (the bridge was
 * killed) is stale and replaced; at exit a bridge removes only the files that are still the ones it bound.
 */
class SocketOwnershipTest {

    private static final String IN_USE = ": Address already in use (another process is listening on it)";

    @TempDir
    Path dir;

    private static String[] args(final Path vhost, final Path chardev, final Path qmp) {
        return new String[] {"--socket-path", vhost.toString(),
            "--chardev", "socket,id=c0,path=" + chardev + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c0,name=a",
            "--qmp", "unix:" + qmp + ",server=on,wait=off"};
    }

    /** The inode of each file: which socket is at the path. */
    private static Map<Path, Object> inodes(final Path... paths) throws IOException {
        final Map<Path, Object> m = new LinkedHashMap<>();
        for (final Path p : paths) {
            m.put(p, Files.getAttribute(p, "unix:ino"));
        }
        return m;
    }

    /** One connect, no retry: the socket at {@code path} is listening now. */
    private static void assertAccepts(final Path path) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(path));
        }
    }

    /** A QMP monitor answers at {@code path}: its greeting arrives. */
    private static void assertQmpGreets(final Path path) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            ch.connect(UnixDomainSocketAddress.of(path));
            ch.configureBlocking(false);
            final ByteBuffer buf = ByteBuffer.allocate(4096);
            await().atMost(BridgeChild.HANG_GUARD).until(() -> {
                ch.read(buf);
                return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8).contains("\n");
            });
            final String greeting = new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
            assertTrue(greeting.contains("\"QMP\"") && greeting.contains("\"version\""), greeting);
        }
    }

    /** The refused bridge printed exactly one line about it, without a stack trace, and took nothing over. */
    private static void assertRefused(final BridgeChild second, final String what, final Path path) throws Exception {
        assertEquals(1, second.exitStatus(), second.output());
        final List<String> refusals = second.lines("Failed to bind socket");
        assertEquals(1, refusals.size(), second.output());
        assertTrue(refusals.get(0).endsWith(what + ": Failed to bind socket to " + path + IN_USE), refusals.get(0));
        assertTrue(second.lines("\tat ").isEmpty(), second.output());
        assertTrue(second.lines("removed stale socket").isEmpty(), second.output());
    }

    @Test
    void aSecondBridgeOnALiveSocketExitsOneAndTheFirstKeepsServing() throws Exception {
        final Path vhost = dir.resolve("v.sock");
        final Path chardev = dir.resolve("c.sock");
        final Path qmp = dir.resolve("q.qmp");
        try (BridgeChild first = BridgeChild.start(dir, "first", args(vhost, chardev, qmp))) {
            first.awaitLine("QEMU:");
            final Map<Path, Object> before = inodes(vhost, chardev, qmp);
            // Each second bridge shares one path with the first; its other paths are its own.
            try (BridgeChild onVhost = BridgeChild.start(dir, "on-vhost",
                     args(vhost, dir.resolve("c1.sock"), dir.resolve("q1.qmp")));
                 BridgeChild onChardev = BridgeChild.start(dir, "on-chardev",
                     args(dir.resolve("v2.sock"), chardev, dir.resolve("q2.qmp")));
                 BridgeChild onQmp = BridgeChild.start(dir, "on-qmp",
                     args(dir.resolve("v3.sock"), dir.resolve("c3.sock"), qmp))) {
                assertRefused(onVhost, "vhost-user", vhost);
                assertRefused(onChardev, "-chardev c0", chardev);
                assertRefused(onQmp, "QMP", qmp);
            }
            assertEquals(before, inodes(vhost, chardev, qmp), "the first bridge's socket files are untouched");
            assertAccepts(vhost);
            assertAccepts(chardev);
            assertQmpGreets(qmp);
            assertTrue(first.process().isAlive());
            // What the refused bridges had bound before they gave up, they removed.
            for (final String own : List.of("c1.sock", "q1.qmp", "c3.sock")) {
                assertFalse(Files.exists(dir.resolve(own)), own);
            }
            first.process().destroy();
            assertEquals(0, first.exitStatus(), first.output());
        }
        for (final Path p : List.of(vhost, chardev, qmp)) {
            assertFalse(Files.exists(p), "the first bridge removed its own " + p);
        }
    }

    @Test
    void socketsOfAKilledBridgeAreStaleAndTheNextBridgeReplacesThem() throws Exception {
        final Path vhost = dir.resolve("v.sock");
        final Path chardev = dir.resolve("c.sock");
        final Path qmp = dir.resolve("q.qmp");
        try (BridgeChild killed = BridgeChild.start(dir, "killed", args(vhost, chardev, qmp))) {
            killed.awaitLine("QEMU:");
            killed.process().destroyForcibly(); // SIGKILL: nothing is cleaned up
            killed.exitStatus();
        }
        for (final Path p : List.of(vhost, chardev, qmp)) {
            assertTrue(Files.exists(p), "kill -9 left " + p);
        }
        try (BridgeChild next = BridgeChild.start(dir, "next", args(vhost, chardev, qmp))) {
            next.awaitLine("QEMU:");
            for (final Path p : List.of(vhost, chardev, qmp)) {
                assertEquals(1, next.lines("removed stale socket " + p).size(), next.output());
            }
            assertAccepts(vhost);
            assertAccepts(chardev);
            assertQmpGreets(qmp);
            next.process().destroy();
            assertEquals(0, next.exitStatus(), next.output());
        }
        for (final Path p : List.of(vhost, chardev, qmp)) {
            assertFalse(Files.exists(p), "the next bridge removed its own " + p);
        }
    }

    @Test
    void aBridgeLeavesASocketThatReplacedItsOwnAtExit() throws Exception {
        final Path vhost = dir.resolve("v.sock");
        final Path chardev = dir.resolve("c.sock");
        final Path qmp = dir.resolve("q.qmp");
        final List<ServerSocketChannel> theirs = new ArrayList<>();
        try (BridgeChild first = BridgeChild.start(dir, "first", args(vhost, chardev, qmp))) {
            first.awaitLine("QEMU:");
            // Someone else unlinks the bridge's files and binds their own sockets there.
            for (final Path p : List.of(vhost, chardev, qmp)) {
                Files.delete(p);
                theirs.add(ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(p)));
            }
            final Map<Path, Object> replaced = inodes(vhost, chardev, qmp);
            first.process().destroy();
            assertEquals(0, first.exitStatus(), first.output());
            assertEquals(replaced, inodes(vhost, chardev, qmp), "the other sockets are still there");
            for (int i = 0; i < theirs.size(); i++) {
                final Path p = List.of(vhost, chardev, qmp).get(i);
                assertAccepts(p);
                theirs.get(i).accept().close(); // the connection reached the other socket
            }
        } finally {
            for (final ServerSocketChannel s : theirs) {
                s.close();
            }
        }
    }
}
