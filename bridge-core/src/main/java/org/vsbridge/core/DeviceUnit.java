package org.vsbridge.core;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortSpec;
import org.vsbridge.core.cli.DeviceGroup;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.vhost.server.VhostUserServer;

/**
 * One console device of the process: its ports' links, the device (with its worker) and its vhost-user server.
 * Named {@code vsb0}, {@code vsb1} ... in the order of the device groups; QMP's {@code device_add bus=} names it.
 */
final class DeviceUnit {

    final String name;
    final DeviceGroup group;
    final PortPlan plan;
    final ConsoleDevice device;
    /** The links of the ports that exist now, by port number (hot-plug changes it). */
    final Map<Integer, PortLink> links;
    VhostUserServer server;

    DeviceUnit(final String name, final DeviceGroup group, final PortPlan plan, final ConsoleDevice device,
               final Map<Integer, PortLink> links) {
        this.name = name;
        this.group = group;
        this.plan = plan;
        this.device = device;
        this.links = new ConcurrentHashMap<>(links);
    }

    /** The link of the port whose device id is {@code id}, or null. */
    PortLink linkById(final String id) {
        for (final PortLink link : links.values()) {
            if (id.equals(link.port().id())) {
                return link;
            }
        }
        return null;
    }

    /** Queues the frontend must create: 2 * (max_nr_ports + 1). */
    int numQueues() {
        return 2 * (device.maxPorts() + 1);
    }

    boolean guestConnected(final PortSpec port) {
        try {
            return device.guestConnected(port.nr());
        } catch (final IllegalArgumentException e) {
            return false; // removed meanwhile
        }
    }
}
