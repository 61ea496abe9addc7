package org.vsbridge.core;

import static org.vsbridge.core.qmp.QmpCommand.Param.optional;
import static org.vsbridge.core.qmp.QmpCommand.Param.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Map;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.RingbufChardev;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.core.qmp.QmpCommand;
import org.vsbridge.core.qmp.QmpCommand.Type;
import org.vsbridge.core.qmp.QmpException;
import org.vsbridge.core.qmp.QmpSchema;
import org.vsbridge.core.qmp.QmpServer;

/** The QMP commands this process implements, with QEMU's argument names, results and error wording. */
final class QmpCommands {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Chardev kinds this version can create (query-chardev-backends). */
    static final String[] BACKENDS = java.util.Arrays.stream(org.vsbridge.chardev.ChardevKind.values())
        .filter(k -> k.support() == org.vsbridge.chardev.ChardevKind.Support.BUILT)
        .map(org.vsbridge.chardev.ChardevKind::qapiName).toArray(String[]::new);

    /** QAPI's enum DataFormat. */
    private static final QmpCommand.Param DATA_FORMAT = QmpCommand.Param.optionalEnum("utf8", "base64");

    private QmpCommands() {
    }

    static ObjectMapper json() {
        return JSON;
    }

    static ObjectNode version() {
        final ObjectNode version = JSON.createObjectNode();
        final String v = Main.version();
        final String[] parts = v.replaceAll("[^0-9.].*$", "").split("\\.");
        final ObjectNode qemu = version.putObject("qemu");
        qemu.put("major", parts.length > 0 && !parts[0].isEmpty() ? Integer.parseInt(parts[0]) : 0);
        qemu.put("minor", parts.length > 1 ? Integer.parseInt(parts[1]) : 0);
        qemu.put("micro", parts.length > 2 ? Integer.parseInt(parts[2]) : 0);
        version.put("package", "vhost-serial-bridge " + v);
        return version;
    }

    static void registerAll(final QmpServer qmp, final Bridge bridge) {
        qmp.register(new QmpCommand("query-commands", Map.of(), args -> {
            final ArrayNode list = JSON.createArrayNode();
            list.addObject().put("name", "qmp_capabilities");
            list.addObject().put("name", "qmp_capabilities");
            for (final String name : qmp.commandNames()) {
                list.addObject().put("name", name);
            }
            return list;
        }));
        qmp.register(new QmpCommand("query-version", Map.of(), args -> version()));
        qmp.register(new QmpCommand("quit", Map.of(), args -> JSON.createObjectNode()));
        qmp.register(new QmpCommand("query-chardev", Map.of(), args -> queryChardev(bridge)));
        qmp.register(new QmpCommand("query-chardev-backends", Map.of(), args -> {
            final ArrayNode list = JSON.createArrayNode();
            for (final String name : BACKENDS) {
                list.addObject().put("name", name);
            }
            return list;
        }));
        qmp.register(new QmpCommand("ringbuf-write",
            QmpCommand.ordered("device", required(Type.STRING), "data", required(Type.STRING), "format", DATA_FORMAT),
            args -> {
                final RingbufChardev ring = ringbuf(bridge, args.get("device").asText());
                final byte[] data = decode(args.get("data").asText(), format(args));
                ring.write(data);
                return JSON.createObjectNode();
            }));
        qmp.register(new QmpCommand("ringbuf-read",
            QmpCommand.ordered("device", required(Type.STRING), "size", required(Type.INT), "format", DATA_FORMAT),
            args -> {
                final long size = args.get("size").asLong();
                final RingbufChardev ring = ringbuf(bridge, args.get("device").asText());
                if (size <= 0) {
                    throw QmpException.generic("size must be greater than zero");
                }
                final boolean base64 = format(args);
                final byte[] data = ring.read((int) Math.min(size, Integer.MAX_VALUE));
                return JSON.getNodeFactory().textNode(base64 ? Base64.getEncoder().encodeToString(data) : utf8(data));
            }));
        ChardevCommands.register(qmp, bridge);
        DeviceCommands.register(qmp, bridge);
        // A bridge has no -name: an empty NameInfo, as QEMU started without one.
        qmp.register(new QmpCommand("query-name", Map.of(), args -> JSON.createObjectNode()));
        // The bridge serves from start to quit: "running", as a VM that runs (docs/qmp.md).
        qmp.register(new QmpCommand("query-status", Map.of(), args -> {
            final ObjectNode status = JSON.createObjectNode();
            status.put("status", "running");
            status.put("running", true);
            return status;
        }));
        qmp.register(new QmpCommand("query-qmp-schema", Map.of(), args -> qmp.schema()));
        describe(qmp);
    }

