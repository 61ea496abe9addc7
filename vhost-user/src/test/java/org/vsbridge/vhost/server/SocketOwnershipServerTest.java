package org.vsbridge.vhost.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.VhostUserClient;

/**
 * The vhost-user socket file: a path another backend listens on is refused and left to it, and at close a backend
 * removes its file only while that file is still the one it bound.
 */
class SocketOwnershipServerTest {

    private static final long FEATURES = VhostUserClient.F_VERSION_1;

    @TempDir
    Path dir;

    private static LoopbackDevice device() {
        return new LoopbackDevice(2, 64, FEATURES, 0);
    }

    private static Object inode(final Path p) throws Exception {
        return Files.getAttribute(p, "unix:ino");
    }

    @Test
    void aSecondServerOnALiveSocketIsRefusedAndTheFirstKeepsServing() throws Exception {
        final Path path = dir.resolve("backend.sock");
        try (VhostUserServer first = new VhostUserServer("first", path, device())) {
            first.start();
            final Object before = inode(path);
            final VhostUserServer second = new VhostUserServer("second", path, device());
            final VhostUserServer.SocketInUseException e = assertThrows(VhostUserServer.SocketInUseException.class,
                second::start);
            assertEquals("Failed to bind socket to " + path
                + ": Address already in use (another process is listening on it)", e.getMessage());
            second.close();
            assertEquals(before, inode(path), "the first server's file is untouched");
            try (VhostUserClient c = VhostUserClient.connect(path)) {
                assertEquals(2, c.getQueueNum());
            }
        }
        assertFalse(Files.exists(path), "the first server removes its own file");
    }

    @Test
    void aFileOfAnotherKindIsRefusedAsFinal() throws Exception {
        final Path file = Files.writeString(dir.resolve("not-a-socket"), "keep me");
        final VhostUserServer s = new VhostUserServer("t", file, device());
        final VhostUserServer.SocketInUseException e = assertThrows(VhostUserServer.SocketInUseException.class,
            s::start);
        assertEquals("Failed to bind socket to " + file
            + ": Address already in use (a file that is not a socket is there)", e.getMessage());
        s.close();
        assertEquals("keep me", Files.readString(file));
    }

    @Test
    void closeLeavesASocketThatReplacedItsFile() throws Exception {
        final Path path = dir.resolve("backend.sock");
        final VhostUserServer server = new VhostUserServer("t", path, device());
        server.start();
        // Somebody else unlinks the file and binds their own socket there while the server still listens.
        Files.delete(path);
        try (ServerSocketChannel theirs = ServerSocketChannel.open(StandardProtocolFamily.UNIX)
            .bind(UnixDomainSocketAddress.of(path))) {
            final Object theirId = inode(path);
            server.close();
            assertTrue(Files.exists(path), "the other socket stays");
            assertEquals(theirId, inode(path));
            try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                ch.connect(UnixDomainSocketAddress.of(path));
            }
            theirs.accept().close();
        }
    }
}
