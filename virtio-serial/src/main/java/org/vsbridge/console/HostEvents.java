package org.vsbridge.console;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Host-side events posted from any thread to the device worker, lock-free and allocation-free: one word of
 * event bits per port, a bitmap of ports with bits set, and one "something is pending" flag, written in
 * that order and consumed in the reverse order so no event is lost. The last host connection state is kept
 * separately so a fast close-then-open is still seen as a close (which discards held guest output).
 */
final class HostEvents {

    /** Host-to-guest data appeared in the port's channel. */
    static final int DATA = 1;
    /** The guest-to-host side of the channel has room again. */
    static final int SPACE = 2;
    /** The host connection state changed; read {@link #hostConnected(int)}. */
    static final int CONNECTION = 4;
    /** The host side closed at least once since the worker last looked. */
    static final int DISCONNECTED = 8;
    /** The port's console size changed: send RESIZE. */
    static final int RESIZE = 16;
    /** The port's output policy changed: look at its transmitq again. */
    static final int POLICY = 32;
    /** The port was hot-added: tell a ready driver (PORT_ADD). */
    static final int ADDED = 64;

    /** Worker callback for one port's events; returns work done. */
    interface Handler {
        int onHostEvent(int nr, int bits);
    }

    private final AtomicIntegerArray bits;
    private final AtomicIntegerArray connected;
    private final AtomicLongArray pendingPorts;
    private final AtomicBoolean pending = new AtomicBoolean();

    HostEvents(final int maxPorts) {
        bits = new AtomicIntegerArray(maxPorts);
        connected = new AtomicIntegerArray(maxPorts);
        pendingPorts = new AtomicLongArray((maxPorts + 63) >>> 6);
    }

    /** Any thread. */
    void post(final int nr, final int eventBits) {
        int current;
        do {
            current = bits.get(nr);
        } while ((current & eventBits) != eventBits && !bits.compareAndSet(nr, current, current | eventBits));
        final int word = nr >>> 6;
        final long bit = 1L << (nr & 63);
        long w;
        do {
            w = pendingPorts.get(word);
        } while ((w & bit) == 0 && !pendingPorts.compareAndSet(word, w, w | bit));
        pending.set(true);
    }

    /** Any thread: record the host connection state, then post the event. */
    void postConnection(final int nr, final boolean isConnected) {
        connected.set(nr, isConnected ? 1 : 0);
        post(nr, isConnected ? CONNECTION : CONNECTION | DISCONNECTED);
    }

    /** A port number is reused by a new port: its host side starts disconnected. */
    void forget(final int nr) {
        connected.set(nr, 0);
    }

    /** The last host connection state posted for port {@code nr}. */
    boolean hostConnected(final int nr) {
        return connected.get(nr) != 0;
    }

    /** Worker: cheap check before {@link #drain}. */
    boolean hasPending() {
        return pending.get();
    }

    /** Worker: hand every pending port's bits to the handler. */
    int drain(final Handler handler) {
        if (!pending.getAndSet(false)) {
            return 0;
        }
        int work = 0;
        for (int word = 0; word < pendingPorts.length(); word++) {
            long set = pendingPorts.getAndSet(word, 0);
            while (set != 0) {
                final int bit = Long.numberOfTrailingZeros(set);
                set &= set - 1;
                final int nr = (word << 6) + bit;
                final int eventBits = bits.getAndSet(nr, 0);
                if (eventBits != 0) {
                    work += 1 + handler.onHostEvent(nr, eventBits);
                }
            }
        }
        return work;
    }
}