    /** The result and event types of query-qmp-schema (the argument types come from each command's parameters). */
    private static void describe(final QmpServer qmp) {
        final QmpSchema.Type name = QmpSchema.obj("name", QmpSchema.STR);
        qmp.describe("query-commands", null, QmpSchema.arr(name));
        qmp.describe("query-version", null, QmpSchema.obj("qemu",
            QmpSchema.obj("major", QmpSchema.INT, "minor", QmpSchema.INT, "micro", QmpSchema.INT),
            "package", QmpSchema.STR));
        qmp.describe("query-chardev", null, QmpSchema.arr(QmpSchema.obj("label", QmpSchema.STR,
            "filename", QmpSchema.STR, "frontend-open", QmpSchema.BOOL)));
        qmp.describe("query-chardev-backends", null, QmpSchema.arr(name));
        qmp.describe("ringbuf-read", null, QmpSchema.STR);
        final QmpSchema.Type chardevReturn = QmpSchema.obj("*pty", QmpSchema.STR);
        qmp.describe("chardev-add", null, chardevReturn);
        qmp.describe("chardev-change", null, chardevReturn);
        qmp.describe("device_add", QmpSchema.obj("driver", QmpSchema.STR, "*bus", QmpSchema.STR,
            "*id", QmpSchema.STR), QmpSchema.EMPTY);
        qmp.describe("query-vserport", null, QmpSchema.arr(QmpSchema.ANY));
        qmp.describe("query-name", null, QmpSchema.obj("*name", QmpSchema.STR));
        qmp.describe("query-status", null, QmpSchema.obj("running", QmpSchema.BOOL, "status",
            QmpSchema.enumOf("debug", "inmigrate", "internal-error", "io-error", "paused", "postmigrate",
                "prelaunch", "finish-migrate", "restore-vm", "running", "save-vm", "shutdown", "suspended",
                "watchdog", "guest-panicked", "colo")));
        qmp.describe("query-qmp-schema", null, QmpSchema.arr(QmpSchema.ANY));
        qmp.describeEvent("SHUTDOWN", QmpSchema.obj("guest", QmpSchema.BOOL, "reason", QmpSchema.enumOf("none",
            "host-error", "host-qmp-quit", "host-qmp-system-reset", "host-signal", "host-ui", "guest-shutdown",
            "guest-reset", "guest-panic", "subsystem-reset", "snapshot-load")));
        qmp.describeEvent("VSERPORT_CHANGE", QmpSchema.obj("id", QmpSchema.STR, "open", QmpSchema.BOOL));
        qmp.describeEvent("DEVICE_DELETED", QmpSchema.obj("*device", QmpSchema.STR, "path", QmpSchema.STR));
    }

    private static JsonNode queryChardev(final Bridge bridge) {
        final ArrayNode list = JSON.createArrayNode();
        for (final Chardev chardev : bridge.chardevs().values()) {
            final ObjectNode info = list.addObject();
            info.put("label", chardev.id());
            info.put("filename", chardev.filename());
            final PortLink link = bridge.linkOf(chardev.id());
            // As QEMU: a console's frontend is open from realize; a serial port's follows the guest's PORT_OPEN.
            final DeviceUnit unit = link != null ? bridge.unitOf(link) : null;
            final boolean frontendOpen = unit != null && (link.port().console() || unit.guestConnected(link.port()));
            info.put("frontend-open", frontendOpen);
        }
        return list;
    }

    private static RingbufChardev ringbuf(final Bridge bridge, final String id) throws QmpException {
        final Chardev chardev = bridge.chardevs().get(id);
        if (chardev == null) {
            throw QmpException.generic("Device '" + id + "' not found");
        }
        if (!(chardev instanceof RingbufChardev ring)) {
            throw QmpException.generic(id + " is not a ringbuf device");
        }
        return ring;
    }

    /** True for base64, false for utf8 (the default). */
    private static boolean format(final ObjectNode args) throws QmpException {
        final JsonNode format = args.get("format");
        if (format == null || format.asText().equals("utf8")) {
            return false;
        }
        if (format.asText().equals("base64")) {
            return true;
        }
        throw QmpException.generic("Parameter 'format' does not accept value '" + format.asText() + "'");
    }

    private static byte[] decode(final String data, final boolean base64) throws QmpException {
        if (!base64) {
            return data.getBytes(StandardCharsets.UTF_8);
        }
        try {
            return Base64.getDecoder().decode(data);
        } catch (final IllegalArgumentException e) {
            throw QmpException.generic("Base64 data contains invalid characters");
        }
    }

    /**
     * QEMU returns the raw bytes as a C string: they end at the first NUL, and bytes that are not valid UTF-8
     * are not repaired (the documented caveat of format utf8: use base64 for binary data). Java strings must
     * be valid, so invalid sequences become U+FFFD here.
     */
    private static String utf8(final byte[] data) {
        int end = 0;
        while (end < data.length && data[end] != 0) {
            end++;
        }
        return new String(data, 0, end, StandardCharsets.UTF_8);
    }
}
