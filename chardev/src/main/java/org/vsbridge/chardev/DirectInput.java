package org.vsbridge.chardev;

import io.netty.channel.unix.FileDescriptor;
import java.io.IOException;

/**
 * A connected peer's input, lent to a frontend that reads the socket itself, straight into guest memory, instead
 * of taking buffers from the chardev's event loop. While it is lent the chardev stops reading the connection, and
 * the reads it still makes (Netty reads on a peer's half-close even with reads off) exclude the reader's: each
 * side announces its read in a flag and checks the other's (Dekker's protocol on two volatiles). The reader
 * skips while the chardev reads; the chardev waits out a read already running. Whatever the chardev read is
 * handed to the frontend before its read ends, so a frontend that takes its own buffered input before reading
 * the socket keeps the byte order.
 *
 * <p>The descriptor is a {@code dup} of the channel's, so it stays valid (and never names another file) until
 * the reader closes it, whatever the channel does meanwhile. The reader gives the input back with
 * {@link #giveBack()} on its own thread, after its last read; the chardev then reads the connection again
 * (see {@link Chardev#directInputReturned}). {@link #reclaimRequested()} tells the reader that the chardev wants
 * it back (the peer half-closed, the connection is closing): it should give it back soon.
 */
public final class DirectInput {

    private static final int F_DUPFD_CLOEXEC = 1030;

    private final FileDescriptor fd;
    private volatile boolean lent = true;
    private volatile boolean reclaim;
    /** The reader is in {@link #read}. */
    private volatile boolean readerReading;
    /** The chardev's event loop is reading the connection (between its allocate and readComplete). */
    private volatile boolean loopReading;

    private DirectInput(final int fd) {
        this.fd = new FileDescriptor(fd);
    }

    /** Duplicates {@code fd} (close-on-exec); the caller keeps its own descriptor. */
    static DirectInput dup(final int fd) throws IOException {
        try {
            return new DirectInput(Posix.fcntl(fd, F_DUPFD_CLOEXEC, 0));
        } catch (final com.sun.jna.LastErrorException e) {
            throw new IOException("dup of fd " + fd + " failed: errno " + e.getErrorCode(), e);
        }
    }

    /** The descriptor, for the reader's own readiness watch (remove the watch before {@link #giveBack()}). */
    public int fd() {
        return fd.intValue();
    }

    /**
     * Reader: start a read section; false while the chardev is reading the connection (skip, watch the descriptor
     * and try again). Inside the section the chardev neither reads nor hands input over, so the reader may look at
     * input it already took from the chardev and then read the socket, in that order. End it with
     * {@link #endRead()}.
     */
    public boolean beginRead() {
        readerReading = true;
        if (loopReading) {
            readerReading = false;
            return false;
        }
        return true;
    }

    /**
     * Reader, inside a read section: {@code read} up to {@code length} bytes into {@code address} (non-blocking
     * socket). Returns the bytes read, 0 when nothing is waiting, -1 at end of stream; throws when the connection
     * failed (reset).
     */
    public int read(final long address, final int length) throws IOException {
        return fd.readAddress(address, 0, length);
    }

    /** Reader: the read section is over. */
    public void endRead() {
        readerReading = false;
    }

    /** Event loop, before the chardev reads the connection while the input is lent: waits out the reader's read. */
    void loopReadBegins() {
        loopReading = true;
        int spins = 0;
        while (readerReading) {
            if (++spins < 1000) {
                Thread.onSpinWait();
            } else {
                Thread.yield(); // the reader was preempted inside one read() call
            }
        }
    }

    /** Event loop: the chardev's read (and the hand-over of what it read) is over. */
    void loopReadEnds() {
        loopReading = false;
    }

    /** True while lent: the chardev does not read. */
    boolean lent() {
        return lent;
    }

    /** Event loop: ask the reader to give the input back. */
    void requestReclaim() {
        reclaim = true;
    }

    /** Reader: the chardev asked for the input back. */
    public boolean reclaimRequested() {
        return reclaim;
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
