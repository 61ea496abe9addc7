package org.vsbridge.chardev;

import io.netty.channel.unix.FileDescriptor;
import java.io.IOException;
import org.vsbridge.libc.Sys;

/**
 * A second descriptor for a connected peer's socket, through which a frontend writes guest output itself,
 * straight from guest memory, instead of handing buffers to the chardev's event loop. It is a {@code dup} of the
 * channel's descriptor: closing the channel does not close it, so a writer that still holds it can never write
 * into a descriptor number the process has reused for something else. The socket is released (and the peer sees
 * EOF) once both are closed.
 *
 * <p>Only a chardev whose bytes reach the peer unchanged offers one (no TLS, telnet, websocket or logfile in
 * between): see {@link Chardev#openDirectOutput()}. Not thread-safe: one writer at a time, and whoever closes it
 * must know that no write is running (the frontend's own hand-over protocol decides that).
 */
public final class DirectOutput implements AutoCloseable {

    private final FileDescriptor fd;

    private DirectOutput(final int fd) {
        this.fd = new FileDescriptor(fd);
    }

    /** Duplicates {@code fd} (close-on-exec); the caller keeps its own descriptor. */
    static DirectOutput dup(final int fd) throws IOException {
        return new DirectOutput(Sys.dup(fd));
    }

    /**
     * {@code writev} of {@code count} {@code struct iovec}s at {@code iovAddress} (non-blocking socket).
     * Returns the bytes written, 0 when the socket would block; throws when the peer is gone.
     */
    public long writev(final long iovAddress, final int count) throws IOException {
        return fd.writevAddresses(iovAddress, count);
    }

    /** {@code write} of {@code length} bytes at {@code address}; 0 when the socket would block, throws when the
     *  peer is gone. */
    public int write(final long address, final int length) throws IOException {
        return fd.writeAddress(address, 0, length);
    }

    /** The descriptor, for the writer's own writability watch (remove the watch before {@link #close()}). */
    public int fd() {
        return fd.intValue();
    }

    @Override
    public void close() {
        try {
            fd.close();
        } catch (final IOException e) {
            // EBADF or EINTR on close: the descriptor is gone either way on Linux.
        }
    }
}
