package org.vsbridge.console;

/**
 * Queues that hit their batch budget and owe another pass, so one busy queue cannot starve the others: ports
 * (their transmitq and receiveq) and the control transmitq. No allocation: a fixed array with one slot per port
 * and a flag per port ({@link Port#retry}) against duplicates. Worker thread only.
 */
final class Retries {

    private final Port[] ports;
    private int count;
    private boolean controlTx;

    Retries(final int maxPorts) {
        ports = new Port[maxPorts];
    }

    boolean isEmpty() {
        return count == 0 && !controlTx;
    }

    /** The port's queues get another pass. */
    void schedule(final Port port) {
        if (!port.retry) {
            port.retry = true;
            ports[count++] = port;
        }
    }

    /** The control transmitq gets another pass. */
    void scheduleControlTx() {
        controlTx = true;
    }

    /** Whether the control transmitq was scheduled; clears it. */
    boolean takeControlTx() {
        final boolean was = controlTx;
        controlTx = false;
        return was;
    }

    /** Hands the scheduled ports to {@code pass} (in order) and forgets them; a port it schedules again is kept
     *  for the next round. Returns the work {@code pass} reported. */
    int drainPorts(final java.util.function.ToIntFunction<Port> pass) {
        final int n = count;
        count = 0;
        int work = 0;
        for (int i = 0; i < n; i++) {
            final Port port = ports[i];
            ports[i] = null;
            port.retry = false;
            work += pass.applyAsInt(port);
        }
        return work;
    }

    /** A removed port no longer gets a pass. */
    void remove(final Port port) {
        if (!port.retry) {
            return;
        }
        port.retry = false;
        int kept = 0;
        for (int i = 0; i < count; i++) {
            if (ports[i] != port) {
                ports[kept++] = ports[i];
            }
        }
        for (int i = kept; i < count; i++) {
            ports[i] = null;
        }
        count = kept;
    }

    /** Device reset: nothing is owed. */
    void clear() {
        for (int i = 0; i < count; i++) {
            ports[i].retry = false;
            ports[i] = null;
        }
        count = 0;
        controlTx = false;
    }
}
