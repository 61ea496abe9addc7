package org.vsbridge.console;

import java.util.concurrent.CompletableFuture;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * The worker's side of what happens to ports from the host: host events (a chardev connected or closed, data,
 * room, a resize, a policy change, a hot-added port) posted into {@link HostEvents} by any thread, and hot-removed
 * ports posted into a queue. It turns them into control messages and passes over the ports' queues. Worker
 * thread, except {@link #postRemoval}.
 */
final class PortEvents {

    private final DeviceCore core;
    private final HostEvents hostEvents;
    private final ControlChannel control;
    private final TransmitPath tx;
    private final ReceivePath rx;
    private final StateRecord state;
    private final Retries retries;
    private final HostEvents.Handler handler = this::onHostEvent;
    /** Ports removed by {@link ConsoleDevice#removePort}, for the worker to tell the driver (PORT_REMOVE). */
    private final ManyToOneConcurrentArrayQueue<Removal> removals = new ManyToOneConcurrentArrayQueue<>(1024);

    PortEvents(final DeviceCore core, final HostEvents hostEvents, final ControlChannel control,
               final TransmitPath tx, final ReceivePath rx, final StateRecord state, final Retries retries) {
        this.core = core;
        this.hostEvents = hostEvents;
        this.control = control;
        this.tx = tx;
        this.rx = rx;
        this.state = state;
        this.retries = retries;
    }

    boolean hasPending() {
        return hostEvents.hasPending() || !removals.isEmpty();
    }

    /** Worker: removals first (a removed port's late host events mean nothing), then host events. */
    int drain() {
        int work = 0;
        if (!removals.isEmpty()) {
            work += drainRemovals();
        }
        if (hostEvents.hasPending()) {
            work += hostEvents.drain(handler);
        }
        return work;
    }

    // ------------------------------------------------------------------ host events

    private int onHostEvent(final int nr, final int bits) {
        final Port port = core.ports.get(nr);
        if (port == null) {
            return 0; // removed: late events from its host side mean nothing
        }
        int work = 0;
        if ((bits & HostEvents.ADDED) != 0 && core.multiport && core.driverReady && !port.added) {
            port.added = true;
            state.save();
            control.queue(nr, ControlMessage.PORT_ADD, 1);
            work++;
        }
        if ((bits & HostEvents.RESIZE) != 0 && core.multiport && port.ready && port.isConsole()) {
            control.queue(nr, ControlMessage.RESIZE, 1);
            work++;
        }
        boolean drain = (bits & (HostEvents.SPACE | HostEvents.POLICY)) != 0;
        if ((bits & HostEvents.CONNECTION) != 0) {
            if ((bits & HostEvents.DISCONNECTED) != 0 && port.hostConnected) {
                setHostConnected(port, false);
            }
            final boolean now = hostEvents.hostConnected(nr);
            if (now != port.hostConnected) {
                setHostConnected(port, now);
            }
            drain = true;
            work++;
        }
        if (core.portActive(port)) {
            if (drain) {
                work += tx.drain(port);
            }
            if ((bits & HostEvents.DATA) != 0) {
                work += rx.fill(port);
            }
        }
        return work;
    }

    private void setHostConnected(final Port port, final boolean connected) {
        port.hostConnected = connected;
        DeviceCore.LOG.info(() -> core.name + ": " + port + " host side " + (connected ? "connected" : "disconnected"));
        if (connected) {
            port.dropping = false;
            port.awaitingPeer = false;
        } else if (port.policy == OutputPolicy.DROP || port.isConsole()) {
            tx.discardHeld(port);
        }
        if (core.multiport && port.ready) {
            control.queue(port.nr, ControlMessage.PORT_OPEN, connected ? 1 : 0);
        }
    }

    // ------------------------------------------------------------------ hot-unplug

    /**
     * Any thread: {@code port} is out of the registry; the worker discards its pending guest output and tells the
     * driver. The future completes once it has (at once when no worker runs or the queue is full).
     */
    CompletableFuture<PortSpec> postRemoval(final Port port) {
        final Removal removal = new Removal(port);
        if (core.context == null || !removals.offer(removal)) {
            removal.done.complete(port.spec);
        } else {
            core.wake();
        }
        return removal.done;
    }

    /** Tell the driver about removed ports: their pending guest output is discarded (as QEMU's remove_port does)
     *  and PORT_REMOVE sent to a driver that knew the port. */
    int drainRemovals() {
        int work = 0;
        Removal removal;
        while ((removal = removals.poll()) != null) {
            work++;
            final Port port = removal.port;
            try {
                port.guestConnected = false; // no VSERPORT_CHANGE for an unplugged port, as in QEMU
                retries.remove(port);
                tx.discardAll(port);
                port.channel.release();
                if (core.multiport && port.added) {
                    control.queue(port.nr, ControlMessage.PORT_REMOVE, 1);
                }
                port.added = false;
                port.ready = false;
                state.save();
            } finally {
                removal.done.complete(port.spec);
            }
        }
        return work;
    }

    private static final class Removal {
        final Port port;
        final CompletableFuture<PortSpec> done = new CompletableFuture<>();

        Removal(final Port port) {
            this.port = port;
        }
    }
}
