package org.vsbridge.core;

import static org.vsbridge.core.qmp.QmpCommand.Param.optional;
import static org.vsbridge.core.qmp.QmpCommand.Param.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;
import java.util.logging.Logger;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.console.OutputPolicy;
import org.vsbridge.console.PortCounters;
import org.vsbridge.console.PortSpec;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.core.qmp.QmpCommand;
import org.vsbridge.core.qmp.QmpCommand.Type;
import org.vsbridge.core.qmp.QmpException;
import org.vsbridge.core.qmp.QmpServer;

/**
 * Ports at run time over QMP. QEMU's own {@code device_add} (drivers {@code virtconsole} and
 * {@code virtserialport}) and {@code device_del} with QEMU's errors and its {@code DEVICE_DELETED} event, plus the
 * bridge's {@code query-vserport} (ports, states, byte counters), {@code vserport-resize} (console size,
 * VIRTIO_CONSOLE_F_SIZE) and {@code vserport-set-policy} (drop or hold guest output while no host peer is
 * connected). Ports are named by their device {@code id}.
 */
final class DeviceCommands {

    private static final Logger LOG = Logger.getLogger(DeviceCommands.class.getName());

    private DeviceCommands() {
    }

    static void register(final QmpServer qmp, final Bridge bridge) {
        // QEMU's device_add reads driver, bus and id itself, then sets each other argument as a property.
        qmp.register(new QmpCommand("device_add", Map.of(QmpCommand.ANY_ARGUMENTS, optional(Type.ANY)),
            args -> add(bridge, args)));
        qmp.register(new QmpCommand("device_del", Map.of("id", required(Type.STRING)),
            args -> delete(bridge, args.get("id").asText())));
        qmp.register(new QmpCommand("query-vserport", Map.of(), args -> query(bridge)));
        qmp.register(new QmpCommand("vserport-resize",
            QmpCommand.ordered("id", required(Type.STRING), "cols", required(Type.INT), "rows", required(Type.INT)),
            args -> {
                final Found f = find(bridge, args.get("id").asText());
                final long cols = args.get("cols").asLong();
                final long rows = args.get("rows").asLong();
                if (cols < 0 || cols > 0xFFFF || rows < 0 || rows > 0xFFFF) {
                    throw QmpException.generic("console size " + cols + "x" + rows + " does not fit 16 bits");
                }
                try {
                    f.unit.device.resize(f.link.port().nr(), (int) cols, (int) rows);
                } catch (final IllegalArgumentException e) {
                    throw QmpException.generic(e.getMessage());
                }
                return QmpCommands.json().createObjectNode();
            }));
        qmp.register(new QmpCommand("vserport-set-policy",
            QmpCommand.ordered("id", required(Type.STRING), "policy", required(Type.STRING)), args -> {
                final Found f = find(bridge, args.get("id").asText());
                f.unit.device.setOutputPolicy(f.link.port().nr(), policy(args.get("policy").asText()));
                return QmpCommands.json().createObjectNode();
            }));
    }

    private record Found(DeviceUnit unit, PortLink link) {
    }

    /** The port with device id {@code id}; DeviceNotFound as QEMU's device_del says it. */
    private static Found find(final Bridge bridge, final String id) throws QmpException {
        for (final DeviceUnit unit : bridge.units()) {
            final PortLink link = unit.linkById(id);
            if (link != null) {
                return new Found(unit, link);
            }
        }
        throw new QmpException("DeviceNotFound", "Device '" + id + "' not found");
    }

    private static OutputPolicy policy(final String text) throws QmpException {
        try {
            return OutputPolicy.parse(text);
        } catch (final IllegalArgumentException e) {
            throw QmpException.generic(e.getMessage());
        }
    }

    /** Bridge extensions of virtconsole (uint16 properties; QEMU does not know them: "Property ... not found"). */
    private static int size(final JsonNode v, final String key) throws QmpException {
        if (!v.isIntegralNumber()) {
            throw QmpException.generic("Parameter '" + key + "' expects uint64");
        }
        if (v.bigIntegerValue().signum() < 0 || v.bigIntegerValue().bitLength() > 16) {
            throw QmpException.generic("Parameter '" + key + "' expects uint16_t");
        }
        return v.asInt();
    }

