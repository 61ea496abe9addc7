package org.vsbridge.libc;

import java.nio.charset.StandardCharsets;

/** Terminals: pseudo-terminal pairs, termios settings, break, job control and the window size. */
public final class Tty {

    public static final int TCSANOW = 0;
    /** sizeof(struct termios) with glibc on Linux. */
    public static final int TERMIOS_SIZE = 60;
    /** TIOCGWINSZ (Linux): {@code struct winsize} is four unsigned shorts: rows, cols, xpixel, ypixel. */
    private static final long TIOCGWINSZ = 0x5413;

    private Tty() {
    }

    /** True when {@code fd} is a terminal (false too when libc is not bound). */
    public static boolean isTerminal(final int fd) {
        return Sys.available() && LibC.isatty(fd) == 1;
    }

    /** A new pty master (posix_openpt with {@code flags}, granted and unlocked). */
    public static int openMaster(final int flags) throws ErrnoException {
        final int master = LibC.posix_openpt(flags);
        if (master < 0) {
            throw ErrnoException.last("posix_openpt");
        }
        if (LibC.grantpt(master) != 0 || LibC.unlockpt(master) != 0) {
            final ErrnoException e = ErrnoException.last("grantpt/unlockpt");
            Sys.closeQuietly(master);
            throw e;
        }
        return master;
    }

    /** The slave device of pty master {@code master}, e.g. {@code /dev/pts/3}. */
    public static String slaveName(final int master) throws ErrnoException {
        final byte[] name = new byte[128];
        final int rc = LibC.ptsname_r(master, name, name.length);
        if (rc != 0) {
            throw new ErrnoException("ptsname_r", rc);
        }
        int len = 0;
        while (len < name.length && name[len] != 0) {
            len++;
        }
        return new String(name, 0, len, StandardCharsets.UTF_8);
    }

    /** The termios settings of {@code fd} ({@link #TERMIOS_SIZE} bytes). */
    public static byte[] getAttr(final int fd) throws ErrnoException {
        final byte[] termios = new byte[TERMIOS_SIZE];
        if (LibC.tcgetattr(fd, termios) != 0) {
            throw ErrnoException.last("tcgetattr(" + fd + ")");
        }
        return termios;
    }

    /** Applies {@code termios} to {@code fd} now (TCSANOW). */
    public static void setAttr(final int fd, final byte[] termios) throws ErrnoException {
        if (LibC.tcsetattr(fd, TCSANOW, termios) != 0) {
            throw ErrnoException.last("tcsetattr(" + fd + ")");
        }
    }

    /** Raw mode on {@code fd} (cfmakeraw: no echo, no line discipline), applied now. */
    public static void makeRaw(final int fd) throws ErrnoException {
        final byte[] termios = getAttr(fd);
        LibC.cfmakeraw(termios);
        setAttr(fd, termios);
    }

    /** Sets {@code bits} in the 32-bit termios field at byte {@code at}. */
    public static void setFlags(final byte[] termios, final int at, final int bits) {
        Sys.putInt(termios, at, Sys.getInt(termios, at) | bits);
    }

    /** Clears {@code bits} in the 32-bit termios field at byte {@code at}. */
    public static void clearFlags(final byte[] termios, final int at, final int bits) {
        Sys.putInt(termios, at, Sys.getInt(termios, at) & ~bits);
    }

    /** The foreground process group of the terminal on {@code fd}; -1 when it is not this process's controlling
     *  terminal. */
    public static int foregroundGroup(final int fd) {
        return LibC.tcgetpgrp(fd);
    }

    /** This process's group. */
    public static int processGroup() {
        return LibC.getpgrp();
    }

    /** The window size of the terminal on {@code fd} as {@code {cols, rows}}, or null (no terminal, size 0x0). */
    public static int[] windowSize(final int fd) {
        if (!isTerminal(fd)) {
            return null;
        }
        final int[] winsize = new int[2];
        if (LibC.ioctl(fd, TIOCGWINSZ, winsize) < 0) {
            return null;
        }
        final int rows = winsize[0] & 0xFFFF; // little-endian: ws_row is the low half of the first int
        final int cols = winsize[0] >>> 16;
        return cols == 0 || rows == 0 ? null : new int[] {cols, rows};
    }
}
