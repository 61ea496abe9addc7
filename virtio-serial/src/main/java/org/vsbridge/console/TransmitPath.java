package org.vsbridge.console;

import java.util.logging.Level;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * Guest to host: consumes a port's transmitq into its channel. Guest output the host side cannot take is held
 * in the ring (the chain is not consumed, its offset kept in {@link Port#heldOffset}) until the host side has
 * room. Two cases drop, counted in {@link PortCounters#bytesDropped()} and logged once per episode: a generic
 * port without a host side under {@link OutputPolicy#DROP} (as QEMU does; under {@link OutputPolicy#HOLD} its
 * output waits in the ring) and a console port whose host side is full (hvc spins with a lock held until its
 * buffer is used, so holding it would hang the guest). Worker thread only.
 */
final class TransmitPath {

    private final DeviceCore core;
    private final Retries retries;

    TransmitPath(final DeviceCore core, final Retries retries) {
        this.core = core;
        this.retries = retries;
    }

    /** Consume the port's transmitq into its channel; returns the chains used. */
    int drain(final Port port) {
        final Virtqueue queue = core.queue(port.txQueue);
        if (!queue.isReady()) {
            return 0;
        }
        final int chains;
        try {
            chains = consume(port, queue);
        } finally {
            // The end of the batch, before the used entries are published: the channel may still be reading the
            // guest's buffers (direct output) until it returns.
            port.channel.flushToHost();
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** The chains of one pass, completed (used entries written, not yet published) and counted. */
    private int consume(final Port port, final Virtqueue queue) {
        final DescriptorChain chain = core.chain;
        int chains = 0;
        long toHost = 0;
        long dropped = 0;
        while (true) {
            if (chains == DeviceCore.BATCH_BUDGET) {
                retries.schedule(port);
                break;
            }
            if (!queue.peekOrRequestKick(chain)) {
                break;
            }
            if (port.holding && chain.head() != port.heldHead) {
                port.dropHeld();
            }
            final long total = chain.readableLength();
            if (chain.writableLength() > 0 && !port.badTxLogged) {
                // A transmitq buffer is device-readable only (virtio 1.x 5.3.6.1); writable parts are left alone.
                port.badTxLogged = true;
                final long writable = chain.writableLength();
                DeviceCore.LOG.warning(() -> core.name + ": " + port + " transmit buffer " + chain.head() + " has "
                    + writable + " writable bytes; the device only reads a transmitq (logged once)");
            }
            if (port.isConsole() || port.hostConnected) {
                // A previous process may have delivered part of this chain (INFLIGHT_SHMFD): go on after it.
                final long start = port.holding ? port.heldOffset : queue.resumeOffset(chain.head());
                final long reached = writeChain(chain, port.channel, queue, start);
                toHost += reached - start;
                if (reached < total) {
                    if (!port.isConsole()) {
                        // Backpressure: keep the chain, resume at this byte on hostSpaceAvailable.
                        port.holding = true;
                        port.heldHead = chain.head();
                        port.heldOffset = reached; // writeChain recorded it for a restarted process
                        break;
                    }
                    dropped += total - reached;
                    startDropping(port, Level.WARNING, "console host side is full");
                } else if (port.isConsole()) {
                    port.dropping = false;
                }
            } else if (port.policy == OutputPolicy.HOLD || port.awaitingPeer) {
                // Hold policy, or a restart on an inflight buffer whose peer has not come back yet: leave the
                // chain in the ring, untouched, until a host peer connects.
                break;
            } else {
                final long start = port.holding ? port.heldOffset : 0;
                dropped += total - start;
                startDropping(port, Level.INFO, "host side not connected");
            }
            queue.advance();
            queue.addUsed(chain.head(), 0);
            port.dropHeld();
            chains++;
        }
        // Counters first: whoever sees the used entry (the guest, a test) sees them already counted.
        if (toHost > 0) {
            port.counters.addToHost(toHost);
        }
        if (dropped > 0) {
            port.counters.addDropped(dropped);
        }
        return chains;
    }

    /** Write the chain's readable bytes from offset {@code start}; returns the offset reached. Each write that took
     *  bytes is recorded for a restarted process (a no-op without an inflight buffer). */
    private static long writeChain(final DescriptorChain chain, final PortChannel channel, final Virtqueue queue,
                                   final long start) {
        long reached = start;
        long seen = 0;
        for (int s = 0; s < chain.segmentCount() && !chain.isWritable(s); s++) {
            final int length = chain.length(s);
            final long segmentEnd = seen + length;
            if (segmentEnd > reached) {
                final int skip = (int) (reached - seen);
                final int want = length - skip;
                final int taken = DeviceCore.clamp(channel.writeToHost(chain.address(s) + skip, want), want);
                reached += taken;
                if (taken > 0 && reached < chain.readableLength()) {
                    queue.noteDelivered(chain.head(), reached);
                }
                if (taken < want) {
                    return reached;
                }
            }
            seen = segmentEnd;
        }
        return reached;
    }

    /** One log line per episode; the bytes themselves are counted in {@link PortCounters#bytesDropped()}. */
    private void startDropping(final Port port, final Level level, final String reason) {
        if (!port.dropping) {
            port.dropping = true;
            DeviceCore.LOG.log(level, () -> core.name + ": " + port + " dropping guest output: " + reason
                + " (counted in bytesDropped)");
        }
    }

    /** The host side went away: guest output held for it is thrown away, as QEMU's virtio_serial_close does. */
    void discardHeld(final Port port) {
        if (!port.holding) {
            return;
        }
        final Virtqueue queue = core.queue(port.txQueue);
        final DescriptorChain chain = core.chain;
        if (queue.isReady() && queue.peek(chain) && chain.head() == port.heldHead) {
            final long dropped = Math.max(0, chain.readableLength() - port.heldOffset);
            queue.advance();
            queue.addUsed(chain.head(), 0);
            port.counters.addDropped(dropped);
            queue.flushUsed();
            DeviceCore.LOG.info(() -> core.name + ": " + port + " discarded " + dropped
                + " bytes of held guest output");
        }
        port.dropHeld();
    }

    /** The port was removed: use every chain waiting in its transmitq with length 0, counted as dropped (as
     *  QEMU's remove_port does). */
    void discardAll(final Port port) {
        if (core.context == null) {
            return;
        }
        final Virtqueue queue = core.queue(port.txQueue);
        if (!queue.isReady()) {
            port.dropHeld();
            return;
        }
        final DescriptorChain chain = core.chain;
        long dropped = 0;
        int chains = 0;
        while (chains < queue.size() && queue.pop(chain)) {
            dropped += chain.readableLength() - (port.holding && chain.head() == port.heldHead ? port.heldOffset : 0);
            queue.addUsed(chain.head(), 0);
            chains++;
        }
        port.dropHeld();
        if (chains > 0) {
            queue.flushUsed();
            port.counters.addDropped(dropped);
            final long lost = dropped;
            DeviceCore.LOG.info(() -> core.name + ": " + port + " removed with " + lost
                + " bytes of guest output discarded");
        }
    }
}
