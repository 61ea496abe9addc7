package org.vsbridge.libc;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** The socket calls the chardevs and the systemd integration make, on real sockets. */
class SocketsTest {

    @Test
    void familiesAndListeningAreAskedOfTheKernel() throws Exception {
        final Path dir = Files.createTempDirectory("sockets");
        final Path path = dir.resolve("l.sock");
        final int l = Sockets.unixListen(path, 1);
        final int efd = Sys.eventfd();
        try {
            assertEquals(Sockets.AF_UNIX, Sockets.family(l));
            assertTrue(Sockets.isListening(l));
            assertEquals(Sockets.SOCK_STREAM, Sockets.intOption(l, Sockets.SO_TYPE));
            assertEquals(-1, Sockets.familyOrNone(efd), "an eventfd is no socket");
            assertFalse(Sockets.isListening(efd));
            final ErrnoException e = assertThrows(ErrnoException.class, () -> Sockets.family(efd));
            assertEquals("Socket operation on non-socket", e.reason());
        } finally {
            Sys.close(efd);
            Sys.close(l);
            Sockets.unlink(path);
            Files.delete(dir);
        }
    }

    @Test
    void aPeerIsGoneOnlyAfterWhatItSentIsRead() throws Exception {
        final int[] pair = Sockets.socketpair();
        try {
            assertFalse(Sockets.peerGone(pair[0]));
            Sockets.sendMsg(pair[1], new byte[] {1, 2}, 0, 2);
            Sys.close(pair[1]);
            assertEquals(2, Sys.queuedInput(pair[0]));
            assertFalse(Sockets.peerGone(pair[0]), "two bytes still to read");
            assertEquals(2, Sockets.recvMsg(pair[0], new byte[4], 0, 4, new FdList()));
            assertTrue(Sockets.peerGone(pair[0]));
        } finally {
            Sys.close(pair[0]);
        }
    }

    @Test
    void datagramsReachAnAbstractName() throws Exception {
        final String name = "@vsb-libc-test-" + ProcessHandle.current().pid();
        final byte[] addr = new byte[Sockets.SOCKADDR_UN_SIZE];
        final int len = Sockets.sockaddrUn(name, addr);
        assertEquals(0, addr[2], "an abstract name starts with a NUL");
        final int rx = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_DGRAM | Sockets.SOCK_CLOEXEC, 0);
        final int tx = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_DGRAM | Sockets.SOCK_CLOEXEC, 0);
        try {
            Sockets.bind(rx, addr, len);
            final byte[] msg = "READY=1".getBytes(StandardCharsets.UTF_8);
            assertEquals(msg.length, Sockets.sendTo(tx, msg, addr, len));
            final byte[] got = new byte[32];
            assertEquals(msg.length, Sockets.recvMsg(rx, got, 0, got.length, new FdList()));
            assertEquals("READY=1", new String(got, 0, msg.length, StandardCharsets.UTF_8));
            final ErrnoException taken = assertThrows(ErrnoException.class, () -> {
                final int again = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_DGRAM | Sockets.SOCK_CLOEXEC, 0);
                try {
                    Sockets.bind(again, addr, len);
                } finally {
                    Sys.close(again);
                }
            });
            assertEquals("Address already in use", taken.reason());
        } finally {
            Sys.close(tx);
            Sys.close(rx);
        }
        assertThrows(IllegalArgumentException.class, () -> Sockets.sockaddrUn("/" + "x".repeat(107), addr));
    }
}
