package org.vsbridge.console;

import java.nio.ByteOrder;
import java.util.Objects;
import java.util.logging.Level;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * The control queues of a multiport device (virtio spec 5.3.6.2): reads the driver's messages from the control
 * transmitq (DEVICE_READY, PORT_READY, PORT_OPEN) and acts on them, and sends the device's messages (PORT_ADD,
 * PORT_REMOVE, CONSOLE_PORT, RESIZE, PORT_OPEN, PORT_NAME) through the control receiveq, one per buffer, from
 * an {@link ControlOutbox} that keeps them until the driver posts buffers. Worker thread only, except
 * {@link #setResizeOrder}.
 */
final class ControlChannel {

    private final DeviceCore core;
    private final Retries retries;
    private final ReceivePath rx;
    private final StateRecord state;
    private final ControlOutbox outbox;
    /** One encoded control message: header plus the longest name and its NUL. */
    private final UnsafeBuffer message =
        new UnsafeBuffer(new byte[ControlMessage.HEADER_LENGTH + ControlMessage.MAX_NAME_BYTES + 1]);
    /** Any thread writes (configuration), the worker reads when it encodes a RESIZE. */
    private volatile ResizeOrder resizeOrder = ResizeOrder.ROWS_COLS;
    private boolean outboxOverflowing;
    private boolean badControlLogged;

    ControlChannel(final DeviceCore core, final Retries retries, final ReceivePath rx, final StateRecord state) {
        this.core = core;
        this.retries = retries;
        this.rx = rx;
        this.state = state;
        // Enough for a full DEVICE_READY round (PORT_ADD each) plus CONSOLE_PORT, PORT_NAME and a few
        // PORT_OPEN toggles per port before the driver posts control buffers.
        this.outbox = new ControlOutbox(Math.max(256, 8 * (core.ports.maxPorts() + 1)));
    }

    /** Any thread: field order of RESIZE payloads. */
    void setResizeOrder(final ResizeOrder order) {
        resizeOrder = Objects.requireNonNull(order, "order");
    }

    boolean hasPending() {
        return !outbox.isEmpty();
    }

    /** Queue a message for the driver; when the outbox is full it is dropped and that logged once per episode. */
    void queue(final int id, final int event, final int value) {
        if (outbox.offer(id, event, value)) {
            outboxOverflowing = false;
        } else if (!outboxOverflowing) {
            outboxOverflowing = true;
            DeviceCore.LOG.warning(() -> core.name + ": control queue full (" + outbox.capacity()
                + " messages waiting for driver buffers); dropping " + ControlMessage.eventName(event)
                + " for port " + id);
        }
    }

    /** Device reset: messages not sent yet mean nothing to the next driver. */
    void reset() {
        final int dropped = outbox.clear();
        outboxOverflowing = false;
        badControlLogged = false;
        if (dropped > 0) {
            DeviceCore.LOG.info(() -> core.name + ": reset dropped " + dropped + " pending control messages");
        }
    }

    // ------------------------------------------------------------------ control transmitq: driver to device

    /** Take every message at once (the driver spins until it is used), act on each, then send what is queued. */
    int receive() {
        final Virtqueue queue = core.queue(QueueLayout.CONTROL_TX);
        if (!queue.isReady()) {
            return 0;
        }
        final DescriptorChain chain = core.chain;
        int chains = 0;
        while (true) {
            if (chains == DeviceCore.BATCH_BUDGET) {
                retries.scheduleControlTx();
                break;
            }
            if (!queue.popOrRequestKick(chain)) {
                break;
            }
            chains++;
            final int length = gatherHeader(chain);
            queue.addUsed(chain.head(), 0);
            if (length < ControlMessage.HEADER_LENGTH) {
                if (!badControlLogged) {
                    badControlLogged = true;
                    core.guestLog.log(Level.WARNING, () -> core.name + ": control message of " + length
                        + " bytes is shorter than " + ControlMessage.HEADER_LENGTH + "; ignored");
                }
                continue;
            }
            try {
                handle(ControlMessage.id(message, 0), ControlMessage.event(message, 0),
                    ControlMessage.value(message, 0));
            } finally {
                state.save();
            }
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains + send();
    }

    /** Copy up to one header's worth of the chain's readable bytes into {@link #message}; returns the count. */
    private int gatherHeader(final DescriptorChain chain) {
        int copied = 0;
        for (int s = 0; s < chain.segmentCount() && !chain.isWritable(s)
            && copied < ControlMessage.HEADER_LENGTH; s++) {
            final int n = Math.min(chain.length(s), ControlMessage.HEADER_LENGTH - copied);
            core.guestView.wrap(chain.address(s), n);
            core.guestView.getBytes(0, message, copied, n);
            copied += n;
        }
        return copied;
    }

    private void handle(final int id, final int event, final int value) {
        switch (event) {
            case ControlMessage.DEVICE_READY:
                if (value != 1) {
                    core.guestLog.log(Level.WARNING, () -> core.name + ": driver reports DEVICE_READY(" + value
                        + "): device setup failed");
                    return;
                }
                core.driverReady = true;
                int count = 0;
                for (int nr = 0; nr < core.ports.maxPorts(); nr++) {
                    final Port port = core.ports.get(nr);
                    if (port != null) {
                        port.ready = false;
                        port.added = true;
                        queue(port.nr, ControlMessage.PORT_ADD, 1);
                        count++;
                    }
                }
                final int added = count;
                core.guestLog.log(Level.INFO, () -> core.name + ": driver ready, adding " + added + " ports");
                return;
            case ControlMessage.PORT_READY: {
                final Port port = controlPort(id, event);
                if (port == null) {
                    return;
                }
                if (value != 1) {
                    core.guestLog.log(Level.WARNING, () -> core.name + ": driver failed to set up " + port
                        + " (PORT_READY " + value + ")");
                    return;
                }
                port.ready = true;
                if (port.isConsole()) {
                    queue(port.nr, ControlMessage.CONSOLE_PORT, 1);
                    if (port.size.isSet()) {
                        queue(port.nr, ControlMessage.RESIZE, 1);
                    }
                }
                if (port.nameBytes != null) {
                    queue(port.nr, ControlMessage.PORT_NAME, 1);
                }
                if (port.hostConnected) {
                    queue(port.nr, ControlMessage.PORT_OPEN, 1);
                }
                return;
            }
            case ControlMessage.PORT_OPEN: {
                final Port port = controlPort(id, event);
                if (port == null) {
                    return;
                }
                core.setGuestConnected(port, value != 0);
                if (value != 0) {
                    // Host input may have waited for the guest to open the port.
                    rx.fill(port);
                }
                return;
            }
            default:
                core.guestLog.log(Level.WARNING, () -> core.name + ": unexpected control message "
                    + ControlMessage.eventName(event) + " (id " + Integer.toUnsignedString(id) + ", value " + value
                    + ") from the driver; ignored");
        }
    }

    private Port controlPort(final int id, final int event) {
        final Port port = core.ports.get(id);
        if (port == null) {
            core.guestLog.log(Level.WARNING, () -> core.name + ": Unexpected port id " + Integer.toUnsignedString(id)
                + " in " + ControlMessage.eventName(event) + "; ignored");
        }
        return port;
    }

    // ------------------------------------------------------------------ control receiveq: device to driver

    /** One message per buffer at offset 0, never packed, while buffers and messages last. */
    int send() {
        if (outbox.isEmpty()) {
            return 0;
        }
        final Virtqueue queue = core.queue(QueueLayout.CONTROL_RX);
        if (!queue.isReady()) {
            return 0;
        }
        final DescriptorChain chain = core.chain;
        int chains = 0;
        while (!outbox.isEmpty()) {
            if (headIsStale()) {
                // Its port was removed after the message was queued; Linux parses every used control buffer
                // as a message, so never hand back one without a message in it.
                outbox.removeHead();
                continue;
            }
            if (!queue.peekOrRequestKick(chain)) {
                break;
            }
            queue.advance();
            chains++;
            final long capacity = chain.writableLength();
            if (capacity < ControlMessage.HEADER_LENGTH) {
                // Not even a header fits: give it back empty and keep the message for the next buffer.
                queue.addUsed(chain.head(), 0);
                if (!badControlLogged) {
                    badControlLogged = true;
                    DeviceCore.LOG.warning(() -> core.name + ": control receive buffer of " + capacity
                        + " bytes is too small");
                }
                continue;
            }
            final int length = encodeHead();
            final int written = scatter(chain, length);
            queue.addUsed(chain.head(), written);
            if (written < length) {
                DeviceCore.LOG.warning(() -> core.name + ": control receive buffer too small, "
                    + ControlMessage.eventName(outbox.headEvent()) + " for port " + outbox.headId() + " cut to "
                    + written + " bytes");
            }
            outbox.removeHead();
        }
        if (chains > 0) {
            queue.flushUsed();
        }
        return chains;
    }

    /** A queued PORT_NAME or RESIZE whose port no longer exists (its payload is gone). */
    private boolean headIsStale() {
        final int event = outbox.headEvent();
        return (event == ControlMessage.PORT_NAME || event == ControlMessage.RESIZE)
            && core.ports.get(outbox.headId()) == null;
    }

    /** Encode the outbox head into {@link #message}; returns its length. */
    private int encodeHead() {
        final int id = outbox.headId();
        final int event = outbox.headEvent();
        int length = ControlMessage.encode(message, 0, id, event, outbox.headValue());
        if (event == ControlMessage.PORT_NAME || event == ControlMessage.RESIZE) {
            final Port port = core.ports.get(id);
            if (event == ControlMessage.PORT_NAME) {
                message.putBytes(length, port.nameBytes);
                length += port.nameBytes.length;
            } else {
                // Read at send time: several resizes before the driver posts a buffer send the latest size, and
                // one read of the record gives columns and rows of the same resize.
                final ConsoleSize size = port.size;
                final boolean rowsFirst = resizeOrder == ResizeOrder.ROWS_COLS;
                message.putShort(length, (short) (rowsFirst ? size.rows() : size.cols()), ByteOrder.LITTLE_ENDIAN);
                message.putShort(length + 2, (short) (rowsFirst ? size.cols() : size.rows()),
                    ByteOrder.LITTLE_ENDIAN);
                length += 4;
            }
        }
        return length;
    }

    /** Copy the first {@code length} bytes of {@link #message} into the chain's writable segments. */
    private int scatter(final DescriptorChain chain, final int length) {
        int copied = 0;
        for (int s = 0; s < chain.segmentCount() && copied < length; s++) {
            if (!chain.isWritable(s)) {
                continue;
            }
            final int n = Math.min(chain.length(s), length - copied);
            core.guestView.wrap(chain.address(s), n);
            core.guestView.putBytes(0, message, copied, n);
            copied += n;
        }
        return copied;
    }
}
