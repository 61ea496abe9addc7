package org.vsbridge.chardev;

import io.netty.channel.unix.FileDescriptor;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * A connected peer's input, lent to a frontend that reads the socket itself, straight into guest memory, instead
 * of taking buffers from the chardev's event loop. The loan is granted and returned by messages, and at any
 * moment one thread reads the socket:
 * <ul>
 * <li>The chardev's event loop grants it: it stops watching the connection for input (no read interest, no
 *     half-close interest, see {@link EpollInterest}), then hands this object to the frontend, which passes it to
 *     its reader and wakes it.
 * <li>The reader reads the socket until it sees the end of the stream or an error itself, or until it is asked to
 *     give the input back ({@link #reclaimRequested()}, set by the event loop, which never waits for the reader);
 *     either way it stops reading and reports with {@link #giveBack()} and a message to the event loop
 *     ({@link Chardev#directInputReturned}), which then watches and reads the connection again (and so sees the
 *     end of the stream the reader left in the socket).
 * <li>The only read the event loop still makes during a loan is on a socket error (epoll reports errors whatever
 *     the interest): it claims the input first ({@link #claimForLoop()}); the reader sees the claim before its
 *     next read and gives the input back. If the reader is inside a read just then the event loop does not read
 *     (and does not wait): the connection is failing, and it is closed.
 * </ul>
 *
 * <p>The descriptor is a {@code dup} of the channel's, so it stays valid (and never names another file) until
 * the reader closes it, whatever the channel does meanwhile.
 */
public final class DirectInput {

    /** State bits: the reader is inside a read section; the event loop wants the input back. */
    private static final int READING = 1;
    private static final int RECLAIM = 2;

    private final FileDescriptor fd;
    private final AtomicInteger state = new AtomicInteger();
    private volatile boolean lent = true;
    /** The reader saw the end of the stream or an error: the event loop will read that, no new loan. */
    private volatile boolean ended;

    private DirectInput(final int fd) {
        this.fd = new FileDescriptor(fd);
    }

    /** Duplicates {@code fd} (close-on-exec); the caller keeps its own descriptor. */
    static DirectInput dup(final int fd) throws IOException {
        return new DirectInput(Sys.dup(fd));
    }

    /** The descriptor, for the reader's own readiness watch (remove the watch before {@link #giveBack()}). */
    public int fd() {
        return fd.intValue();
    }

    /**
     * Reader: start a read section; false once the event loop asked for the input back (then give it back, do not
     * read). Inside the section the event loop does not read, so the reader may look at input it already took
     * from the chardev and then read the socket, in that order. End it with {@link #endRead()}.
     */
    public boolean beginRead() {
        return state.compareAndSet(0, READING);
    }

    /**
     * Reader, inside a read section: {@code read} up to {@code length} bytes into {@code address} (non-blocking
     * socket). Returns the bytes read, 0 when nothing is waiting, -1 at end of stream; throws when the connection
     * failed (reset).
     */
    public int read(final long address, final int length) throws IOException {
        final int n;
        try {
            n = fd.readAddress(address, 0, length);
        } catch (final IOException e) {
            ended = true;
            throw e;
        }
        if (n < 0) {
            ended = true;
        }
        return n;
    }

    /**
     * Reader, when its readiness watch fired: true when the peer reset, or closed and left nothing to read (then
     * give the input back; the chardev reads that end and disconnects). A reader whose guest takes no input would
     * otherwise never read, and never see the peer leave. Polled at once.
     */
    public boolean peerGone() {
        if (Sockets.peerGone(fd.intValue())) {
            ended = true;
            return true;
        }
        return false;
    }

    /** Reader: the read section is over. */
    public void endRead() {
        state.getAndUpdate(s -> s & ~READING);
    }

    /** True once a read of the reader saw the end of the stream or failed. */
    boolean ended() {
        return ended;
    }

    /** True while lent: the chardev does not read. */
    boolean lent() {
        return lent;
    }

    /**
     * Event loop: ask for the input back. Returns true the first time. The reader gives it back at its next look
     * (it is woken by the frontend, see {@link ChardevFrontend#directInputReclaimed()}).
     */
    boolean requestReclaim() {
        return (state.getAndUpdate(s -> s | RECLAIM) & RECLAIM) == 0;
    }

    /**
     * Event loop, about to read the connection during the loan (a socket error): asks for the input back and
     * returns true when the reader is not inside a read, so the event loop may read now and the reader will not
     * read again. False while the reader reads: the event loop must not read.
     */
    boolean claimForLoop() {
        return (state.getAndUpdate(s -> s | RECLAIM) & READING) == 0;
    }

    /** Reader: the chardev asked for the input back. */
    public boolean reclaimRequested() {
        return (state.get() & RECLAIM) != 0;
    }

    /** Reader, after its last read: close the duplicate and end the loan (the chardev may read from now on). */
    public void giveBack() {
        try {
            fd.close();
        } catch (final IOException e) {
            // EBADF or EINTR on close: the descriptor is gone either way on Linux.
        }
        lent = false;
    }
}