    /**
     * device_add as QEMU 10.2 checks it: driver, bus, id (each ignored unless a string), then the other arguments
     * as properties in QEMU's order (QmpOrder), then the port itself (virtio-serial-bus's checks).
     */
    private static JsonNode add(final Bridge bridge, final ObjectNode args) throws QmpException {
        final JsonNode driverNode = args.get("driver");
        if (driverNode == null || !driverNode.isTextual()) {
            throw QmpException.generic("Parameter 'driver' is missing");
        }
        final String driver = driverNode.asText();
        final boolean console;
        switch (driver) {
            case "virtconsole" -> console = true;
            case "virtserialport" -> console = false;
            default -> throw QmpException.generic("'" + driver + "' is not a valid device model name");
        }
        final DeviceUnit unit = unit(bridge, args.path("bus").isTextual() ? args.get("bus").asText() : null);
        final String id = args.path("id").isTextual() ? args.get("id").asText() : null;
        if (id != null) {
            for (final DeviceUnit u : bridge.units()) {
                if (u.linkById(id) != null) {
                    throw QmpException.generic("Duplicate device ID '" + id + "'");
                }
            }
        }
        final java.util.List<String> keys = new java.util.ArrayList<>();
        args.fieldNames().forEachRemaining(keys::add);
        String chardevId = null;
        Chardev chardev = null;
        int nr = -1;
        String name = null;
        int cols = 0;
        int rows = 0;
        OutputPolicy policy = OutputPolicy.DROP;
        for (final String key : org.vsbridge.core.qmp.QmpOrder.qdict(keys)) {
            final JsonNode v = args.get(key);
            switch (key) {
                case "driver", "bus", "id" -> {
                }
                case "chardev" -> {
                    if (!v.isTextual()) {
                        throw QmpException.generic("Invalid parameter type for 'chardev', expected: string");
                    }
                    chardevId = v.asText();
                    chardev = bridge.chardevs().get(chardevId);
                    if (chardev == null) {
                        throw QmpException.generic("Property '" + driver + ".chardev' can't find value '"
                            + chardevId + "'");
                    }
                    if (!"mux".equals(chardev.kind()) && (bridge.linkOf(chardevId) != null || chardev.isBusy())) {
                        throw QmpException.generic("Property '" + driver + ".chardev' can't take value '"
                            + chardevId + "': chardev '" + chardevId + "' is already in use");
                    }
                }
                case "nr" -> {
                    // A uint32 property: a JSON integer only (QEMU 10.2 refuses "3" and 1.5 alike).
                    if (!v.isIntegralNumber()) {
                        throw QmpException.generic("Parameter 'nr' expects uint64");
                    }
                    final java.math.BigInteger n = v.bigIntegerValue();
                    if (n.signum() < 0 || n.bitLength() > 32) {
                        throw QmpException.generic("Parameter 'nr' expects uint32_t");
                    }
                    if (n.longValue() > Integer.MAX_VALUE) {
                        throw QmpException.generic("virtio-serial-bus: Out-of-range port id specified, max. allowed: "
                            + (unit.device.maxPorts() - 1));
                    }
                    nr = n.intValue();
                }
                case "name" -> {
                    if (!v.isTextual()) {
                        throw QmpException.generic("Invalid parameter type for 'name', expected: string");
                    }
                    name = v.asText();
                }
                case "cols" -> cols = size(v, key);
                case "rows" -> rows = size(v, key);
                case "policy" -> {
                    if (!v.isTextual()) {
                        throw QmpException.generic("Invalid parameter type for 'policy', expected: string");
                    }
                    policy = policy(v.asText());
                }
                default -> throw QmpException.generic("Property '" + driver + "." + key + "' not found");
            }
        }
        if (!console && (cols != 0 || rows != 0)) {
            throw QmpException.generic("Property 'virtserialport." + (cols != 0 ? "cols" : "rows")
                + "' not found (console size is for virtconsole)");
        }
        if (chardev == null) {
            throw QmpException.generic("Property '" + driver + ".chardev' is required: this bridge has no port "
                + "without a host side");
        }
        final Chardev view;
        try {
            view = chardev.newFrontendView();
        } catch (final ChardevException e) {
            throw QmpException.generic("Property '" + driver + ".chardev' can't take value '" + chardevId + "': "
                + e.getMessage());
        }
        final PortLink[] created = new PortLink[1];
        final PortSpec spec;
        try {
            spec = unit.device.addPort(new PortSpec(nr, id, name, console), s -> {
                created[0] = bridge.newLink(s);
                return created[0];
            });
        } catch (final IllegalArgumentException e) {
            if (!e.getMessage().startsWith("virtio-serial-bus: Port number 0 ")) {
                throw QmpException.generic(e.getMessage());
            }
            // QEMU checks the bus (port 0 taken) before the port's own rule.
            final boolean taken = unit.device.ports().stream().anyMatch(p -> p.nr() == 0);
            throw QmpException.generic(taken ? "virtio-serial-bus: A port already exists at id 0"
                : "Port number 0 on virtio-serial devices reserved for virtconsole devices for backward compatibility.");
        }
        unit.device.setOutputPolicy(spec.nr(), policy);
        if (cols != 0 || rows != 0) {
            unit.device.resize(spec.nr(), cols, rows);
        }
        unit.links.put(spec.nr(), created[0]);
        final String attached = chardevId;
        bridge.setLink(attached, created[0]);
        created[0].bind(unit.device, view);
        LOG.info(() -> unit.name + ": device_add " + driver + " port " + spec.nr()
            + (id != null ? " id " + id : "") + " on chardev '" + attached + "'");
        return QmpCommands.json().createObjectNode();
    }

