package org.vsbridge.console;

import java.nio.charset.StandardCharsets;

/**
 * One configured port and its device-side state. Everything here is owned by the device worker except
 * {@link #guestConnected}, which other threads may read, and {@link #policy} and {@link #size}, which other
 * threads write.
 */
final class Port {

    final PortSpec spec;
    final int nr;
    final PortChannel channel;
    final PortCounters counters = new PortCounters();
    final int rxQueue;
    final int txQueue;
    /** UTF-8 name plus a trailing NUL (as QEMU sends it), or null when no PORT_NAME is sent. */
    final byte[] nameBytes;

    /** Guest PORT_OPEN state (or "queues started" without MULTIPORT); written by the worker only. */
    volatile boolean guestConnected;
    boolean hostConnected;
    /** The driver answered PORT_ADD with PORT_READY(1). */
    boolean ready;
    /** PORT_ADD was queued for the current driver (so a removal owes it a PORT_REMOVE). */
    boolean added;

    /** Guest output while no host peer is connected (generic ports); any thread writes, the worker reads. */
    volatile OutputPolicy policy = OutputPolicy.DROP;
    /** Console size (VIRTIO_CONSOLE_F_SIZE); any thread replaces it whole, then posts RESIZE. */
    volatile ConsoleSize size = ConsoleSize.UNSET;

    /** A transmitq chain partly written to a full host side, kept (not advanced) until there is room. */
    boolean holding;
    int heldHead;
    long heldOffset;

    /** Inside an episode of dropping guest output; logged once when it starts. */
    boolean dropping;
    /** Queued for another worker pass because a batch hit its budget. */
    boolean retry;
    /** A malformed receive buffer was already logged for this port. */
    boolean badRxLogged;
    /** A transmit buffer with writable descriptors was already logged for this port. */
    boolean badTxLogged;
    /** Started on an inflight buffer a previous process left, no host peer yet: hold guest output for it. */
    boolean awaitingPeer;

    Port(final PortSpec spec, final PortChannel channel) {
        this.spec = spec;
        this.nr = spec.nr();
        this.channel = channel;
        this.rxQueue = QueueLayout.rxQueue(nr);
        this.txQueue = QueueLayout.txQueue(nr);
        if (spec.name() == null) {
            nameBytes = null;
        } else {
            final byte[] utf8 = spec.name().getBytes(StandardCharsets.UTF_8);
            nameBytes = new byte[utf8.length + 1];
            System.arraycopy(utf8, 0, nameBytes, 0, utf8.length);
        }
    }

    boolean isConsole() {
        return spec.console();
    }

    void dropHeld() {
        holding = false;
        heldHead = 0;
        heldOffset = 0;
    }

    @Override
    public String toString() {
        return "port " + nr + (spec.id() != null ? " (" + spec.id() + ")" : "");
    }
}
