package org.vsbridge.core.config;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.DeviceGroup;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.cli.Limits;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.objects.ObjectException;
import org.vsbridge.core.objects.ObjectSpec;
import org.vsbridge.core.qmp.QmpAddress;

/**
 * The configuration file ({@code --config FILE}): JSON describing the same model as the command line.
 *
 * <pre>
 * {
 *   "socket-path": "/run/vhost-serial-bridge/vm1.sock",
 *   "max-ports": 4,
 *   "log-level": "info",
 *   "log-file": "/var/log/vhost-serial-bridge/vm1.log",
 *   "chardevs": [
 *     "socket,id=c0,path=/run/vm1-console.sock,server=on,wait=off",
 *     { "id": "c1", "backend": { "type": "socket", "data": {
 *         "addr": { "type": "inet", "data": { "host": "127.0.0.1", "port": "4555" } } } } }
 *   ],
 *   "devices": [
 *     { "driver": "virtconsole", "chardev": "c0", "id": "con0" },
 *     { "driver": "virtserialport", "chardev": "c1", "name": "org.example.1", "id": "port1", "nr": 1 }
 *   ],
 *   "qmp": [ "unix:/run/vhost-serial-bridge/vm1.qmp,server=on,wait=off" ],
 *   "objects": [ "tls-creds-x509,id=tls0,dir=/etc/pki/vsb,endpoint=server" ],
 *   "device-groups": [ { "socket-path": "/run/vhost-serial-bridge/vm1-b.sock", "max-ports": 2,
 *                        "devices": [ ... ] } ]
 * }
 * </pre>
 *
 * The top level describes the first device; {@code device-groups} are the further devices a second
 * {@code --socket-path} starts on the command line. Objects are {@code --object} strings or {@code object-add}
 * argument objects.
 *
 * A chardev is either a QEMU {@code -chardev} string (CLI defaults: {@code server=off}, {@code wait=on} with a
 * server) or a QAPI {@code chardev-add} object (QMP defaults: {@code server=true}, {@code wait=false}). Every
 * key is optional in the file; what must be there is checked after the command line is merged in
 * ({@link #check}). Unknown keys, duplicate keys and wrong types are errors naming the key path and its
 * {@code line:column}.
 *
 * <p>Merging ({@link #merge}): options on the command line win. A scalar given there ({@code --socket-path},
 * {@code --max-ports}, {@code --log-level}, {@code --log-file}, and each vhost option such as
 * {@code --packed-ring}) replaces the file's; a list given there (one or
 * more {@code --chardev}, {@code --device}, {@code --qmp}, {@code --object}, device groups) replaces the file's whole
 * list of that kind; lists
 * not given there are kept from the file.
 */
public final class ConfigFile {

    /**
     * What a file says.
     *
     * @param config   the model; {@code socketPath} null and lists empty when the file does not give them
     * @param logLevel the file's {@code log-level}, or null
     * @param logFile  the file's {@code log-file}, or null
     */
    public record Settings(BridgeConfig config, Level logLevel, Path logFile) {
    }

    private static final Set<String> KEYS = Set.of("socket-path", "max-ports", "log-level", "log-file", "chardevs",
        "devices", "qmp", "socket-mode", "reconnect-ms", "resize-order", "emergency-chardev", "packed-ring", "objects",
        "device-groups", "limits");
    private static final Set<String> GROUP_KEYS = Set.of("socket-path", "max-ports", "devices");
    private static final Set<String> DEVICE_KEYS = Set.of("driver", "chardev", "name", "id", "nr", "cols", "rows",
        "policy");
    private static final ObjectMapper JSON = JsonMapper.builder()
        .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
        .build();

    private final Path file;
    private final JsonParser parser;

    private ConfigFile(final Path file, final JsonParser parser) {
        this.file = file;
        this.parser = parser;
    }

    /** The model of {@code file} (see {@link #read} for the log settings too). */
    public static BridgeConfig load(final Path file) throws UsageException {
        return read(file).config();
    }

    /** Reads and checks the syntax and types of {@code file}. */
    public static Settings read(final Path file) throws UsageException {
        try (JsonParser parser = JSON.createParser(file.toFile())) {
            return new ConfigFile(file, parser).settings();
        } catch (final JsonProcessingException e) {
            final JsonLocation at = e.getLocation();
            throw new UsageException(file + (at != null ? ":" + at.getLineNr() + ":" + at.getColumnNr() : "") + ": "
                + e.getOriginalMessage().lines().findFirst().orElse("malformed JSON"));
        } catch (final NoSuchFileException | java.io.FileNotFoundException e) {
            throw new UsageException(file + ": no such file");
        } catch (final IOException e) {
            throw new UsageException(file + ": " + e.getMessage());
        }
    }

