package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.epoll.EpollIoEvent;
import io.netty.channel.epoll.EpollIoHandle;
import io.netty.channel.epoll.EpollIoOps;
import io.netty.channel.unix.FileDescriptor;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.Sys;

/**
 * A chardev over raw file descriptors that Netty has no channel for (pty master, host tty, FIFOs, vsock): the
 * descriptors are non-blocking and watched by the chardev's own epoll event loop through {@link EpollIoHandle}.
 * One descriptor may serve both directions, or one each ({@code pipe} with {@code path.in}/{@code path.out}).
 *
 * <p>Input is read in {@link InputPump#CHUNK}-sized buffers only while the frontend wants it (what is not
 * read stays in the kernel: that is the backpressure). Output is written at once; what the fd does not
 * take is kept, {@link #write} returns false, and {@link ChardevFrontend#writable()} follows when EPOLLOUT has
 * drained it.
 */
abstract class FdChardev extends AbstractChardev {

    private static final Logger LOG = Logger.getLogger(FdChardev.class.getName());

    private final FdHandle in;
    private final FdHandle out;
    /** Event loop only: output the fd did not take yet, in order. */
    private final ArrayDeque<ByteBuf> pendingOut = new ArrayDeque<>();

    private final Runnable readTask = () -> {
        readScheduled = false;
        readInput();
    };
    /** Event loop only. */
    private boolean readScheduled;

    /** The host side is there (pty: a slave is open); subclasses change it. */
    protected volatile boolean connected = true;

    FdChardev(final String id, final ChardevKind kind, final EventLoop loop, final Logfile logfile, final int inFd,
              final int outFd) {
        super(id, kind, loop, logfile);
        this.in = inFd < 0 ? null : new FdHandle(inFd);
        this.out = outFd < 0 ? null : outFd == inFd ? in : new FdHandle(outFd);
    }

    /** Throws unless the loop can watch raw descriptors (the native epoll transport). */
    static void requireEpoll(final EventLoop loop, final ChardevKind kind) throws ChardevException {
        if (!Sys.available() || !(loop instanceof IoEventLoop io) || !io.isCompatible(EpollIoHandle.class)) {
            throw new ChardevException("chardev backend '" + kind.qapiName()
                + "' needs Linux and the native epoll transport, which is not available here");
        }
    }

    /** Registers the descriptors with the event loop; call once from outside the loop after construction. */
    final void register() throws ChardevException {
        try {
            loop.submit(() -> {
                if (in != null) {
                    in.register();
                }
                if (out != null && out != in) {
                    out.register();
                }
                started();
                return null;
            }).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChardevException("interrupted while opening chardev '" + id + "'");
        } catch (final java.util.concurrent.ExecutionException e) {
            throw new ChardevException("chardev '" + id + "' could not watch its descriptor: "
                + Errno.reason(e.getCause()), e.getCause());
        }
    }

