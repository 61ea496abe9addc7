package org.vsbridge.chardev;

import com.sun.jna.LastErrorException;
import io.netty.channel.EventLoop;

/**
 * {@code pipe}: FIFOs {@code PATH.in} (input) and {@code PATH.out} (output), or {@code PATH} for both, as QEMU's
 * char-pipe. They are opened read-write, so opening never waits for a peer and a peer that leaves is no end of
 * input: the chardev stays open, bytes flow whenever someone is at the other end.
 */
final class PipeChardev extends FdChardev {

    private PipeChardev(final String id, final EventLoop loop, final Logfile logfile, final int in, final int out) {
        super(id, ChardevKind.PIPE, loop, logfile, in, out);
    }

    static PipeChardev open(final String id, final EventLoop loop, final Logfile logfile,
                            final ChardevBackend.Pipe options) throws ChardevException {
        requireEpoll(loop, ChardevKind.PIPE);
        final int flags = Posix.O_RDWR | Posix.O_NONBLOCK | Posix.O_CLOEXEC;
        int in = -1;
        int out = -1;
        try {
            try {
                in = Posix.open(options.device() + ".in", flags, 0);
                out = Posix.open(options.device() + ".out", flags, 0);
            } catch (final LastErrorException e) {
                // As QEMU: unless both halves exist, the path itself serves both ways.
                Posix.closeQuietly(in);
                Posix.closeQuietly(out);
                in = Posix.open(options.device(), flags, 0);
                out = in;
            }
        } catch (final LastErrorException e) {
            throw new ChardevException("Could not open '" + options.device() + "': " + Posix.reason(e));
        }
        final PipeChardev chardev = new PipeChardev(id, loop, logfile, in, out);
        try {
            chardev.register();
        } catch (final ChardevException e) {
            chardev.close();
            throw e;
        }
        return chardev;
    }
}
