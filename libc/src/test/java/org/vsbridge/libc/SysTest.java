package org.vsbridge.libc;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class SysTest {

    @Test
    void eventfdCountsAndDrainsWithoutBlocking() throws IOException {
        final int fd = Sys.eventfd();
        try {
            assertEquals(0, Sys.eventfdDrain(fd), "empty eventfd reads EAGAIN as 0");
            assertEquals(0, Sys.eventfdSignal(fd));
            assertEquals(0, Sys.eventfdSignal(fd));
            assertEquals(2, Sys.eventfdDrain(fd));
            assertEquals(0, Sys.eventfdDrain(fd));
        } finally {
            Sys.close(fd);
        }
        assertEquals(-Sys.EBADF, Sys.eventfdDrain(fd), "closed fd reports EBADF through errno");
        assertEquals(Sys.EBADF, Sys.eventfdSignal(fd));
    }

    @Test
    void errorsCarryStrerrorText() {
        final IOException e = assertThrows(IOException.class, () -> Sys.close(987_654));
        assertTrue(e.getMessage().contains("Bad file descriptor"), e.getMessage());
    }

    @Test
    void fdsTravelWithBytes() throws IOException {
        final int[] pair = Sockets.socketpair();
        final int a = Sys.eventfd();
        final int b = SharedMemory.memfdCreate("t", 4096);
        final FdList fds = new FdList();
        try {
            Sockets.sendMsg(pair[0], new byte[] {1, 2, 3}, 0, 3, a, b);
            final byte[] buf = new byte[16];
            final int n = Sockets.recvMsg(pair[1], buf, 0, 16, fds);
            assertEquals(3, n);
            assertEquals(3, buf[2]);
            assertEquals(2, fds.count());
            assertFalse(fds.truncated());
            // The received eventfd is the same object: a signal through it is seen through a.
            assertEquals(0, Sys.eventfdSignal(fds.get(0)));
            assertEquals(1, Sys.eventfdDrain(a));
            assertEquals(2, fds.closeAll());
        } finally {
            Sys.close(a);
            Sys.close(b);
            Sys.close(pair[0]);
            Sys.close(pair[1]);
        }
    }

    @Test
    void maxFdsInOneMessage() throws IOException {
        final int[] pair = Sockets.socketpair();
        final int efd = Sys.eventfd();
        final int[] many = new int[Sockets.MAX_FDS_PER_MESSAGE];
        java.util.Arrays.fill(many, efd);
        final FdList fds = new FdList();
        try {
            Sockets.sendMsg(pair[0], new byte[] {9}, 0, 1, many);
            assertEquals(1, Sockets.recvMsg(pair[1], new byte[4], 0, 4, fds));
            assertEquals(Sockets.MAX_FDS_PER_MESSAGE, fds.count());
            assertFalse(fds.truncated());
            final int first = fds.get(0);
            assertEquals(Sockets.MAX_FDS_PER_MESSAGE, fds.closeAll());
            assertFalse(Sys.isOpen(first));
        } finally {
            Sys.close(efd);
            Sys.close(pair[0]);
            Sys.close(pair[1]);
        }
    }

    @Test
    void memfdMappingsShareBytesAndUnalignedOffsetsWork() throws IOException {
        final int fd = SharedMemory.memfdCreate("m", 3L * SharedMemory.pageSize());
        try {
            final SharedMemory.Mapping whole = SharedMemory.mmap(fd, 3L * SharedMemory.pageSize(), 0);
            final SharedMemory.Mapping inner = SharedMemory.mmap(fd, 100, SharedMemory.pageSize() + 24);
            assertEquals(inner.base() + 24, inner.address());
            final com.sun.jna.Pointer p = new com.sun.jna.Pointer(whole.address());
            p.setByte(SharedMemory.pageSize() + 24, (byte) 0x5a);
            assertEquals(0x5a, new com.sun.jna.Pointer(inner.address()).getByte(0));
            SharedMemory.munmap(inner);
            SharedMemory.munmap(whole);
        } finally {
            Sys.close(fd);
        }
    }

    @Test
    void listenConnectAccept() throws Exception {
        final Path dir = Files.createTempDirectory("sys");
        final Path path = dir.resolve("s.sock");
        final int l = Sockets.unixListen(path, 4);
        final int c = Sockets.unixConnect(path);
        final int s = Sockets.accept(l);
        try {
            assertEquals(0, Sys.pollReadable(new int[] {s}, 0));
            Sockets.sendMsg(c, new byte[] {7}, 0, 1);
            assertEquals(1, Sys.pollReadable(new int[] {s}, 1000));
            Sockets.shutdownQuietly(c);
            final byte[] buf = new byte[2];
            assertEquals(1, Sockets.recvMsg(s, buf, 0, 2, new FdList()));
            assertEquals(0, Sockets.recvMsg(s, buf, 0, 2, new FdList()), "end of stream after shutdown");
        } finally {
            Sys.close(s);
            Sys.close(c);
            Sys.close(l);
            Sockets.unlink(path);
            Files.delete(dir);
        }
    }
}
