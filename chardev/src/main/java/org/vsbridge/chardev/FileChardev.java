package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.GatheringByteChannel;
import java.nio.file.Files;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code file} (and the output half of {@code stdio}): output to a file, truncated or appended; input, when
 * given, from another file read by an {@link InputPump}. Open from creation. As in QEMU's fd chardev, the end of
 * the input is a CLOSED event; output after that is dropped like any output to a closed chardev.
 */
class FileChardev extends AbstractChardev {

    private static final Logger LOG = Logger.getLogger(FileChardev.class.getName());

    private final String outName;
    private final GatheringByteChannel out;
    private final boolean closeOut;
    private final InputPump input;
    private final boolean closeIn;
    private volatile boolean open = true;
    private boolean outputFailed;

    FileChardev(final String id, final ChardevKind kind, final EventLoop loop, final Logfile logfile,
                final String outName, final GatheringByteChannel out, final boolean closeOut,
                final InputStream in, final boolean closeIn) {
        super(id, kind, loop, logfile);
        this.outName = outName;
        this.out = out;
        this.closeOut = closeOut;
        this.input = in == null ? null : new InputPump(id, in, loop, this::deliver, this::endOfInput);
        this.closeIn = closeIn;
    }

    static FileChardev open(final String id, final EventLoop loop, final Logfile logfile,
                            final ChardevBackend.File options) throws ChardevException {
        final FileChannel out = openOutput(options.out(), options.append(), "open");
        InputStream in = null;
        if (options.in() != null) {
            try {
                in = Files.newInputStream(Path.of(options.in()), StandardOpenOption.READ);
            } catch (final IOException | RuntimeException e) {
                closeQuietly(out);
                throw new ChardevException("Could not open '" + options.in() + "': " + reason(e));
            }
        }
        return new FileChardev(id, ChardevKind.FILE, loop, logfile, options.out(), out, true, in, true);
    }

    /**
     * Opens an output file as QEMU does: created if missing (mode 0666 less umask), truncated unless appending. A
     * failure is worded as QEMU 10.2 words it: "Could not open" for a file chardev's output, "Could not create" for
     * a logfile ({@code verb}).
     */
    static FileChannel openOutput(final String name, final boolean append, final String verb)
        throws ChardevException {
        try {
            return FileChannel.open(Path.of(name), StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                append ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING);
        } catch (final IOException | RuntimeException e) {
            throw new ChardevException("Could not " + verb + " '" + name + "': " + reason(e));
        }
    }

    /** The errno-like reason of an I/O failure, as strerror words it where we can tell. */
    static String reason(final Exception e) {
        if (e instanceof NoSuchFileException) {
            return "No such file or directory";
        }
        if (e instanceof AccessDeniedException) {
            return "Permission denied";
        }
        if (e instanceof java.nio.file.FileSystemException f && f.getReason() != null) {
            return f.getReason();
        }
        return String.valueOf(e.getMessage());
    }

    private static void closeQuietly(final FileChannel c) {
        try {
            c.close();
        } catch (final IOException ignored) {
            // nothing to report: the open already failed
        }
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    @Override
    protected void inputStateChanged() {
        if (input != null && open) {
            input.setDeliver(inputWanted());
        }
    }

    private void deliver(final ByteBuf chunk) {
        final ChardevFrontend f = frontend;
        if (f == null) {
            chunk.release();
            return;
        }
        f.received(chunk);
    }

    private void endOfInput() {
        if (!open) {
            return;
        }
        open = false;
        LOG.log(Level.INFO, "chardev ''{0}'': end of input, closed", id);
        if (frontend != null) {
            frontend.closed();
        }
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        try {
            if (open && !outputFailed) {
                while (data.isReadable()) {
                    data.readBytes(out, data.readableBytes());
                }
            }
        } catch (final IOException e) {
            outputFailed = true;
            LOG.log(Level.WARNING, "chardev ''{0}'': write to {1} failed, output is dropped from now on: {2}",
                new Object[] {id, outName, e.getMessage()});
        } finally {
            data.release();
        }
        return true;
    }

    @Override
    protected void doClose() {
        open = false;
        if (input != null) {
            input.stop(closeIn);
        }
        if (closeOut) {
            try {
                out.close();
            } catch (final IOException e) {
                LOG.log(Level.FINE, "closing " + outName, e);
            }
        }
    }
}
