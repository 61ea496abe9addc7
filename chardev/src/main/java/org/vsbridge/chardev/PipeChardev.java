package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sys;

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
        final int flags = Sys.O_RDWR | Sys.O_NONBLOCK | Sys.O_CLOEXEC;
        int in = -1;
        int out = -1;
        try {
            try {
                in = Sys.open(options.device() + ".in", flags);
                out = Sys.open(options.device() + ".out", flags);
            } catch (final ErrnoException e) {
                // As QEMU: unless both halves exist, the path itself serves both ways.
                Sys.closeQuietly(in);
                Sys.closeQuietly(out);
                in = Sys.open(options.device(), flags);
                out = in;
            }
        } catch (final ErrnoException e) {
            throw new ChardevException("Could not open '" + options.device() + "': " + e.reason());
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
