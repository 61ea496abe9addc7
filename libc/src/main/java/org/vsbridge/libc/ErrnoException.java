package org.vsbridge.libc;

import com.sun.jna.Native;
import java.io.IOException;

/**
 * A failed libc call: the errno, and a message naming the call with the strerror text
 * ({@code "connect(/run/x.sock): Connection refused (errno 111)"}). {@link #reason()} is the strerror text alone, for
 * messages that must read like QEMU's.
 */
public final class ErrnoException extends IOException {

    private static final long serialVersionUID = 1L;

    private final int errno;

    /** A failure of {@code call} with {@code errno}. */
    public ErrnoException(final String call, final int errno) {
        super(call + ": " + Sys.strerror(errno) + " (errno " + errno + ")");
        this.errno = errno;
    }

    private ErrnoException(final int errno, final String message) {
        super(message);
        this.errno = errno;
    }

    /** The failure of {@code call} that just returned -1 on this thread. */
    static ErrnoException last(final String call) {
        return new ErrnoException(call, Native.getLastError());
    }

    /** The same errno under a message of the caller's own wording. */
    public static ErrnoException withMessage(final int errno, final String message) {
        return new ErrnoException(errno, message);
    }

    public int errno() {
        return errno;
    }

    /** The strerror text of {@link #errno()}, e.g. "Connection refused". */
    public String reason() {
        return Sys.strerror(errno);
    }
}
