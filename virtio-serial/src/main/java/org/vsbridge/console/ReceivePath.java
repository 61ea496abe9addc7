package org.vsbridge.console;

import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * Host to guest: fills a port's receive buffers (its receiveq) from its channel while the guest has the port
 * open. Host input is read only into buffers the guest posted, so a guest that does not read stops the host
 * side. Worker thread only.
 */
final class ReceivePath {

    private final DeviceCore core;
    private final Retries retries;

    ReceivePath(final DeviceCore core, final Retries retries) {
        this.core = core;
        this.retries = retries;
    }

    /** Fill the port's receive buffers from its channel; returns the chains used. */
    int fill(final Port port) {
        // The channel first: it also takes host-side hand-overs there (see PortChannel), guest open or not.
        if (!port.channel.hasDataFromHost() || !port.guestConnected) {
            return 0;
        }
        final Virtqueue queue = core.queue(port.rxQueue);
        if (!queue.isReady()) {
            return 0;
        }
        final DescriptorChain chain = core.chain;
        int chains = 0;
        long bytes = 0;
        while (port.channel.hasDataFromHost()) {
            if (chains == DeviceCore.BATCH_BUDGET) {
                retries.schedule(port);
                break;
            }
            if (!queue.peekOrRequestKick(chain)) {
                break;
            }
            if (chain.writableLength() == 0) {
                if (!port.badRxLogged) {
                    port.badRxLogged = true;
                    DeviceCore.LOG.warning(() -> core.name + ": " + port + " receive buffer " + chain.head()
                        + " has no writable descriptor; returned empty");
                }
                queue.advance();
                queue.addUsed(chain.head(), 0);
                chains++;
                continue;
            }
            final int written = fillChain(chain, port.channel);
            if (written == 0) {
                // The channel had nothing after all: leave the buffer for the next data event.
                break;
            }
            queue.advance();
            // One used entry per chain with its total length: the driver reads exactly this many bytes.
            queue.addUsed(chain.head(), written);
            bytes += written;
            chains++;
        }
        if (bytes > 0) {
            port.counters.addFromHost(bytes);
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** Fill the chain's writable segments in order until the channel runs dry; returns bytes written. */
    private static int fillChain(final DescriptorChain chain, final PortChannel channel) {
        long written = 0;
        for (int s = 0; s < chain.segmentCount(); s++) {
            if (!chain.isWritable(s)) {
                continue;
            }
            final int want = chain.length(s);
            final int got = DeviceCore.clamp(channel.readFromHost(chain.address(s), want), want);
            written += got;
            if (got < want) {
                break;
            }
        }
        // A used length is a u32 and a chain holds at most MAX_SEGMENTS segments; keep it an int.
        return (int) Math.min(written, Integer.MAX_VALUE);
    }
}
