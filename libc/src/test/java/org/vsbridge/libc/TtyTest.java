package org.vsbridge.libc;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** A real pseudo-terminal pair: the calls the pty, serial and stdio chardevs make. */
class TtyTest {

    /** termios c_lflag is at byte 12; ICANON and ECHO are two of its bits. */
    private static final int LFLAG = 12;
    private static final int ICANON = 02;
    private static final int ECHO = 010;

    @Test
    void aPtyPairGoesRawAndReportsItsHangUp() throws Exception {
        final int master = Tty.openMaster(Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC);
        try {
            final String slave = Tty.slaveName(master);
            assertTrue(slave.startsWith("/dev/pts/"), slave);
            assertTrue(Tty.isTerminal(master));
            final int fd = Sys.open(slave, Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC);
            try {
                assertFalse(Sys.hungUp(master), "a slave is open");
                assertTrue((Sys.pollNow(master, Sys.POLLOUT) & Sys.POLLOUT) != 0, "the master takes a write");
                final byte[] cooked = Tty.getAttr(fd);
                assertNotEquals(0, Sys.getInt(cooked, LFLAG) & (ICANON | ECHO), "a new pty is cooked");
                Tty.makeRaw(fd);
                assertEquals(0, Sys.getInt(Tty.getAttr(fd), LFLAG) & (ICANON | ECHO), "raw: no canonical mode, no echo");
                Tty.setAttr(fd, cooked);
                assertEquals(Sys.getInt(cooked, LFLAG), Sys.getInt(Tty.getAttr(fd), LFLAG), "settings restored");
                assertEquals(-1, Tty.foregroundGroup(fd), "not this process's controlling terminal");
            } finally {
                Sys.close(fd);
            }
            assertTrue(Sys.hungUp(master), "the last slave closed");
        } finally {
            Sys.close(master);
        }
    }

    @Test
    void notATerminal() throws Exception {
        final int[] pair = Sockets.socketpair();
        try {
            assertFalse(Tty.isTerminal(pair[0]));
            assertNull(Tty.windowSize(pair[0]));
            final ErrnoException e = assertThrows(ErrnoException.class, () -> Tty.getAttr(pair[0]));
            assertEquals("Inappropriate ioctl for device", e.reason());
            assertTrue(e.getMessage().startsWith("tcgetattr(" + pair[0] + "): Inappropriate ioctl for device (errno "),
                e.getMessage());
        } finally {
            Sys.close(pair[0]);
            Sys.close(pair[1]);
        }
    }
}
