package org.vsbridge.console;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Byte counters of one port. Single writer (the device worker) with ordered stores; any thread may read.
 * Counters, not log lines, because these change millions of times.
 */
public final class PortCounters {

    private static final VarHandle TO_HOST;
    private static final VarHandle FROM_HOST;
    private static final VarHandle DROPPED;

    static {
        try {
            final MethodHandles.Lookup lookup = MethodHandles.lookup();
            TO_HOST = lookup.findVarHandle(PortCounters.class, "bytesToHost", long.class);
            FROM_HOST = lookup.findVarHandle(PortCounters.class, "bytesFromHost", long.class);
            DROPPED = lookup.findVarHandle(PortCounters.class, "bytesDropped", long.class);
        } catch (final ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private long bytesToHost;
    private long bytesFromHost;
    private long bytesDropped;

    /** Guest output handed to the port's channel (toward the chardev). */
    public long bytesToHost() {
        return (long) TO_HOST.getAcquire(this);
    }

    /** Host input written into the guest's receive buffers. */
    public long bytesFromHost() {
        return (long) FROM_HOST.getAcquire(this);
    }

    /** Guest output thrown away: no host side connected (generic port) or the host side full (console port). */
    public long bytesDropped() {
        return (long) DROPPED.getAcquire(this);
    }

    void addToHost(final long n) {
        TO_HOST.setRelease(this, bytesToHost + n);
    }

    void addFromHost(final long n) {
        FROM_HOST.setRelease(this, bytesFromHost + n);
    }

    void addDropped(final long n) {
        DROPPED.setRelease(this, bytesDropped + n);
    }

    @Override
    public String toString() {
        return "PortCounters{toHost=" + bytesToHost() + ", fromHost=" + bytesFromHost()
            + ", dropped=" + bytesDropped() + '}';
    }
}
