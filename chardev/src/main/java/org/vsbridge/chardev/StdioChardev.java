package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Tty;

/**
 * {@code stdio}: input from the process's stdin (fd 0), output to its stdout (fd 1) written directly, bypassing
 * {@code System.out} so log lines and guest bytes never interleave inside a buffer. One per process, as in QEMU.
 *
 * <p>As QEMU's, a terminal on stdin is put in raw mode while the chardev exists, so every key reaches the guest as
 * it is typed and the guest does the echoing: no line editing, no local echo, no CR/LF translation on input, 8-bit
 * characters; output processing stays on. With {@code signal=on} (the default) ^C, ^Z and ^\ still signal the
 * bridge; with {@code signal=off} they are bytes for the guest. Closing the chardev (also at exit) restores the
 * terminal. A process in the background of its terminal leaves it alone (changing it would stop the process).
 */
final class StdioChardev extends FileChardev {

    private static final Logger LOG = Logger.getLogger(StdioChardev.class.getName());
    private static final AtomicBoolean IN_USE = new AtomicBoolean();

    // struct termios (Linux): c_iflag, c_oflag, c_cflag, c_lflag at 0, 4, 8, 12; c_cc from 17.
    private static final int IFLAG = 0;
    private static final int OFLAG = 4;
    private static final int CFLAG = 8;
    private static final int LFLAG = 12;
    private static final int CC = 17;
    private static final int VTIME = 5;
    private static final int VMIN = 6;
    private static final int IGNBRK = 01;
    private static final int BRKINT = 02;
    private static final int PARMRK = 010;
    private static final int ISTRIP = 040;
    private static final int INLCR = 0100;
    private static final int IGNCR = 0200;
    private static final int ICRNL = 0400;
    private static final int IXON = 02000;
    private static final int OPOST = 01;
    private static final int CSIZE = 060;
    private static final int CS8 = 060;
    private static final int PARENB = 0400;
    private static final int ISIG = 01;
    private static final int ICANON = 02;
    private static final int ECHO = 010;
    private static final int ECHONL = 0100;
    private static final int IEXTEN = 0100000;

    /** The terminal settings to restore, or null when stdin was left alone. */
    private final byte[] saved;

    private StdioChardev(final String id, final EventLoop loop, final Logfile logfile, final byte[] saved) {
        super(id, ChardevKind.STDIO, loop, logfile, "stdout", new FileOutputStream(FileDescriptor.out).getChannel(),
            false, new FileInputStream(FileDescriptor.in), false);
        this.saved = saved;
    }

    static StdioChardev open(final String id, final EventLoop loop, final Logfile logfile, final boolean signal)
        throws ChardevException {
        if (!IN_USE.compareAndSet(false, true)) {
            throw new ChardevException("cannot use stdio by multiple character devices");
        }
        return new StdioChardev(id, loop, logfile, rawTerminal(signal));
    }

    /** Puts a foreground terminal on fd 0 in raw mode; returns its previous settings, or null if none was changed. */
    private static byte[] rawTerminal(final boolean signal) {
        if (!Tty.isTerminal(0)) {
            return null;
        }
        final int foreground = Tty.foregroundGroup(0); // -1: not our controlling terminal, so no job control either
        if (foreground >= 0 && foreground != Tty.processGroup()) {
            LOG.info("stdio: the bridge runs in the background of its terminal, which stays as it is");
            return null;
        }
        try {
            final byte[] old = Tty.getAttr(0);
            final byte[] raw = old.clone();
            clear(raw, IFLAG, IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
            set(raw, OFLAG, OPOST);
            clear(raw, LFLAG, ECHO | ECHONL | ICANON | IEXTEN | (signal ? 0 : ISIG));
            clear(raw, CFLAG, CSIZE | PARENB);
            set(raw, CFLAG, CS8);
            raw[CC + VMIN] = 1;
            raw[CC + VTIME] = 0;
            Tty.setAttr(0, raw);
            return old;
        } catch (final ErrnoException e) {
            LOG.log(Level.WARNING, "stdio: the terminal stays as it is: {0}", e.reason());
            return null;
        }
    }

    private static void set(final byte[] termios, final int at, final int bits) {
        Tty.setFlags(termios, at, bits);
    }

    private static void clear(final byte[] termios, final int at, final int bits) {
        Tty.clearFlags(termios, at, bits);
    }

    @Override
    protected void doClose() {
        super.doClose();
        if (saved != null) {
            try {
                Tty.setAttr(0, saved);
            } catch (final ErrnoException e) {
                LOG.log(Level.WARNING, "stdio: the terminal could not be restored: {0}", e.reason());
            }
        }
        IN_USE.set(false);
    }
}