    /** Parses {@code text} as if it were {@code name} (tests, {@code --config -} one day). */
    static Settings parse(final String name, final String text) throws UsageException {
        try (JsonParser parser = JSON.createParser(text)) {
            return new ConfigFile(Path.of(name), parser).settings();
        } catch (final JsonProcessingException e) {
            final JsonLocation at = e.getLocation();
            throw new UsageException(name + (at != null ? ":" + at.getLineNr() + ":" + at.getColumnNr() : "") + ": "
                + e.getOriginalMessage().lines().findFirst().orElse("malformed JSON"));
        } catch (final IOException e) {
            throw new UsageException(name + ": " + e.getMessage());
        }
    }

    private Settings settings() throws IOException, UsageException {
        if (parser.nextToken() != JsonToken.START_OBJECT) {
            throw error("", "the file must hold one JSON object");
        }
        Path socketPath = null;
        int maxPorts = -1;
        Level level = null;
        Path logFile = null;
        List<ChardevOptions> chardevs = List.of();
        List<DeviceSpec> devices = List.of();
        List<QmpAddress> qmp = List.of();
        List<ObjectSpec> objects = List.of();
        List<DeviceGroup> groups = List.of();
        Limits limits = Limits.DEFAULT;
        org.vsbridge.core.cli.VhostOptions vhost = org.vsbridge.core.cli.VhostOptions.DEFAULT;
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
            final String key = parser.currentName();
            final JsonLocation keyAt = parser.currentTokenLocation();
            parser.nextToken();
            switch (key) {
                case "socket-path" -> socketPath = Path.of(nonEmpty(key));
                case "log-file" -> logFile = Path.of(nonEmpty(key));
                case "max-ports" -> maxPorts = maxPorts(key);
                case "log-level" -> level = level(key);
                case "socket-mode" -> {
                    final String mode = nonEmpty(key);
                    if (!mode.equals("server") && !mode.equals("client")) {
                        throw error(key, "expected server or client, got '" + mode + "'");
                    }
                    vhost = vhost.withClient(mode.equals("client"));
                }
                case "reconnect-ms" -> {
                    final int ms = integer(key);
                    if (ms < 0) {
                        throw error(key, "expected milliseconds >= 0, got " + ms);
                    }
                    vhost = vhost.withReconnectMs(ms);
                }
                case "resize-order" -> {
                    final org.vsbridge.console.ResizeOrder order;
                    try {
                        order = org.vsbridge.console.ResizeOrder.parse(nonEmpty(key));
                    } catch (final IllegalArgumentException e) {
                        throw error(key, e.getMessage());
                    }
                    vhost = vhost.withResizeOrder(order);
                }
                case "emergency-chardev" -> vhost = vhost.withEmergencyChardev(nonEmpty(key));
                case "packed-ring" -> vhost = vhost.withPackedRing(bool(key));
                case "chardevs" -> chardevs = chardevs();
                case "devices" -> devices = devices(key);
                case "qmp" -> qmp = qmp();
                case "objects" -> objects = objects();
                case "device-groups" -> groups = deviceGroups();
                case "limits" -> limits = limits();
                default -> throw error(key, keyAt, "unknown key (expected one of " + String.join(", ", sorted(KEYS))
                    + ")");
            }
        }
        if (parser.currentToken() != JsonToken.END_OBJECT) {
            throw error("", "expected a key");
        }
        if (parser.nextToken() != null) {
            throw error("", "text after the configuration object");
        }
        return new Settings(new BridgeConfig(socketPath, chardevs, devices, qmp, maxPorts, objects, vhost, groups,
            limits), level, logFile);
    }

    /** Reads one element of a list; the parser is on its first token. */
    @FunctionalInterface
    private interface Element<T> {
        T read(String key, JsonLocation at) throws IOException, UsageException;
    }

    /** The array at {@code listKey}, each element read by {@code element} under the key {@code listKey[i]}. */
    private <T> List<T> list(final String listKey, final Element<T> element) throws IOException, UsageException {
        expectArray(listKey);
        final List<T> out = new ArrayList<>();
        for (int i = 0; parser.nextToken() != JsonToken.END_ARRAY; i++) {
            out.add(element.read(listKey + "[" + i + "]", parser.currentTokenLocation()));
        }
        return List.copyOf(out);
    }

    private List<ChardevOptions> chardevs() throws IOException, UsageException {
        return list("chardevs", (key, at) -> {
            if (parser.currentToken() == JsonToken.VALUE_STRING) {
                final String spec = parser.getText();
                try {
                    return ChardevOptions.parse(spec);
                } catch (final ChardevException e) {
                    throw error(key, at, "-chardev " + spec + ": " + e.getMessage());
                }
            }
            if (parser.currentToken() == JsonToken.START_OBJECT) {
                return qapiChardev(key, at, parser.readValueAsTree());
            }
            throw error(key, "expected a -chardev string or a {\"id\": ..., \"backend\": {...}} object, got "
                + describe(parser.currentToken()));
        });
    }

    private ChardevOptions qapiChardev(final String key, final JsonLocation at, final JsonNode node)
        throws UsageException {
        final Iterator<Map.Entry<String, JsonNode>> fields = node.fields();
        while (fields.hasNext()) {
            final String name = fields.next().getKey();
            if (!name.equals("id") && !name.equals("backend")) {
                throw error(key + "." + name, at, "unknown key (expected id, backend)");
            }
        }
        final JsonNode id = node.get("id");
        if (id == null || !id.isTextual() || id.asText().isEmpty()) {
            throw error(key + ".id", at, "a non-empty string is required");
        }
        final JsonNode backend = node.get("backend");
        if (backend == null) {
            throw error(key + ".backend", at, "required ({\"type\": ..., \"data\": {...}})");
        }
        try {
            return ChardevOptions.fromQapi(id.asText(), backend);
        } catch (final ChardevException e) {
            throw error(key, at, "chardev '" + id.asText() + "': " + e.getMessage());
        }
    }

    private int maxPorts(final String key) throws IOException, UsageException {
        final int n = integer(key);
        if (n < 1 || n > PortPlan.MAX_PORTS_LIMIT) {
            throw error(key, "expected a number from 1 to " + PortPlan.MAX_PORTS_LIMIT + ", got " + n);
        }
        return n;
    }

    /** {@code objects}: {@code --object} strings or {@code object-add} argument objects. */
    private List<ObjectSpec> objects() throws IOException, UsageException {
        return list("objects", (key, at) -> {
            try {
                if (parser.currentToken() == JsonToken.VALUE_STRING) {
                    return ObjectSpec.parse(parser.getText());
                }
                if (parser.currentToken() == JsonToken.START_OBJECT) {
                    return ObjectSpec.fromQmp(parser.readValueAsTree());
                }
            } catch (final ObjectException e) {
                throw error(key, at, e.getMessage());
            }
            throw error(key, "expected an --object string or a {\"qom-type\": ..., \"id\": ..., ...} object, got "
                + describe(parser.currentToken()));
        });
    }

    /** {@code limits}: an object of byte counts, {@code {"port-buffer-to-host": 1048576, ...}}. */
    private Limits limits() throws IOException, UsageException {
        if (parser.currentToken() != JsonToken.START_OBJECT) {
            throw error("limits", "expected an object {\"" + Limits.NAMES[0] + "\": BYTES, ...}, got "
                + describe(parser.currentToken()));
        }
        Limits limits = Limits.DEFAULT;
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
            final String field = parser.currentName();
            final String key = "limits." + field;
            final JsonLocation at = parser.currentTokenLocation();
            parser.nextToken();
            if (!java.util.Arrays.asList(Limits.NAMES).contains(field)) {
                throw error(key, at, "unknown key (expected one of " + String.join(", ", Limits.NAMES) + ")");
            }
            try {
                limits = limits.with(field, integer(key));
            } catch (final IllegalArgumentException e) {
                throw error(key, at, e.getMessage());
            }
        }
        return limits;
    }

    /** {@code device-groups}: the devices after the first, each {@code {socket-path, max-ports, devices}}. */
    private List<DeviceGroup> deviceGroups() throws IOException, UsageException {
        return list("device-groups", (key, at) -> {
            if (parser.currentToken() != JsonToken.START_OBJECT) {
                throw error(key, "expected an object {\"socket-path\": PATH, \"devices\": [...]}, got "
                    + describe(parser.currentToken()));
            }
            Path socketPath = null;
            int maxPorts = -1;
            List<DeviceSpec> devices = List.of();
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                final String field = parser.currentName();
                final String fieldKey = key + "." + field;
                final JsonLocation fieldAt = parser.currentTokenLocation();
                parser.nextToken();
                switch (field) {
                    case "socket-path" -> socketPath = Path.of(nonEmpty(fieldKey));
                    case "max-ports" -> maxPorts = maxPorts(fieldKey);
                    case "devices" -> devices = devices(fieldKey);
                    default -> throw error(fieldKey, fieldAt, "unknown key (expected one of "
                        + String.join(", ", sorted(GROUP_KEYS)) + ")");
                }
            }
            if (socketPath == null) {
                throw error(key + ".socket-path", at, "required: each further device has its own vhost-user socket");
            }
            if (devices.isEmpty()) {
                throw error(key + ".devices", at, "required: at least one virtconsole or virtserialport");
            }
            return new DeviceGroup(socketPath, devices, maxPorts);
        });
    }

    private List<DeviceSpec> devices(final String listKey) throws IOException, UsageException {
        return list(listKey, (key, at) -> {
            if (parser.currentToken() != JsonToken.START_OBJECT) {
                throw error(key, "expected an object {\"driver\": \"virtconsole\"|\"virtserialport\", "
                    + "\"chardev\": ID, ...}, got " + describe(parser.currentToken()));
            }
            String driver = null;
            String chardev = null;
            String name = null;
            String id = null;
            int nr = -1;
            int cols = 0;
            int rows = 0;
            org.vsbridge.console.OutputPolicy policy = org.vsbridge.console.OutputPolicy.DROP;
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                final String field = parser.currentName();
                final String fieldKey = key + "." + field;
                final JsonLocation fieldAt = parser.currentTokenLocation();
                parser.nextToken();
                switch (field) {
                    case "driver" -> {
                        driver = nonEmpty(fieldKey);
                        if (!driver.equals("virtconsole") && !driver.equals("virtserialport")) {
                            throw error(fieldKey, "'" + driver + "' is not a valid device model name (expected "
                                + "virtconsole or virtserialport)");
                        }
                    }
                    case "chardev" -> chardev = nonEmpty(fieldKey);
                    case "name" -> name = nonEmpty(fieldKey);
                    case "id" -> id = nonEmpty(fieldKey);
                    case "nr" -> {
                        nr = integer(fieldKey);
                        if (nr < 0 || nr >= PortPlan.MAX_PORTS_LIMIT) {
                            throw error(fieldKey, "expected a port number from 0 to " + (PortPlan.MAX_PORTS_LIMIT - 1)
                                + ", got " + nr);
                        }
                    }
                    case "cols", "rows" -> {
                        final int n = integer(fieldKey);
                        if (n < 0 || n > 0xFFFF) {
                            throw error(fieldKey, "expected a console size from 0 to 65535, got " + n);
                        }
                        if (field.equals("cols")) {
                            cols = n;
                        } else {
                            rows = n;
                        }
                    }
                    case "policy" -> {
                        try {
                            policy = org.vsbridge.console.OutputPolicy.parse(nonEmpty(fieldKey));
                        } catch (final IllegalArgumentException e) {
                            throw error(fieldKey, "expected drop or hold");
                        }
                    }
                    default -> throw error(fieldKey, fieldAt, "unknown key (expected one of "
                        + String.join(", ", sorted(DEVICE_KEYS)) + ")");
                }
            }
            if (driver == null) {
                throw error(key + ".driver", at, "required (virtconsole or virtserialport)");
            }
            if (chardev == null) {
                throw error(key + ".chardev", at, "required (the id of a chardev)");
            }
            if ((cols != 0 || rows != 0) && !driver.equals("virtconsole")) {
                throw error(key + ".cols", at, "console size is for virtconsole only");
            }
            return new DeviceSpec(driver.equals("virtconsole"), chardev, name, id, nr, cols, rows, policy);
        });
    }

    private List<QmpAddress> qmp() throws IOException, UsageException {
        return list("qmp", (key, at) -> {
            final String spec = nonEmpty(key);
            try {
                return QmpAddress.parse(spec);
            } catch (final IllegalArgumentException e) {
                throw error(key, e.getMessage());
            }
        });
    }

    private void expectArray(final String key) throws UsageException {
        if (parser.currentToken() != JsonToken.START_ARRAY) {
            throw error(key, "expected an array, got " + describe(parser.currentToken()));
        }
    }

    private String nonEmpty(final String key) throws IOException, UsageException {
        if (parser.currentToken() != JsonToken.VALUE_STRING) {
            throw error(key, "expected a string, got " + describe(parser.currentToken()));
        }
        final String s = parser.getText();
        if (s.isEmpty()) {
            throw error(key, "must not be empty");
        }
        return s;
    }

    private boolean bool(final String key) throws UsageException {
        final JsonToken token = parser.currentToken();
        if (token != JsonToken.VALUE_TRUE && token != JsonToken.VALUE_FALSE) {
            throw error(key, "expected a boolean, got " + describe(token));
        }
        return token == JsonToken.VALUE_TRUE;
    }

    private int integer(final String key) throws IOException, UsageException {
        if (parser.currentToken() != JsonToken.VALUE_NUMBER_INT) {
            throw error(key, "expected an integer, got " + describe(parser.currentToken()));
        }
        if (parser.getNumberType() != JsonParser.NumberType.INT) {
            throw error(key, "number out of range: " + parser.getText());
        }
        return parser.getIntValue();
    }

    private Level level(final String key) throws IOException, UsageException {
        final String value = nonEmpty(key);
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "error" -> Level.SEVERE;
            case "warning", "warn" -> Level.WARNING;
            case "info" -> Level.INFO;
            case "debug" -> Level.FINE;
            default -> throw error(key, "'" + value + "': expected error, warning, info or debug");
        };
    }

    private static String describe(final JsonToken token) {
        if (token == null) {
            return "the end of the file";
        }
        return switch (token) {
            case START_OBJECT -> "an object";
            case START_ARRAY -> "an array";
            case VALUE_STRING -> "a string";
            case VALUE_NUMBER_INT -> "an integer";
            case VALUE_NUMBER_FLOAT -> "a number";
            case VALUE_TRUE, VALUE_FALSE -> "a boolean";
            case VALUE_NULL -> "null";
            default -> token.toString();
        };
    }

    private UsageException error(final String key, final String message) {
        return error(key, parser.currentTokenLocation(), message);
    }

    private UsageException error(final String key, final JsonLocation at, final String message) {
        return new UsageException(file + ":" + at.getLineNr() + ":" + at.getColumnNr() + ": "
            + (key.isEmpty() ? "" : "'" + key + "': ") + message);
    }

    private static List<String> sorted(final Set<String> keys) {
        return keys.stream().sorted().toList();
    }

    /**
     * The file's settings with the command line's on top (see the class comment). {@code commandLine} is what
     * {@code CommandLine} parsed without requiring completeness: null socket path, empty lists and
     * {@code maxPorts} -1 mean "not given".
     */
    public static BridgeConfig merge(final BridgeConfig file, final BridgeConfig commandLine) {
        return new BridgeConfig(
            commandLine.socketPath() != null ? commandLine.socketPath() : file.socketPath(),
            !commandLine.chardevs().isEmpty() ? commandLine.chardevs() : file.chardevs(),
            !commandLine.devices().isEmpty() ? commandLine.devices() : file.devices(),
            !commandLine.qmp().isEmpty() ? commandLine.qmp() : file.qmp(),
            commandLine.maxPorts() > 0 ? commandLine.maxPorts() : file.maxPorts(),
            !commandLine.objects().isEmpty() ? commandLine.objects() : file.objects(),
            commandLine.vhost().over(file.vhost()),
            !commandLine.moreDevices().isEmpty() ? commandLine.moreDevices() : file.moreDevices(),
            commandLine.limits().over(file.limits()));
    }

    /** {@code commandLine} when given, else {@code file}, else {@code fallback}. */
    public static <T> T pick(final T commandLine, final T file, final T fallback) {
        return commandLine != null ? commandLine : file != null ? file : fallback;
    }

    /**
     * Checks that a merged configuration can run: a vhost-user socket (a path, or {@code vhostSocketInherited}),
     * at least one port, and {@link BridgeConfig#plans()}: the same checks {@code Bridge.start()} makes, without
     * opening anything. Returns the plan of every device, the first device's first.
     */
    public static List<PortPlan> check(final BridgeConfig config, final boolean vhostSocketInherited)
        throws UsageException {
        if (config.socketPath() == null && !vhostSocketInherited) {
            throw new UsageException("no vhost-user socket: give socket-path (file), --socket-path, --fd N, or a "
                + "socket unit with FileDescriptorName=vhost-user");
        }
        if (config.devices().isEmpty()) {
            throw new UsageException("no ports: give at least one device (file: \"devices\", command line: "
                + "--device virtconsole|virtserialport,...)");
        }
        return config.plans();
    }

    /** One line for {@code --check-config} and the start-up log. */
    public static String describe(final BridgeConfig config, final PortPlan plan, final String vhostSocket) {
        return "vhost-user socket " + vhostSocket + "; " + plan.ports().size() + " port(s), max_nr_ports "
            + plan.maxPorts() + " (frontend num_vqs=" + 2 * (plan.maxPorts() + 1) + "); " + config.chardevs().size()
            + " chardev(s); " + config.qmp().size() + " QMP monitor(s)";
    }
}
