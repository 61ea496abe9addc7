package org.vsbridge.chardev;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Set;

/**
 * The QAPI JSON form of {@code chardev-add}/{@code chardev-change} ({@code backend: {type, data: {...}}}) into
 * {@link ChardevOptions}, with QMP's defaults ({@code server} true, {@code wait} false) and the errors of QEMU's
 * QObject input visitor, which name a member by its full path ({@code backend.data.addr}).
 */
final class ChardevQapi {

    private ChardevQapi() {
    }

    static ChardevOptions parse(final String id, final JsonNode backendNode) throws ChardevException {
        if (id == null) {
            throw ChardevException.input("Parameter 'id' is missing");
        }
        final Struct backend = Struct.of(backendNode, "backend");
        final String type = backend.string("type", true);
        final ChardevKind kind = ChardevKind.fromQapiName(type);
        if (kind == null) {
            // QEMU's enum visitor names the member alone, not its path.
            throw ChardevException.input("Parameter 'type' does not accept value '" + type + "'");
        }
        final Struct data = Struct.of(backend.member("data", true), "backend.data");
        backend.finish();

        final String logfile = data.string("logfile", false);
        final Boolean logappend = data.bool("logappend", false);
        final ChardevBackend model;
        try {
            model = switch (kind) {
                case FILE -> new ChardevBackend.File(data.string("out", true), data.string("in", false),
                    orElse(data.bool("append", false), false));
                case SERIAL -> new ChardevBackend.Serial(data.string("device", true));
                case PARALLEL -> new ChardevBackend.Parallel(data.string("device", true));
                case PIPE -> new ChardevBackend.Pipe(data.string("device", true));
                case SOCKET -> socket(data);
                case UDP -> udp(address(data, "remote", true), address(data, "local", false));
                case PTY -> new ChardevBackend.Pty(data.string("path", false));
                case NULL -> new ChardevBackend.Null();
                case MUX -> new ChardevBackend.Mux(data.string("chardev", true));
                case HUB -> new ChardevBackend.Hub(data.strings("chardevs", true));
                case MSMOUSE -> new ChardevBackend.Msmouse();
                case WCTABLET -> new ChardevBackend.Wctablet();
                case BRAILLE -> new ChardevBackend.Braille();
                case TESTDEV -> new ChardevBackend.Testdev();
                case STDIO -> new ChardevBackend.Stdio(orElse(data.bool("signal", false), true));
                case CONSOLE -> new ChardevBackend.Console();
                case SPICEVMC -> new ChardevBackend.Spicevmc(data.string("type", true));
                case SPICEPORT -> new ChardevBackend.Spiceport(data.string("fqdn", true));
                case QEMU_VDAGENT -> new ChardevBackend.QemuVdagent(data.bool("mouse", false),
                    data.bool("clipboard", false));
                case DBUS -> new ChardevBackend.Dbus(data.string("name", true));
                case VC -> new ChardevBackend.Vc(data.integer("width", false), data.integer("height", false),
                    data.integer("cols", false), data.integer("rows", false));
                case RINGBUF -> new ChardevBackend.Ringbuf(ringSize(data));
                case MEMORY -> new ChardevBackend.Memory(ringSize(data));
            };
        } catch (final ChardevException e) {
            // QEMU reads all the arguments before it creates anything: an unexpected member is reported
            // before an error of creation.
            if (!e.isInput()) {
                data.finish();
            }
            throw e;
        }
        data.finish();
        return new ChardevOptions(id, model, logfile, logappend != null && logappend);
    }

    private static ChardevBackend.Udp udp(final SocketAddressLegacy remote, final SocketAddressLegacy local)
        throws ChardevException {
        return new ChardevBackend.Udp(
            remote instanceof SocketAddressLegacy.Inet r ? InetPorts.resolveUdp(r) : remote,
            local instanceof SocketAddressLegacy.Inet l ? InetPorts.resolveUdp(l) : local);
    }

    private static long ringSize(final Struct data) throws ChardevException {
        final Long size = data.integer("size", false);
        final long effective = size == null ? ChardevBackend.Ringbuf.DEFAULT_SIZE : size;
        ChardevBackend.checkRingSize(effective);
        return effective;
    }

    private static ChardevBackend.Socket socket(final Struct data) throws ChardevException {
        final SocketAddressLegacy addr = address(data, "addr", true);
        final String tlsCreds = data.string("tls-creds", false);
        final String tlsAuthz = data.string("tls-authz", false);
        final Boolean server = data.bool("server", false);
        final Boolean wait = data.bool("wait", false);
        final Boolean nodelay = data.bool("nodelay", false);
        final Boolean telnet = data.bool("telnet", false);
        final Boolean tn3270 = data.bool("tn3270", false);
        final Boolean websocket = data.bool("websocket", false);
        final Long given = data.integer("reconnect-ms", false);
        // QEMU reconnects only for a value above 0; a negative one is its "do not reconnect", as 0 is.
        final Long reconnectMs = given == null || given >= 0 ? given : Long.valueOf(0);
        final SocketAddressLegacy resolved = addr instanceof SocketAddressLegacy.Inet inet
            ? InetPorts.resolve(inet, orElse(server, true)) : addr;
        return SocketRules.validate(resolved, tlsCreds, tlsAuthz, orElse(server, true), wait != null,
            orElse(wait, false), orElse(nodelay, false), orElse(telnet, false), orElse(tn3270, false), websocket,
            null, reconnectMs);
    }

