package org.vsbridge.console;

import java.util.logging.Level;
import java.util.logging.Logger;
import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.device.WorkerThread;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * What the parts of one console device share: its name and ports, the engine's context, what the driver
 * negotiated, the worker thread that owns it all, and the worker's scratch flyweights. The parts
 * ({@link ControlChannel}, {@link TransmitPath}, {@link ReceivePath}, {@link PortEvents}, {@link StateRecord},
 * {@link EmergencyOutput}) each hold one of these instead of each other's fields.
 *
 * <p>Owner: the device worker, except {@link #context} and {@link #multiport}, which other threads read.
 */
final class DeviceCore {

    /** Every part logs as the device: one logger, the name operators already filter on. */
    static final Logger LOG = Logger.getLogger(ConsoleDevice.class.getName());
    /** Chains handled per queue per pass before other queues get their turn. */
    static final int BATCH_BUDGET = 256;

    final String name;
    final PortRegistry ports;
    final WorkerThread worker;
    /** Guest-triggered lines (control messages, open/close): rate-limited so a guest cannot flood the log. */
    final GuestLogLimit guestLog = new GuestLogLimit(LOG);
    private final ConsoleEvents events;

    /** Set once the worker attaches (on the worker); read by any thread to wake it. */
    volatile DeviceContext context;
    /** The driver acked VIRTIO_CONSOLE_F_MULTIPORT. Written by the worker; read by {@link ConsoleDevice#resize}. */
    volatile boolean multiport;
    /** Worker: the driver sent DEVICE_READY(1): ports added from now on get PORT_ADD at once. */
    boolean driverReady;

    /** Worker scratch: the chain being handled; one at a time, every part reuses it. */
    final DescriptorChain chain = new DescriptorChain();
    /** Worker scratch: a flyweight over guest memory, re-wrapped per descriptor segment. */
    final UnsafeBuffer guestView = new UnsafeBuffer(new byte[0]);

    DeviceCore(final String name, final PortRegistry ports, final ConsoleEvents events) {
        this.name = name;
        this.ports = ports;
        this.events = events;
        this.worker = new WorkerThread("device " + name);
    }

    /** Worker: queue {@code index} of the attached engine. */
    Virtqueue queue(final int index) {
        return context.queue(index);
    }

    /** Any thread: make the worker look at posted host events soon (nothing before it is attached). */
    void wake() {
        final DeviceContext c = context;
        if (c != null) {
            c.wakeup();
        }
    }

    /** Worker: the port's queues are in use (every port with MULTIPORT; without it only port 0). */
    boolean portActive(final Port port) {
        return multiport || port.nr == 0;
    }

    /** Worker: the guest opened or closed the port; reported to {@link ConsoleEvents} on a change only. */
    void setGuestConnected(final Port port, final boolean open) {
        if (port.guestConnected == open) {
            return;
        }
        port.guestConnected = open;
        guestLog.log(Level.INFO, () -> name + ": " + port + " guest " + (open ? "opened" : "closed"));
        try {
            events.guestConnected(port.spec, open);
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, name + ": guestConnected listener failed for " + port, e);
        }
    }

    /** A channel's answer as a byte count in 0..max. */
    static int clamp(final int n, final int max) {
        return n < 0 ? 0 : Math.min(n, max);
    }
}
