package org.vsbridge.console;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * The ports of one device by number: which exist, with QEMU's rules for numbers and names. Any thread reads it;
 * additions and removals (QMP device_add, device_del) run under one lock so numbers and names stay unique. It
 * only keeps the table: telling the driver is the worker's business.
 */
final class PortRegistry {

    private final String name;
    private final int maxPorts;
    /** Indexed by port number; null where no port exists. Written under {@link #lock}, read by any thread. */
    private final AtomicReferenceArray<Port> ports;
    private final Object lock = new Object();

    /** The configured ports; see {@link ConsoleDevice}'s constructor for the rules (broken ones throw). */
    PortRegistry(final String name, final int maxPorts, final List<PortSpec> specs,
                 final IntFunction<PortChannel> channels) {
        this.name = name;
        if (maxPorts < 1 || maxPorts > QueueLayout.MAX_PORTS) {
            throw new IllegalArgumentException(
                "max_nr_ports must be between 1 and " + QueueLayout.MAX_PORTS + ", got " + maxPorts);
        }
        Objects.requireNonNull(specs, "ports");
        Objects.requireNonNull(channels, "channels");
        this.maxPorts = maxPorts;
        this.ports = new AtomicReferenceArray<>(maxPorts);
        final List<PortSpec> sorted = new ArrayList<>(specs);
        sorted.sort(Comparator.comparingInt(PortSpec::nr));
        final Set<String> names = new HashSet<>();
        for (final PortSpec spec : sorted) {
            Objects.requireNonNull(spec, "port spec");
            validate(spec, names);
            final PortChannel channel = channels.apply(spec.nr());
            if (channel == null) {
                throw new IllegalArgumentException("no channel for port " + spec.nr());
            }
            ports.set(spec.nr(), new Port(spec, channel));
        }
    }

    private void validate(final PortSpec spec, final Set<String> names) {
        final int nr = spec.nr();
        if (nr < 0 || nr >= maxPorts) {
            throw new IllegalArgumentException(
                "port number " + nr + " is out of range: max_nr_ports is " + maxPorts);
        }
        if (ports.get(nr) != null) {
            throw new IllegalArgumentException("port number " + nr + " is used twice");
        }
        if (nr == 0 && !spec.console()) {
            throw new IllegalArgumentException(
                "port number 0 is reserved for a console port (as QEMU reserves it for virtconsole)");
        }
        if (spec.name() != null) {
            if (!names.add(spec.name())) {
                throw new IllegalArgumentException("port name '" + spec.name() + "' is used twice");
            }
            final int length = spec.name().getBytes(StandardCharsets.UTF_8).length;
            if (length > ControlMessage.MAX_NAME_BYTES) {
                throw new IllegalArgumentException("port name of port " + nr + " is " + length
                    + " bytes in UTF-8, at most " + ControlMessage.MAX_NAME_BYTES + " are allowed");
            }
        }
    }

    int maxPorts() {
        return maxPorts;
    }

    /** Port {@code nr}, or null when there is none (or the number is outside the device). */
    Port get(final int nr) {
        return nr >= 0 && nr < maxPorts ? ports.get(nr) : null;
    }

    /** Port {@code nr}; a number without a port is a caller bug. */
    Port require(final int nr) {
        final Port port = get(nr);
        if (port == null) {
            throw new IllegalArgumentException("device " + name + " has no port " + nr);
        }
        return port;
    }

    /** For a host-side call: false for a number without a port (a port just hot-removed, whose chardev may still
     *  report events until it is detached); a number outside the device is a caller bug and throws. */
    boolean existsForHost(final int nr) {
        if (nr < 0 || nr >= maxPorts) {
            throw new IllegalArgumentException("device " + name + " has no port " + nr);
        }
        return ports.get(nr) != null;
    }

    /** The ports that exist now, in ascending number order (a snapshot). */
    List<PortSpec> specs() {
        final List<PortSpec> list = new ArrayList<>();
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port != null) {
                list.add(port.spec);
            }
        }
        return Collections.unmodifiableList(list);
    }

    /** Port 0 if it is a console, else the lowest-numbered console port; null when there is none. */
    Port firstConsole() {
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = ports.get(nr);
            if (port != null && port.isConsole()) {
                return port;
            }
        }
        return null;
    }

    /**
     * Adds a port as QEMU's bus does (see {@link ConsoleDevice#addPort}); {@code channels} is called once, under
     * the lock, with the final spec. The number's host state starts afresh in {@code hostEvents}, and the worker
     * is told of the addition there (ADDED) once the port is in the table.
     */
    Port add(final PortSpec requested, final Function<PortSpec, PortChannel> channels,
             final HostEvents hostEvents) {
        synchronized (lock) {
            int nr = requested.nr();
            if (requested.name() != null) {
                for (int i = 0; i < maxPorts; i++) {
                    final Port other = ports.get(i);
                    if (other != null && requested.name().equals(other.spec.name())) {
                        throw new IllegalArgumentException(
                            "virtio-serial-bus: A port already exists by name " + requested.name());
                    }
                }
                final int length = requested.name().getBytes(StandardCharsets.UTF_8).length;
                if (length > ControlMessage.MAX_NAME_BYTES) {
                    throw new IllegalArgumentException("virtio-serial-bus: port name is " + length
                        + " bytes in UTF-8, at most " + ControlMessage.MAX_NAME_BYTES + " are allowed");
                }
            }
            if (nr < 0) {
                nr = requested.console() && ports.get(0) == null ? 0 : firstFree();
                if (nr < 0) {
                    throw new IllegalArgumentException("virtio-serial-bus: Maximum port limit for this device reached");
                }
            } else {
                if (nr == 0 && !requested.console()) {
                    throw new IllegalArgumentException("virtio-serial-bus: Port number 0 on virtio-serial devices "
                        + "reserved for virtconsole devices for backward compatibility");
                }
                if (nr < maxPorts && ports.get(nr) != null) {
                    throw new IllegalArgumentException("virtio-serial-bus: A port already exists at id " + nr);
                }
                if (nr >= maxPorts) {
                    throw new IllegalArgumentException(
                        "virtio-serial-bus: Out-of-range port id specified, max. allowed: " + (maxPorts - 1));
                }
            }
            final PortSpec spec = new PortSpec(nr, requested.id(), requested.name(), requested.console());
            final PortChannel channel = Objects.requireNonNull(channels.apply(spec), "channel");
            final Port port = new Port(spec, channel);
            hostEvents.forget(nr);
            ports.set(nr, port);
            hostEvents.post(nr, HostEvents.ADDED); // the worker sends PORT_ADD if the driver is ready
            return port;
        }
    }

    private int firstFree() {
        for (int nr = 1; nr < maxPorts; nr++) {
            if (ports.get(nr) == null) {
                return nr;
            }
        }
        return -1;
    }

    /** Takes port {@code nr} out of the table and returns it; a number without a port throws. */
    Port remove(final int nr) {
        synchronized (lock) {
            final Port port = require(nr);
            ports.set(nr, null);
            return port;
        }
    }
}
