package org.vsbridge.chardev;

import com.sun.jna.LastErrorException;
import io.netty.channel.EventLoop;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code serial} (CLI alias {@code tty}): a host tty opened non-blocking without becoming our controlling
 * terminal, put in raw mode; {@link #sendBreak()} sends a real break with {@code tcsendbreak}.
 */
final class SerialChardev extends FdChardev {

    private static final Logger LOG = Logger.getLogger(SerialChardev.class.getName());

    private SerialChardev(final String id, final EventLoop loop, final Logfile logfile, final int fd) {
        super(id, ChardevKind.SERIAL, loop, logfile, fd, fd);
    }

    static SerialChardev open(final String id, final EventLoop loop, final Logfile logfile,
                              final ChardevBackend.Serial options) throws ChardevException {
        requireEpoll(loop, ChardevKind.SERIAL);
        final int fd;
        try {
            fd = Posix.open(options.device(),
                Posix.O_RDWR | Posix.O_NOCTTY | Posix.O_NONBLOCK | Posix.O_CLOEXEC, 0);
        } catch (final LastErrorException e) {
            throw new ChardevException("Could not open '" + options.device() + "': " + Posix.reason(e));
        }
        try {
            if (Posix.isatty(fd) != 1) {
                throw new ChardevException("'" + options.device() + "' is not a tty");
            }
            // QEMU's tty_serial_init: raw, 8 bits, no echo; the line speed is left as the device has it.
            final byte[] termios = new byte[Posix.TERMIOS_SIZE];
            Posix.tcgetattr(fd, termios);
            Posix.cfmakeraw(termios);
            Posix.tcsetattr(fd, Posix.TCSANOW, termios);
        } catch (final LastErrorException e) {
            Posix.closeQuietly(fd);
            throw new ChardevException("Could not set up '" + options.device() + "': " + Posix.reason(e));
        } catch (final ChardevException e) {
            Posix.closeQuietly(fd);
            throw e;
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

    @Override
    public void sendBreak() {
        if (isClosed()) {
            return;
        }
        try {
            Posix.tcsendbreak(outFd(), 0);
            LOG.log(Level.FINE, "chardev ''{0}'': break sent", id);
        } catch (final LastErrorException e) {
            LOG.log(Level.WARNING, "chardev ''{0}'': break failed: {1}", new Object[] {id, Posix.reason(e)});
        }
    }
}
