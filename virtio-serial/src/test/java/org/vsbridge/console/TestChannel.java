package org.vsbridge.console;

import java.io.ByteArrayOutputStream;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A {@link PortChannel} over two byte-array rings, as bridge-core's would be over Agrona rings: the device
 * worker writes guest output into one and reads host input from the other; the test thread is the other
 * side of both. Synchronized because two threads use it (this is test code, not the data path).
 */
final class TestChannel implements PortChannel {

    private final UnsafeBuffer guest = new UnsafeBuffer(new byte[0]);
    private final byte[] toHost;
    private int toHostStart;
    private int toHostCount;
    private final ByteArrayOutputStream fromHost = new ByteArrayOutputStream();
    private byte[] fromHostBytes = new byte[0];
    private int fromHostRead;
    private int flushes;

    TestChannel(final int toHostCapacity) {
        this.toHost = new byte[toHostCapacity];
    }

    // ------------------------------------------------------------------ worker side

    @Override
    public synchronized int writeToHost(final long address, final int length) {
        final int n = Math.min(length, toHost.length - toHostCount);
        if (n <= 0) {
            return 0;
        }
        guest.wrap(address, n);
        for (int i = 0; i < n; i++) {
            toHost[(toHostStart + toHostCount + i) % toHost.length] = guest.getByte(i);
        }
        toHostCount += n;
        return n;
    }

    @Override
    public synchronized void flushToHost() {
        flushes++;
        notifyAll();
    }

    @Override
    public synchronized int readFromHost(final long address, final int length) {
        final int n = Math.min(length, fromHostBytes.length - fromHostRead);
        if (n <= 0) {
            return 0;
        }
        guest.wrap(address, n);
        guest.putBytes(0, fromHostBytes, fromHostRead, n);
        fromHostRead += n;
        return n;
    }

    @Override
    public synchronized boolean hasDataFromHost() {
        return fromHostRead < fromHostBytes.length;
    }

    // ------------------------------------------------------------------ host (test) side

    /** Queue host input for the guest. The caller then tells the device (hostDataAvailable). */
    synchronized void hostWrite(final byte[] data) {
        fromHost.write(fromHostBytes, fromHostRead, fromHostBytes.length - fromHostRead);
        fromHost.write(data, 0, data.length);
        fromHostBytes = fromHost.toByteArray();
        fromHost.reset();
        fromHostRead = 0;
    }

    synchronized int hostPending() {
        return fromHostBytes.length - fromHostRead;
    }

    /** Take up to {@code max} bytes of guest output, freeing room in the ring. */
    synchronized byte[] hostRead(final int max) {
        final int n = Math.min(max, toHostCount);
        final byte[] out = new byte[n];
        if (n == 0) {
            return out;
        }
        for (int i = 0; i < n; i++) {
            out[i] = toHost[(toHostStart + i) % toHost.length];
        }
        toHostStart = (toHostStart + n) % toHost.length;
        toHostCount -= n;
        return out;
    }

    synchronized int toHostCount() {
        return toHostCount;
    }

    synchronized int flushes() {
        return flushes;
    }
}