    /** True when epoll refused {@code e}'s descriptor as one it cannot watch (EPERM). */
    private static boolean notPollable(final Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (t instanceof io.netty.channel.unix.Errors.NativeIoException n && Math.abs(n.expectedErr()) == 1) {
                return true;
            }
            if (t.getMessage() != null && t.getMessage().contains("Operation not permitted")) {
                return true;
            }
        }
        return false;
    }

    /** Event loop, once registered: subclasses start polling or announce their state here. */
    protected void started() {
        inputStateChanged();
    }

    @Override
    public boolean isOpen() {
        return connected && !isClosed();
    }

    /** The descriptor input is read from (-1 without input). */
    protected final int inFd() {
        return in == null ? -1 : in.fd.intValue();
    }

    /** The descriptor output is written to (-1 without output). */
    protected final int outFd() {
        return out == null ? -1 : out.fd.intValue();
    }

    @Override
    protected void inputStateChanged() {
        // Edge-triggered: bytes that arrived while input was off raise no new event, so look now.
        if (in != null && inputWanted() && connected && !readScheduled) {
            readScheduled = true;
            loop.execute(readTask);
        }
    }

    /** Event loop: the host side came or went (pty). Watches follow and the frontend hears it. */
    protected final void setConnected(final boolean now) {
        if (connected == now || isClosed()) {
            return;
        }
        connected = now;
        LOG.log(Level.INFO, "chardev ''{0}'': {1}", new Object[] {id, now ? "connected: " + filename()
            : "disconnected"});
        if (!now) {
            dropPendingOutput();
        }
        inputStateChanged();
        final ChardevFrontend f = frontend;
        if (f != null) {
            if (now) {
                f.opened();
            } else {
                f.closed();
            }
        }
    }

    /** Output while not connected: dropped (only the logfile has it), unless a subclass says the peer is back. */
    protected boolean writeWhileDisconnected() {
        return false;
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        if (out == null || (!connected && !writeWhileDisconnected())) {
            data.release();
            return true;
        }
        if (!pendingOut.isEmpty()) {
            pendingOut.add(data);
            return false;
        }
        if (!writeSome(data)) {
            return true; // failed: dropped and logged
        }
        if (data.isReadable()) {
            pendingOut.add(data);
            return false;
        }
        data.release();
        return true;
    }

    /** Writes what the fd takes now; false (data released) when the fd failed. */
    private boolean writeSome(final ByteBuf data) {
        try {
            while (data.isReadable()) {
                final int n;
                if (data.hasMemoryAddress()) {
                    n = out.fd.writeAddress(data.memoryAddress(), data.readerIndex(), data.writerIndex());
                } else {
                    final ByteBuf direct = ByteBufAllocator.DEFAULT.directBuffer(data.readableBytes());
                    try {
                        direct.writeBytes(data, data.readerIndex(), data.readableBytes());
                        n = out.fd.writeAddress(direct.memoryAddress(), direct.readerIndex(), direct.writerIndex());
                    } finally {
                        direct.release();
                    }
                }
                if (n <= 0) {
                    return true; // EAGAIN: keep the rest
                }
                data.skipBytes(n);
            }
            return true;
        } catch (final IOException e) {
            data.release();
            writeFailed(e);
            return false;
        }
    }

    /** Output failed (the peer went away): the default drops output; pty turns it into a disconnect. */
    protected void writeFailed(final IOException e) {
        LOG.log(Level.FINE, "chardev ''{0}'': write failed: {1}", new Object[] {id, Errno.reason(e)});
        dropPendingOutput();
    }

    private void flushPending() {
        while (!pendingOut.isEmpty()) {
            final ByteBuf head = pendingOut.peek();
            if (!writeSome(head)) {
                pendingOut.poll();
                continue;
            }
            if (head.isReadable()) {
                return;
            }
            pendingOut.poll().release();
        }
        final ChardevFrontend f = frontend;
        if (f != null) {
            f.writable();
        }
    }

    private void dropPendingOutput() {
        final boolean hadPending = !pendingOut.isEmpty();
        ByteBuf b;
        while ((b = pendingOut.poll()) != null) {
            b.release();
        }
        if (hadPending && frontend != null) {
            frontend.writable(); // writes are dropped from now on, so nothing holds the frontend back
        }
    }

    private void readInput() {
        if (in == null) {
            return;
        }
        while (inputWanted() && connected && !isClosed()) {
            final ByteBuf buf = ByteBufAllocator.DEFAULT.directBuffer(InputPump.CHUNK);
            final int n;
            try {
                n = in.fd.readAddress(buf.memoryAddress(), 0, buf.capacity());
            } catch (final IOException e) {
                buf.release();
                readFailed(e);
                return;
            }
            if (n == 0) {
                buf.release();
                return; // EAGAIN
            }
            if (n < 0) {
                buf.release();
                endOfInput();
                return;
            }
            buf.writerIndex(n);
            frontend.received(buf);
            if (in.alwaysReady) {
                // A file is always readable: one chunk per task, so that a large one does not hold the loop.
                inputStateChanged();
                return;
            }
        }
    }

    /** End of input (a FIFO opened read-only whose writer left, a tty hang-up): closed, as QEMU's fd chardev. */
    protected void endOfInput() {
        LOG.log(Level.INFO, "chardev ''{0}'': end of input", id);
        setConnected(false);
    }

    /** A read failed (pty: EIO once the slave closed). */
    protected void readFailed(final IOException e) {
        LOG.log(Level.INFO, "chardev ''{0}'': read failed, disconnected: {1}", new Object[] {id, Errno.reason(e)});
        setConnected(false);
    }

    /** Event loop: EPOLLHUP or EPOLLERR on the input fd (pty: the slave closed). */
    protected void hangUp() {
        endOfInput();
    }

    @Override
    protected void doClose() {
        // Accepted output goes out if the fd takes it now; what it cannot take is dropped, counted in the log.
        long dropped = 0;
        ByteBuf b;
        while ((b = pendingOut.poll()) != null) {
            if (connected && dropped == 0 && writeSome(b) && !b.isReadable()) {
                b.release();
                continue;
            }
            if (b.refCnt() > 0) {
                dropped += b.readableBytes();
                b.release();
            }
        }
        if (dropped > 0) {
            LOG.log(Level.WARNING, "chardev ''{0}'': closed with {1} bytes of output the peer did not take",
                new Object[] {id, dropped});
        }
        connected = false;
        if (in != null) {
            in.close();
        }
        if (out != null && out != in) {
            out.close();
        }
    }

    /**
     * One watched descriptor, registered once, edge-triggered: epoll reports a lasting condition (data waiting,
     * room to write, a pty master without a slave) once per change, so nothing spins while the frontend does not
     * want input or the peer is gone, and whoever turns input back on reads what is already there.
     */
    private final class FdHandle implements EpollIoHandle {
        /** EPOLLERR and EPOLLHUP: reported by epoll whatever the interest. */
        private static final int ERR_HUP = 0x008 | 0x010;

        final FileDescriptor fd;
        IoRegistration registration;
        /** Not watched by epoll: reads and writes never wait on it. */
        boolean alwaysReady;

        FdHandle(final int fd) {
            this.fd = new FileDescriptor(fd);
        }

        @Override
        public FileDescriptor fd() {
            return fd;
        }

        void register() throws Exception {
            EpollIoOps ops = EpollIoOps.EPOLLET;
            if (this == in) {
                ops = ops.with(EpollIoOps.EPOLLIN);
            }
            if (this == out) {
                ops = ops.with(EpollIoOps.EPOLLOUT);
            }
            try {
                registration = ((IoEventLoop) loop).register(this).get();
                registration.submit(ops);
            } catch (final Exception e) {
                if (!notPollable(e)) {
                    throw e;
                }
                if (registration != null) {
                    registration.cancel();
                    registration = null;
                }
                // A regular file or a device without poll (/dev/null): epoll refuses it (EPERM), and it never
                // makes a reader or writer wait. QEMU polls it as always ready; so does this chardev.
                alwaysReady = true;
            }
        }

        @Override
        public void handle(final IoRegistration reg, final IoEvent event) {
            if (registration == null || isClosed()) {
                return;
            }
            final int ops = ((EpollIoEvent) event).ops().value();
            try {
                if (this == out && !pendingOut.isEmpty() && (ops & (EpollIoOps.EPOLLOUT.value() | ERR_HUP)) != 0) {
                    flushPending();
                }
                if (this == in && (ops & EpollIoOps.EPOLLIN.value()) != 0) {
                    readInput();
                }
                if (this == in && (ops & ERR_HUP) != 0 && (ops & EpollIoOps.EPOLLIN.value()) == 0 && connected) {
                    hangUp();
                }
            } catch (final RuntimeException e) {
                LOG.log(Level.WARNING, "chardev '" + id + "': error in I/O handler", e);
            }
        }

        @Override
        public void close() {
            if (registration != null) {
                registration.cancel();
                registration = null;
            }
            try {
                fd.close();
            } catch (final IOException e) {
                LOG.log(Level.FINE, "chardev ''{0}'': close: {1}", new Object[] {id, e.getMessage()});
            }
        }
    }
}