    /** {@code bus}: {@code vsbN} or {@code vsbN.0} (QEMU's bus naming); none = the first device. */
    private static DeviceUnit unit(final Bridge bridge, final String bus) throws QmpException {
        if (bus == null) {
            return bridge.units().get(0);
        }
        for (final DeviceUnit u : bridge.units()) {
            if (bus.equals(u.name) || bus.equals(u.name + ".0")) {
                return u;
            }
        }
        throw QmpException.generic("Bus '" + bus + "' not found");
    }

    /** {@code target}: a device id, or its QOM path {@code /machine/peripheral/ID} (QEMU takes both). */
    private static JsonNode delete(final Bridge bridge, final String target) throws QmpException {
        String id = target;
        if (target.startsWith("/")) {
            // QOM paths skip empty components: "/machine//peripheral/p1/" is p1.
            final java.util.List<String> parts = java.util.Arrays.stream(target.split("/"))
                .filter(p -> !p.isEmpty()).toList();
            if (parts.isEmpty() || parts.equals(java.util.List.of("machine")) || parts.size() == 2
                && parts.get(0).equals("machine")
                && java.util.Set.of("peripheral", "peripheral-anon", "unattached").contains(parts.get(1))) {
                throw QmpException.generic(target + " is not a device");
            }
            id = parts.size() == 3 && parts.get(0).equals("machine") && parts.get(1).equals("peripheral")
                ? parts.get(2) : null;
        }
        if (id == null || id.isEmpty()) {
            throw new QmpException("DeviceNotFound", "Device '" + target + "' not found");
        }
        final Found f;
        try {
            f = find(bridge, id);
        } catch (final QmpException e) {
            throw new QmpException("DeviceNotFound", "Device '" + target + "' not found");
        }
        final String deviceId = id;
        final PortLink link = f.link;
        final int nr = link.port().nr();
        if (!f.unit.links.remove(nr, link)) {
            throw new QmpException("DeviceNotFound", "Device '" + target + "' not found"); // a concurrent device_del
        }
        final java.util.concurrent.CompletableFuture<PortSpec> removed;
        try {
            removed = f.unit.device.removePort(nr);
        } catch (final IllegalArgumentException e) {
            throw new QmpException("DeviceNotFound", "Device '" + target + "' not found");
        }
        removed.whenComplete((spec, error) -> {
            // The worker no longer touches the link: detach the chardev, then tell QMP as QEMU does.
            link.unbind();
            final String chardevId = link.chardev() != null ? link.chardev().id() : null;
            if (chardevId != null && bridge.linkOf(chardevId) == link) {
                bridge.setLink(chardevId, null);
            }
            final ObjectNode data = QmpCommands.json().createObjectNode();
            data.put("device", deviceId);
            data.put("path", "/machine/peripheral/" + deviceId);
            bridge.emit("DEVICE_DELETED", data);
            LOG.info(() -> f.unit.name + ": device_del port " + nr + " (" + deviceId + ")");
        });
        return QmpCommands.json().createObjectNode();
    }

    private static JsonNode query(final Bridge bridge) {
        final ArrayNode list = QmpCommands.json().createArrayNode();
        for (final DeviceUnit unit : bridge.units()) {
            for (final PortSpec port : unit.device.ports()) {
                final PortLink link = unit.links.get(port.nr());
                final ObjectNode info = list.addObject();
                info.put("bus", unit.name + ".0");
                info.put("nr", port.nr());
                if (port.id() != null) {
                    info.put("id", port.id());
                }
                info.put("driver", port.console() ? "virtconsole" : "virtserialport");
                if (port.name() != null) {
                    info.put("name", port.name());
                }
                if (link != null && link.chardev() != null) {
                    info.put("chardev", link.chardev().id());
                }
                try {
                    info.put("guest-open", unit.device.guestConnected(port.nr()));
                    info.put("policy", unit.device.outputPolicy(port.nr()).label());
                    final int[] size = unit.device.size(port.nr());
                    if (port.console()) {
                        info.put("cols", size[0]);
                        info.put("rows", size[1]);
                    }
                    final PortCounters c = unit.device.counters(port.nr());
                    info.put("bytes-to-host", c.bytesToHost());
                    info.put("bytes-from-host", c.bytesFromHost());
                    info.put("bytes-dropped", c.bytesDropped());
                    if (link != null) {
                        info.put("buffer-to-host", link.toHostCapacity());
                        info.put("buffer-from-host", link.fromHostCapacity());
                        info.put("bytes-to-host-direct", link.directBytes());
                        info.put("bytes-from-host-direct", link.directInputBytes());
                    }
                } catch (final IllegalArgumentException e) {
                    list.remove(list.size() - 1); // removed while we looked
                }
            }
        }
        return list;
    }
}
