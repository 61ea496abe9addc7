package org.vsbridge.libc;

import java.util.Arrays;

/** Descriptors received with one message. Reused by the connection; the owner closes what it does not keep. */
public final class FdList {

    private final int[] fds = new int[Sockets.MAX_FDS_PER_MESSAGE];
    private int count;
    private boolean truncated;

    public void clear() {
        count = 0;
        truncated = false;
    }

    void add(final int fd) {
        if (count < fds.length) {
            fds[count++] = fd;
        } else {
            Sys.closeQuietly(fd);
            truncated = true;
        }
    }

    void markTruncated() {
        truncated = true;
    }

    /** MSG_CTRUNC: the kernel dropped descriptors because the control buffer was too small. */
    public boolean truncated() {
        return truncated;
    }

    public int count() {
        return count;
    }

    public int get(final int i) {
        if (i >= count) {
            throw new IndexOutOfBoundsException("fd " + i + " of " + count);
        }
        return fds[i];
    }

    /** Hand over descriptor {@code i}: the list no longer closes it. */
    public int take(final int i) {
        final int fd = get(i);
        fds[i] = -1;
        return fd;
    }

    /** Close every descriptor not taken, then clear. Returns how many were closed. */
    public int closeAll() {
        int closed = 0;
        for (int i = 0; i < count; i++) {
            if (fds[i] >= 0) {
                Sys.closeQuietly(fds[i]);
                closed++;
            }
        }
        clear();
        return closed;
    }

    /** Append all received descriptors (continuation reads of one message). */
    public void addAll(final FdList other) {
        for (int i = 0; i < other.count; i++) {
            add(other.fds[i]);
        }
        if (other.truncated) {
            truncated = true;
        }
        other.count = 0;
    }

    @Override
    public String toString() {
        return Arrays.toString(Arrays.copyOf(fds, count));
    }
}
