package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A chardev's {@code logfile}: a copy of every byte written to the chardev, whether a peer takes it or not.
 * Best effort, as in QEMU: a failed write is logged once and the chardev goes on.
 */
final class Logfile implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(Logfile.class.getName());

    private final String chardevId;
    private final String path;
    private final FileChannel channel;
    private boolean failed;

    private Logfile(final String chardevId, final String path, final FileChannel channel) {
        this.chardevId = chardevId;
        this.path = path;
        this.channel = channel;
    }

    /** Opens (creates) {@code path}: truncated, or appended to when {@code append}; null path = no logfile. */
    static Logfile open(final String chardevId, final String path, final boolean append) throws ChardevException {
        if (path == null) {
            return null;
        }
        return new Logfile(chardevId, path, FileChardev.openOutput(path, append, "create"));
    }

    /** Appends the readable bytes of {@code data} without consuming them. */
    void append(final ByteBuf data) {
        if (failed) {
            return;
        }
        int index = data.readerIndex();
        int remaining = data.readableBytes();
        try {
            while (remaining > 0) {
                final int n = data.getBytes(index, channel, remaining);
                index += n;
                remaining -= n;
            }
        } catch (final IOException e) {
            failed = true;
            LOG.log(Level.WARNING, "chardev ''{0}'': logfile {1} write failed, logging stops: {2}",
                new Object[] {chardevId, path, e.getMessage()});
        }
    }

    @Override
    public void close() {
        try {
            channel.close();
        } catch (final IOException e) {
            LOG.log(Level.FINE, "closing logfile " + path, e);
        }
    }
}
