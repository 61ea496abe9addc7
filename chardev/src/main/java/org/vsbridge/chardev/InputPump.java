package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.Semaphore;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Reads a blocking stream (stdin, an input file or FIFO) on a small daemon thread and hands the chunks to the
 * chardev's event loop. At most one chunk is in flight: the thread reads the next one only after the loop
 * delivered the previous one, so a paused frontend stops the reads instead of filling memory.
 */
final class InputPump {

    private static final Logger LOG = Logger.getLogger(InputPump.class.getName());

    /** Bytes per read; the same chunk size QEMU's chardev layer reads with. */
    static final int CHUNK = 4096;

    private final String chardevId;
    private final InputStream in;
    private final EventLoop loop;
    private final Consumer<ByteBuf> sink;
    private final Runnable onEof;
    private final Semaphore credit = new Semaphore(0);
    private final Thread thread;

    /** Event loop only. */
    private ByteBuf pending;
    private boolean eofPending;
    private boolean deliver;
    private boolean started;
    private volatile boolean stopped;

    /**
     * @param sink  gets each chunk on the event loop while delivery is on; owns it
     * @param onEof runs once on the event loop after the last chunk was delivered
     */
    InputPump(final String chardevId, final InputStream in, final EventLoop loop, final Consumer<ByteBuf> sink,
              final Runnable onEof) {
        this.chardevId = chardevId;
        this.in = in;
        this.loop = loop;
        this.sink = sink;
        this.onEof = onEof;
        this.thread = new Thread(this::run, "chardev-" + chardevId + "-input");
        this.thread.setDaemon(true);
    }

    /** Event loop: turn delivery on or off. Nothing is read until the first time it is turned on. */
    void setDeliver(final boolean on) {
        deliver = on;
        if (!on || stopped) {
            return;
        }
        if (!started) {
            started = true;
            thread.start();
            credit.release();
            return;
        }
        flush();
    }

    private void flush() {
        if (pending != null) {
            final ByteBuf b = pending;
            pending = null;
            sink.accept(b);
            credit.release();
        }
        if (pending == null && eofPending) {
            eofPending = false;
            onEof.run();
        }
    }

    /** Event loop (or after the loop ended): stop reading and drop what is held. */
    void stop(final boolean closeStream) {
        stopped = true;
        if (pending != null) {
            pending.release();
            pending = null;
        }
        thread.interrupt();
        if (closeStream) {
            try {
                in.close();
            } catch (final IOException e) {
                LOG.log(Level.FINE, "closing input of chardev " + chardevId, e);
            }
        }
    }

    private void run() {
        final byte[] scratch = new byte[CHUNK];
        try {
            while (!stopped) {
                credit.acquire();
                final int n = in.read(scratch);
                if (stopped) {
                    return;
                }
                if (n < 0) {
                    loop.execute(this::eofOnLoop);
                    return;
                }
                if (n == 0) {
                    credit.release();
                    continue;
                }
                final ByteBuf chunk = ByteBufAllocator.DEFAULT.buffer(n, n).writeBytes(scratch, 0, n);
                try {
                    loop.execute(() -> chunkOnLoop(chunk));
                } catch (final RuntimeException e) {
                    chunk.release();
                    return;
                }
            }
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (final IOException e) {
            if (!stopped) {
                LOG.log(Level.WARNING, "chardev ''{0}'': input read failed, treating it as end of input: {1}",
                    new Object[] {chardevId, e.getMessage()});
                loop.execute(this::eofOnLoop);
            }
        }
    }

    private void chunkOnLoop(final ByteBuf chunk) {
        if (stopped) {
            chunk.release();
            return;
        }
        pending = chunk;
        if (deliver) {
            flush();
        }
    }

    private void eofOnLoop() {
        if (stopped) {
            return;
        }
        eofPending = true;
        if (deliver) {
            flush();
        }
    }
}