    /** {@code SocketAddressLegacy}: {@code {type, data}}. */
    private static SocketAddressLegacy address(final Struct parent, final String name, final boolean required)
        throws ChardevException {
        final JsonNode node = parent.member(name, required);
        if (node == null) {
            return null;
        }
        final String path = parent.path + "." + name;
        final Struct wrapper = Struct.of(node, path);
        final String type = wrapper.string("type", true);
        final Struct data = Struct.of(wrapper.member("data", true), path + ".data");
        wrapper.finish();
        final SocketAddressLegacy addr = switch (type) {
            case "inet" -> new SocketAddressLegacy.Inet(data.string("host", true), data.string("port", true),
                data.bool("numeric", false), uint16(data, "to"), data.bool("ipv4", false), data.bool("ipv6", false),
                data.bool("keep-alive", false), data.bool("mptcp", false));
            case "unix" -> new SocketAddressLegacy.Unix(data.string("path", true),
                orElse(data.bool("abstract", false), false), orElse(data.bool("tight", false), true));
            case "vsock" -> new SocketAddressLegacy.Vsock(data.string("cid", true), data.string("port", true));
            case "fd" -> new SocketAddressLegacy.Fd(data.string("str", true));
            default -> throw ChardevException.input("Parameter 'type' does not accept value '" + type + "'");
        };
        data.finish();
        return addr;
    }

    private static Integer uint16(final Struct data, final String name) throws ChardevException {
        final Long v = data.integer(name, false);
        if (v == null) {
            return null;
        }
        if (v < 0 || v > 0xFFFF) {
            // The range check of QEMU's visitor names the member alone.
            throw ChardevException.input("Parameter '" + name + "' expects uint16_t");
        }
        return v.intValue();
    }

    private static <T> T orElse(final T value, final T def) {
        return value != null ? value : def;
    }

    /** One JSON object being visited: typed member access, then a check that nothing unexpected was left. */
    private static final class Struct {
        final JsonNode node;
        final String path;
        final Set<String> visited = new HashSet<>();

        private Struct(final JsonNode node, final String path) {
            this.node = node;
            this.path = path;
        }

        static Struct of(final JsonNode node, final String path) throws ChardevException {
            if (node == null || !node.isObject()) {
                throw typeError(path, "object");
            }
            return new Struct(node, path);
        }

        JsonNode member(final String name, final boolean required) throws ChardevException {
            visited.add(name);
            final JsonNode v = node.get(name);
            if (v == null) {
                if (required) {
                    throw ChardevException.input("Parameter '" + path + "." + name + "' is missing");
                }
                return null;
            }
            return v;
        }

        String string(final String name, final boolean required) throws ChardevException {
            final JsonNode v = member(name, required);
            if (v == null) {
                return null;
            }
            if (!v.isTextual()) {
                throw typeError(path + "." + name, "string");
            }
            return v.textValue();
        }

        Boolean bool(final String name, final boolean required) throws ChardevException {
            final JsonNode v = member(name, required);
            if (v == null) {
                return null;
            }
            if (!v.isBoolean()) {
                throw typeError(path + "." + name, "boolean");
            }
            return v.booleanValue();
        }

        Long integer(final String name, final boolean required) throws ChardevException {
            final JsonNode v = member(name, required);
            if (v == null) {
                return null;
            }
            if (!v.isIntegralNumber() || !v.canConvertToLong()) {
                throw typeError(path + "." + name, "integer");
            }
            return v.longValue();
        }

        List<String> strings(final String name, final boolean required) throws ChardevException {
            final JsonNode v = member(name, required);
            if (v == null) {
                return null;
            }
            if (!v.isArray()) {
                throw typeError(path + "." + name, "array");
            }
            final List<String> out = new ArrayList<>();
            for (int i = 0; i < v.size(); i++) {
                if (!v.get(i).isTextual()) {
                    throw typeError(path + "." + name + "[" + i + "]", "string");
                }
                out.add(v.get(i).textValue());
            }
            return out;
        }

        void finish() throws ChardevException {
            final Iterator<String> names = node.fieldNames();
            while (names.hasNext()) {
                final String n = names.next();
                if (!visited.contains(n)) {
                    throw ChardevException.input("Parameter '" + path + "." + n + "' is unexpected");
                }
            }
        }

        private static ChardevException typeError(final String path, final String expected) {
            return ChardevException.input("Invalid parameter type for '" + path + "', expected: " + expected);
        }
    }
}
