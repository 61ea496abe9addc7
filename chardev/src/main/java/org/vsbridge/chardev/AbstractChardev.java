package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What every backend shares: identity, the event loop, the one frontend, the logfile, idempotent close. State
 * other than the volatile fields belongs to the event loop.
 */
abstract class AbstractChardev implements Chardev {

    private static final Logger LOG = Logger.getLogger(AbstractChardev.class.getName());

    protected final String id;
    protected final ChardevKind kind;
    protected final EventLoop loop;
    private final Logfile logfile;

    /** Event loop only. */
    protected ChardevFrontend frontend;
    /** Event loop only: the frontend asked us to stop delivering input. */
    protected boolean readPaused;

    private volatile boolean closed;
    /** Mirrors {@code frontend != null} for other threads (chardev-remove's busy check). */
    private volatile boolean busy;

    AbstractChardev(final String id, final ChardevKind kind, final EventLoop loop, final Logfile logfile) {
        this.id = id;
        this.kind = kind;
        this.loop = loop;
        this.logfile = logfile;
    }

    @Override
    public final String id() {
        return id;
    }

    @Override
    public final String kind() {
        return kind.qapiName();
    }

    @Override
    public final EventLoop eventLoop() {
        return loop;
    }

    /** Default {@code filename} of query-chardev: the kind name (QEMU's type name without "chardev-"). */
    @Override
    public String filename() {
        return kind.qapiName();
    }

    /** True when guest output is also recorded in a logfile. */
    protected final boolean hasLogfile() {
        return logfile != null;
    }

    protected final boolean isClosed() {
        return closed;
    }

    @Override
    public final void attach(final ChardevFrontend newFrontend) {
        assert loop.inEventLoop();
        if (frontend != null && frontend != newFrontend) {
            throw new IllegalStateException("chardev '" + id + "' is busy: it already has a frontend");
        }
        frontend = newFrontend;
        busy = true;
        if (closed) {
            return;
        }
        // QEMU replays OPENED to a frontend that attaches to an open backend.
        if (isOpen()) {
            newFrontend.opened();
        }
        inputStateChanged();
    }

    @Override
    public final void detach() {
        assert loop.inEventLoop();
        frontend = null;
        busy = false;
        inputStateChanged();
    }

    @Override
    public boolean isBusy() {
        return busy;
    }

    @Override
    public final void setReadPaused(final boolean paused) {
        assert loop.inEventLoop();
        readPaused = paused;
        inputStateChanged();
    }

    /** Input may flow only to an attached frontend that has not paused it. */
    protected final boolean inputWanted() {
        return frontend != null && !readPaused && !closed;
    }

    /** The frontend or the pause changed: start or stop reading input. */
    protected void inputStateChanged() {
    }

    @Override
    public final boolean write(final ByteBuf data) {
        if (logfile != null) {
            logfile.append(data);
        }
        if (closed) {
            data.release();
            return true;
        }
        return doWrite(data);
    }

    /** Backend output; owns {@code data}. */
    protected abstract boolean doWrite(ByteBuf data);

    @Override
    public void sendBreak() {
        assert loop.inEventLoop();
        if (frontend != null) {
            frontend.breakReceived();
        }
    }

    /**
     * Closes on the event loop; from another thread it runs there and waits (briefly), or runs here when the
     * loop is already gone.
     */
    @Override
    public final void close() {
        if (closed) {
            return;
        }
        if (loop.inEventLoop()) {
            closeNow();
            return;
        }
        try {
            loop.submit(this::closeNow).await(5, TimeUnit.SECONDS);
        } catch (final RejectedExecutionException e) {
            closeNow();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!closed) {
            closeNow();
        }
    }

    private synchronized void closeNow() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            doClose();
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, "chardev '" + id + "': error while closing", e);
        }
        if (logfile != null) {
            logfile.close();
        }
        LOG.log(Level.FINE, "chardev ''{0}'' closed", id);
    }

    /** Releases the backend's resources; runs once. */
    protected abstract void doClose();
}
