package org.vsbridge.chardev;

import com.sun.jna.LastErrorException;

/** The terminal on a descriptor, as the process's stdio console sees it. */
public final class Terminal {

    /** TIOCGWINSZ (Linux): {@code struct winsize} is four unsigned shorts: rows, cols, xpixel, ypixel. */
    private static final long TIOCGWINSZ = 0x5413;

    private Terminal() {
    }

    /** True when {@code fd} is a terminal. */
    public static boolean isTerminal(final int fd) {
        return Posix.available() && Posix.isatty(fd) == 1;
    }

    /** The window size of the terminal on {@code fd} as {@code {cols, rows}}, or null (no terminal, size 0x0). */
    public static int[] size(final int fd) {
        if (!isTerminal(fd)) {
            return null;
        }
        final int[] winsize = new int[2];
        try {
            Posix.ioctl(fd, TIOCGWINSZ, winsize);
        } catch (final LastErrorException e) {
            return null;
        }
        final int rows = winsize[0] & 0xFFFF; // little-endian: ws_row is the low half of the first int
        final int cols = winsize[0] >>> 16;
        return cols == 0 || rows == 0 ? null : new int[] {cols, rows};
    }
}
