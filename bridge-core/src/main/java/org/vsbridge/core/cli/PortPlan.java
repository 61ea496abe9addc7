package org.vsbridge.core.cli;

import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.vsbridge.console.PortSpec;

/**
 * Port numbers chosen as QEMU's virtio-serial bus does: port 0 is reserved for a console (a virtconsole
 * without {@code nr} takes it when free), other ports take the lowest free number from 1. Errors carry
 * QEMU's wording.
 */
public final class PortPlan {

    /** The device's limit: {@code max_nr_ports} must keep 2 * (n + 1) queues within 1024. */
    public static final int MAX_PORTS_LIMIT = 511;

    private final List<PortSpec> ports;
    private final int maxPorts;

    private PortPlan(final List<PortSpec> ports, final int maxPorts) {
        this.ports = ports;
        this.maxPorts = maxPorts;
    }

    public List<PortSpec> ports() {
        return ports;
    }

    public int maxPorts() {
        return maxPorts;
    }

    public static PortPlan of(final List<DeviceSpec> devices, final int requestedMax) throws UsageException {
        return of(devices, requestedMax, Set.of());
    }

    /** As {@link #of(List, int)}; the chardevs in {@code shared} (muxes) may serve several ports, as in QEMU. */
    public static PortPlan of(final List<DeviceSpec> devices, final int requestedMax, final Set<String> shared)
        throws UsageException {
        final int limit = requestedMax > 0 ? requestedMax : MAX_PORTS_LIMIT;
        final BitSet used = new BitSet();
        final Set<String> names = new HashSet<>();
        final Set<String> ids = new HashSet<>();
        final Set<String> chardevs = new HashSet<>();
        final List<PortSpec> ports = new ArrayList<>();
        int highest = 0;
        for (final DeviceSpec d : devices) {
            if (d.id() != null && !ids.add(d.id())) {
                throw new UsageException("Duplicate ID '" + d.id() + "' for device");
            }
            if (!chardevs.add(d.chardev()) && !shared.contains(d.chardev())) {
                throw new UsageException("Property '" + d.driver() + ".chardev' can't take value '" + d.chardev()
                    + "', it's in use");
            }
            if (d.name() != null && !names.add(d.name())) {
                throw new UsageException("virtio-serial-bus: A port already exists by name " + d.name());
            }
            int nr = d.nr();
            if (nr < 0) {
                nr = d.console() && !used.get(0) ? 0 : used.nextClearBit(1);
                if (nr >= limit) {
                    throw new UsageException("virtio-serial-bus: Maximum port limit for this device reached");
                }
            } else {
                if (nr == 0 && !d.console()) {
                    throw new UsageException("virtio-serial-bus: Port number 0 on virtio-serial devices reserved "
                        + "for virtconsole devices for backward compatibility");
                }
                if (used.get(nr)) {
                    throw new UsageException("virtio-serial-bus: A port already exists at id " + nr);
                }
                if (nr >= limit) {
                    throw new UsageException("virtio-serial-bus: Out-of-range port id specified, max. allowed: "
                        + (limit - 1));
                }
            }
            used.set(nr);
            highest = Math.max(highest, nr);
            ports.add(new PortSpec(nr, d.id(), d.name(), d.console()));
        }
        return new PortPlan(List.copyOf(ports), requestedMax > 0 ? requestedMax : highest + 1);
    }
}
