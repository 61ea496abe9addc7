package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sys;
import org.vsbridge.libc.Tty;

/**
 * {@code serial} (CLI alias {@code tty}): a host tty opened non-blocking without becoming our controlling
 * terminal, put in raw mode. Anything else that opens ({@code /dev/null}, a file, a FIFO) is used as it is, as QEMU does.
 */
final class SerialChardev extends FdChardev {

    private SerialChardev(final String id, final EventLoop loop, final Logfile logfile, final int fd) {
        super(id, ChardevKind.SERIAL, loop, logfile, fd, fd);
    }

    static SerialChardev open(final String id, final EventLoop loop, final Logfile logfile,
                              final ChardevBackend.Serial options) throws ChardevException {
        requireEpoll(loop, ChardevKind.SERIAL);
        final int fd;
        try {
            fd = Sys.open(options.device(), Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_NONBLOCK | Sys.O_CLOEXEC);
        } catch (final ErrnoException e) {
            throw new ChardevException("Could not open '" + options.device() + "': " + e.reason());
        }
        try {
            // QEMU's tty_serial_init: raw, 8 bits, no echo; the line speed is left as the device has it. QEMU takes
            // what is not a tty too (/dev/null, a file, a FIFO) and uses it as it is: so does the bridge.
            if (Tty.isTerminal(fd)) {
                Tty.makeRaw(fd);
            }
        } catch (final ErrnoException e) {
            Sys.closeQuietly(fd);
            throw new ChardevException("Could not set up '" + options.device() + "': " + e.reason());
        }
        final SerialChardev chardev = new SerialChardev(id, loop, logfile, fd);
        try {
            chardev.register();
        } catch (final ChardevException e) {
            chardev.close();
            throw e;
        }
        return chardev;
    }
}
