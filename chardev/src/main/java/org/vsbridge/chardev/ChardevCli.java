package org.vsbridge.chardev;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * QEMU's {@code -chardev} option syntax ({@code QemuOpts} with the {@code chardev} option list) and the legacy
 * short forms of {@code qemu_chr_parse_compat}, into {@link ChardevOptions}. Like QEMU, every option of the
 * chardev list is accepted (and type-checked) with every driver; a driver ignores the options it has no use for.
 */
final class ChardevCli {

    private enum Type { STRING, BOOL, NUMBER, SIZE }

    /** QEMU's {@code qemu_chardev_opts}: option name and type. */
    private static final Map<String, Type> OPTIONS = new LinkedHashMap<>();

    static {
        for (final String s : new String[] {"backend", "path", "input-path", "host", "port", "fd", "localaddr",
            "localport", "tls-creds", "tls-authz", "name", "chardev", "logfile"}) {
            OPTIONS.put(s, Type.STRING);
        }
        for (final String s : new String[] {"to", "reconnect", "reconnect-ms", "width", "height", "cols", "rows",
            "debug"}) {
            OPTIONS.put(s, Type.NUMBER);
        }
        for (final String s : new String[] {"ipv4", "ipv6", "wait", "server", "delay", "nodelay", "telnet",
            "tn3270", "websocket", "mux", "signal", "append", "logappend", "mouse", "clipboard", "tight",
            "abstract"}) {
            OPTIONS.put(s, Type.BOOL);
        }
        OPTIONS.put("size", Type.SIZE);
    }

    /**
     * QEMU 10's hub lists its chardevs as {@code chardevs.0=a,chardevs.1=b}. At most 9 digits: the index fits an
     * int, and a longer one is an unknown parameter, as in QEMU (whose list is much shorter).
     */
    private static final Pattern HUB_MEMBER = Pattern.compile("chardevs\\.(\\d{1,9})");

    /** QEMU's {@code id_wellformed}: a letter, then letters, digits, '-', '.', '_'. */
    private static final Pattern ID = Pattern.compile("[A-Za-z][A-Za-z0-9._-]*");

    private static final Pattern SIZE = Pattern.compile("(\\d+(?:\\.\\d*)?|\\.\\d+)([bBkKmMgGtTpPeE]?)");

    /** The 2^64 limit of QEMU's size options. */
    private static final BigInteger SIZE_LIMIT = BigInteger.ONE.shiftLeft(64);

    private ChardevCli() {
    }

    /**
     * Like {@link #parse}, and {@code mux=on} gives QEMU's pair: the backend as {@code ID-base}, then the
     * {@code mux} {@code ID} on it.
     */
    static java.util.List<ChardevOptions> parseAll(final String spec, final String defaultId)
        throws ChardevException {
        if (spec == null) {
            throw new ChardevException("Parameter 'backend' is missing");
        }
        Map<String, String> opts = defaultId != null ? parseCompat(spec) : null;
        if (opts == null) {
            opts = new LinkedHashMap<>();
            parseParams(spec, "backend", opts);
        }
        final String mux = opts.get("mux");
        if (mux == null || !parseBool("mux", mux)) {
            return java.util.List.of(build(opts, defaultId));
        }
        opts.remove("mux");
        final String id = opts.getOrDefault("id", defaultId);
        if (id == null) {
            throw new ChardevException("Parameter 'id' is missing");
        }
        opts.put("id", id + "-base");
        final ChardevOptions base = build(opts, null);
        return java.util.List.of(base, new ChardevOptions(id, new ChardevBackend.Mux(id + "-base")));
    }

    static ChardevOptions parse(final String spec, final String defaultId) throws ChardevException {
        if (spec == null) {
            throw new ChardevException("Parameter 'backend' is missing");
        }
        if (defaultId != null) {
            final Map<String, String> compat = parseCompat(spec);
            if (compat != null) {
                return build(compat, defaultId);
            }
        }
        final Map<String, String> opts = new LinkedHashMap<>();
        parseParams(spec, "backend", opts);
        return build(opts, defaultId);
    }

    // ------------------------------------------------------------------ QemuOpts syntax

    /**
     * Splits {@code name=value,...} into {@code opts} (later ones win, as in QEMU). A first element without '='
     * is the value of {@code firstName}; later ones are flags ({@code server} = on, {@code nowait} = wait off).
     * A doubled comma is a comma inside a value.
     */
    private static void parseParams(final String params, final String firstName, final Map<String, String> opts)
        throws ChardevException {
        int pos = 0;
        boolean first = true;
        final int length = params.length();
        while (pos < length) {
            int end = pos;
            while (end < length && params.charAt(end) != '=' && params.charAt(end) != ',') {
                end++;
            }
            final String name;
            final String value;
            if (end >= length || params.charAt(end) != '=') {
                if (first && firstName != null) {
                    name = firstName;
                    final StringBuilder v = new StringBuilder();
                    pos = readValue(params, pos, v);
                    value = v.toString();
                } else {
                    final Map.Entry<String, String> flag =
                        QemuOpts.flag(params.substring(pos, end), OPTIONS.keySet());
                    pos = end;
                    name = flag.getKey();
                    value = flag.getValue();
                }
            } else {
                name = params.substring(pos, end);
                final StringBuilder v = new StringBuilder();
                pos = readValue(params, end + 1, v);
                value = v.toString();
            }
            if (pos < length) {
                pos++; // the ',' that ended this element
            }
            first = false;
            if (name.isEmpty() && value.isEmpty()) {
                continue;
            }
            set(opts, name, value);
        }
    }

    /** Reads a value up to a single ',' (a doubled one is a literal comma); returns the index of that ','. */
    private static int readValue(final String s, final int from, final StringBuilder out) {
        int i = from;
        while (i < s.length()) {
            final char c = s.charAt(i);
            if (c == ',') {
                if (i + 1 < s.length() && s.charAt(i + 1) == ',') {
                    out.append(',');
                    i += 2;
                    continue;
                }
                break;
            }
            out.append(c);
            i++;
        }
        return i;
    }

    private static void set(final Map<String, String> opts, final String name, final String value)
        throws ChardevException {
        if (!name.equals("id")) {
            final Type type = OPTIONS.get(name);
            if (type == null) {
                if (!HUB_MEMBER.matcher(name).matches()) {
                    throw new ChardevException("Invalid parameter '" + name + "'");
                }
            } else {
                switch (type) {
                    case BOOL -> parseBool(name, value);
                    case NUMBER -> parseNumber(name, value);
                    case SIZE -> parseSize(name, value);
                    case STRING -> {
                    }
                }
            }
        }
        opts.remove(name); // keep the order of the last occurrence, which is the one that counts
        opts.put(name, value);
    }

    static boolean parseBool(final String name, final String value) throws ChardevException {
        return QemuOpts.parseBool(name, value);
    }

    private static long parseNumber(final String name, final String value) throws ChardevException {
        try {
            final BigInteger n;
            if (value.startsWith("0x") || value.startsWith("0X")) {
                n = new BigInteger(value.substring(2), 16);
            } else if (value.length() > 1 && value.startsWith("0")) {
                n = new BigInteger(value.substring(1), 8);
            } else {
                n = new BigInteger(value);
            }
            if (n.signum() < 0 || n.bitLength() > 63) {
                throw new NumberFormatException(value);
            }
            return n.longValueExact();
        } catch (final NumberFormatException | ArithmeticException e) {
            throw new ChardevException("Parameter '" + name + "' expects a number");
        }
    }

    /** QEMU's {@code qemu_strtosz}: a number with an optional binary suffix (B, K, M, G, T, P, E). */
    private static long parseSize(final String name, final String value) throws ChardevException {
        final var m = SIZE.matcher(value);
        if (!m.matches()) {
            throw sizeError(name);
        }
        final int shift = switch (Character.toUpperCase(m.group(2).isEmpty() ? 'B' : m.group(2).charAt(0))) {
            case 'K' -> 10;
            case 'M' -> 20;
            case 'G' -> 30;
            case 'T' -> 40;
            case 'P' -> 50;
            case 'E' -> 60;
            default -> 0;
        };
        final BigDecimal number = new BigDecimal(m.group(1));
        if (shift == 0 && number.stripTrailingZeros().scale() > 0) {
            throw sizeError(name); // fractions need a unit
        }
        final BigInteger bytes = number.multiply(new BigDecimal(BigInteger.ONE.shiftLeft(shift))).toBigInteger();
        if (bytes.compareTo(SIZE_LIMIT) >= 0 || bytes.bitLength() > 63) {
            throw sizeError(name);
        }
        return bytes.longValue();
    }

    private static ChardevException sizeError(final String name) {
        return new ChardevException("Parameter '" + name + "' expects a non-negative number below 2^64");
    }

    // ------------------------------------------------------------------ qemu_chr_parse_compat

    /** The options for a legacy short form, or null when {@code spec} is not one. */
    private static Map<String, String> parseCompat(final String spec) throws ChardevException {
        final Map<String, String> opts = new LinkedHashMap<>();
        String filename = spec;
        if (filename.startsWith("mon:")) {
            throw new ChardevException("the bridge does not support 'mon:' (a monitor multiplexed onto a chardev)");
        }
        switch (filename) {
            case "null", "pty", "msmouse", "wctablet", "braille", "testdev", "stdio" -> {
                opts.put("backend", filename);
                return opts;
            }
            case "con:" -> {
                opts.put("backend", "console");
                return opts;
            }
            default -> {
            }
        }
        if (filename.equals("vc") || filename.startsWith("vc:")) {
            opts.put("backend", "vc");
            if (filename.length() > 3) {
                final var pixels = Pattern.compile("(\\d{1,7})x(\\d{1,7})").matcher(filename.substring(3));
                final var chars = Pattern.compile("(\\d{1,7})Cx(\\d{1,7})C").matcher(filename.substring(3));
                if (pixels.matches()) {
                    opts.put("width", pixels.group(1));
                    opts.put("height", pixels.group(2));
                } else if (chars.matches()) {
                    opts.put("cols", chars.group(1));
                    opts.put("rows", chars.group(2));
                } else {
                    throw notACompatDriver(spec);
                }
            }
            return opts;
        }
        if (filename.startsWith("COM")) {
            opts.put("backend", "serial");
            opts.put("path", filename);
            return opts;
        }
        for (final String kind : new String[] {"file", "pipe", "pty"}) {
            if (filename.startsWith(kind + ":")) {
                opts.put("backend", kind);
                opts.put("path", filename.substring(kind.length() + 1));
                return opts;
            }
        }
        for (final String proto : new String[] {"tcp", "telnet", "tn3270", "websocket"}) {
            if (filename.startsWith(proto + ":")) {
                final String rest = filename.substring(proto.length() + 1);
                final int comma = rest.indexOf(',');
                final String hostPort = comma < 0 ? rest : rest.substring(0, comma);
                final int colon = hostPort.indexOf(':');
                if (colon < 0 || colon == hostPort.length() - 1) {
                    throw notACompatDriver(spec);
                }
                opts.put("backend", "socket");
                opts.put("host", hostPort.substring(0, colon));
                opts.put("port", hostPort.substring(colon + 1));
                if (comma >= 0) {
                    parseParams(rest.substring(comma + 1), null, opts);
                }
                if (!proto.equals("tcp")) {
                    opts.put(proto, "on");
                }
                return opts;
            }
        }
        if (filename.startsWith("udp:")) {
            final String rest = filename.substring(4);
            final int at = rest.indexOf('@');
            final String[] remote = splitHostPort(at < 0 ? rest : rest.substring(0, at), spec);
            opts.put("backend", "udp");
            opts.put("host", remote[0]);
            opts.put("port", remote[1]);
            if (at >= 0) {
                final String[] local = splitHostPort(rest.substring(at + 1), spec);
                opts.put("localaddr", local[0]);
                opts.put("localport", local[1]);
            }
            return opts;
        }
        if (filename.startsWith("unix:")) {
            opts.put("backend", "socket");
            parseParams(filename.substring(5), "path", opts);
            return opts;
        }
        if (filename.startsWith("/dev/parport") || filename.startsWith("/dev/ppi")) {
            opts.put("backend", "parallel");
            opts.put("path", filename);
            return opts;
        }
        if (filename.startsWith("/dev/")) {
            opts.put("backend", "serial");
            opts.put("path", filename);
            return opts;
        }
        return null;
    }

    private static String[] splitHostPort(final String hostPort, final String spec) throws ChardevException {
        final int comma = hostPort.indexOf(',');
        final String hp = comma < 0 ? hostPort : hostPort.substring(0, comma);
        final int colon = hp.indexOf(':');
        if (colon < 0 || colon == hp.length() - 1) {
            throw notACompatDriver(spec);
        }
        return new String[] {hp.substring(0, colon), hp.substring(colon + 1)};
    }

    private static ChardevException notACompatDriver(final String spec) {
        return new ChardevException("'" + spec + "' is not a valid char driver");
    }

    // ------------------------------------------------------------------ per driver (qemu_chr_parse_*)

    private static ChardevOptions build(final Map<String, String> opts, final String defaultId)
        throws ChardevException {
        String id = opts.get("id");
        if (id == null) {
            id = defaultId;
        }
        if (id == null) {
            throw new ChardevException("Parameter 'id' is missing");
        }
        if (!ID.matcher(id).matches()) {
            throw new ChardevException("Parameter 'id' expects an identifier");
        }
        final String driver = opts.get("backend");
        if (driver == null) {
            throw new ChardevException("chardev: \"" + id + "\" missing backend");
        }
        final ChardevKind kind = ChardevKind.fromDriverName(driver);
        if (kind == null) {
            throw ChardevKind.unknown(driver);
        }
        if (bool(opts, "mux", false)) {
            throw new ChardevException("'mux=on' makes two chardevs ('" + id + "-base' and the mux '" + id
                + "'): parse it with ChardevOptions.parseAll");
        }
        final ChardevBackend backend = switch (kind) {
            case FILE -> new ChardevBackend.File(
                required(opts, "path", "chardev: file: no filename given"), opts.get("input-path"),
                bool(opts, "append", false));
            case SERIAL -> new ChardevBackend.Serial(
                required(opts, "path", "chardev: serial/tty: no device path given"));
            case PARALLEL -> new ChardevBackend.Parallel(
                required(opts, "path", "chardev: parallel: no device path given"));
            case PIPE -> new ChardevBackend.Pipe(required(opts, "path", "chardev: pipe: no device path given"));
            case SOCKET -> socket(opts);
            case UDP -> udp(opts);
            case PTY -> new ChardevBackend.Pty(opts.get("path"));
            case NULL -> new ChardevBackend.Null();
            case MUX -> new ChardevBackend.Mux(required(opts, "chardev", "chardev: mux: no chardev given"));
            case HUB -> hub(opts);
            case MSMOUSE -> new ChardevBackend.Msmouse();
            case WCTABLET -> new ChardevBackend.Wctablet();
            case BRAILLE -> new ChardevBackend.Braille();
            case TESTDEV -> new ChardevBackend.Testdev();
            case STDIO -> new ChardevBackend.Stdio(bool(opts, "signal", true));
            case CONSOLE -> new ChardevBackend.Console();
            case SPICEVMC -> new ChardevBackend.Spicevmc(
                required(opts, "name", "chardev: spice channel: no name given"));
            case SPICEPORT -> new ChardevBackend.Spiceport(
                required(opts, "name", "chardev: spice port: no name given"));
            case QEMU_VDAGENT -> new ChardevBackend.QemuVdagent(
                opts.containsKey("mouse") ? bool(opts, "mouse", true) : null,
                opts.containsKey("clipboard") ? bool(opts, "clipboard", false) : null);
            case DBUS -> new ChardevBackend.Dbus(required(opts, "name", "chardev: dbus: no name given"));
            case VC -> new ChardevBackend.Vc(number(opts, "width"), number(opts, "height"), number(opts, "cols"),
                number(opts, "rows"));
            case RINGBUF -> new ChardevBackend.Ringbuf(ringSize(opts));
            case MEMORY -> new ChardevBackend.Memory(ringSize(opts));
        };
        return new ChardevOptions(id, backend, opts.get("logfile"), bool(opts, "logappend", false));
    }

    private static ChardevBackend.Socket socket(final Map<String, String> opts) throws ChardevException {
        final String path = opts.get("path");
        final String host = opts.get("host");
        final String port = opts.get("port");
        final String fd = opts.get("fd");
        final int given = (path != null ? 1 : 0) + (fd != null ? 1 : 0) + (host != null ? 1 : 0);
        if (given > 1) {
            throw new ChardevException("None or one of 'path', 'fd' or 'host' option required.");
        }
        if (given == 0) {
            throw new ChardevException("chardev: socket: one of 'path', 'fd' or 'host' is required");
        }
        if (host != null && port == null) {
            throw new ChardevException("chardev: socket: no port given");
        }
        if (opts.containsKey("delay") && opts.containsKey("nodelay")) {
            throw new ChardevException("'delay' and 'nodelay' are mutually exclusive");
        }
        final boolean nodelay = !bool(opts, "delay", true) || bool(opts, "nodelay", false);
        // The CLI defaults differ from QMP: server defaults off, and a server waits unless told not to.
        final boolean server = bool(opts, "server", false);
        final boolean hasWait = opts.containsKey("wait") || server;
        final boolean wait = bool(opts, "wait", true);
        final Long reconnect = number(opts, "reconnect");
        final Long reconnectMs = number(opts, "reconnect-ms");

        final SocketAddressLegacy addr;
        if (path != null) {
            addr = new SocketAddressLegacy.Unix(path, bool(opts, "abstract", false), bool(opts, "tight", true));
        } else if (host != null) {
            addr = new SocketAddressLegacy.Inet(host, port, null, uint16(opts, "to"),
                opts.containsKey("ipv4") ? bool(opts, "ipv4", false) : null,
                opts.containsKey("ipv6") ? bool(opts, "ipv6", false) : null, null, null);
        } else {
            addr = new SocketAddressLegacy.Fd(fd);
        }
        return SocketRules.validate(addr, opts.get("tls-creds"), opts.get("tls-authz"), server, hasWait, wait,
            nodelay, opts.containsKey("telnet") && bool(opts, "telnet", false),
            opts.containsKey("tn3270") && bool(opts, "tn3270", false),
            opts.containsKey("websocket") ? bool(opts, "websocket", false) : null, reconnect, reconnectMs);
    }

    private static ChardevBackend.Udp udp(final Map<String, String> opts) throws ChardevException {
        String host = opts.get("host");
        final String port = opts.get("port");
        final String localAddr = opts.get("localaddr");
        final String localPort = opts.get("localport");
        if (host == null || host.isEmpty()) {
            host = "localhost";
        }
        if (port == null || port.isEmpty()) {
            throw new ChardevException("chardev: udp: remote port not specified");
        }
        final boolean hasLocal = (localAddr != null && !localAddr.isEmpty())
            || (localPort != null && !localPort.isEmpty());
        final SocketAddressLegacy local = hasLocal ? new SocketAddressLegacy.Inet(
            localAddr == null ? "" : localAddr, localPort == null || localPort.isEmpty() ? "0" : localPort) : null;
        return new ChardevBackend.Udp(new SocketAddressLegacy.Inet(host, port), local);
    }

    private static ChardevBackend.Hub hub(final Map<String, String> opts) throws ChardevException {
        final TreeMap<Integer, String> members = new TreeMap<>();
        for (final Map.Entry<String, String> e : opts.entrySet()) {
            final var m = HUB_MEMBER.matcher(e.getKey());
            if (m.matches()) {
                members.put(Integer.parseInt(m.group(1)), e.getValue());
            }
        }
        if (members.isEmpty()) {
            throw new ChardevException("chardev: hub: no chardevs given");
        }
        return new ChardevBackend.Hub(new ArrayList<>(members.values()));
    }

    private static long ringSize(final Map<String, String> opts) throws ChardevException {
        final String value = opts.get("size");
        // As in QEMU, size=0 means "not given".
        final long size = value == null ? 0 : parseSize("size", value);
        final long effective = size == 0 ? ChardevBackend.Ringbuf.DEFAULT_SIZE : size;
        ChardevBackend.checkRingSize(effective);
        return effective;
    }

    private static String required(final Map<String, String> opts, final String name, final String error)
        throws ChardevException {
        final String value = opts.get(name);
        if (value == null) {
            throw new ChardevException(error);
        }
        return value;
    }

    private static boolean bool(final Map<String, String> opts, final String name, final boolean def)
        throws ChardevException {
        final String value = opts.get(name);
        return value == null ? def : parseBool(name, value);
    }

    private static Long number(final Map<String, String> opts, final String name) throws ChardevException {
        final String value = opts.get(name);
        return value == null ? null : parseNumber(name, value);
    }

    /** A number that must fit QEMU's uint16_t ({@code to}, the last port a server tries). */
    private static Integer uint16(final Map<String, String> opts, final String name) throws ChardevException {
        final Long n = number(opts, name);
        if (n == null) {
            return null;
        }
        if (n > 0xFFFF) {
            throw new ChardevException("Parameter '" + name + "' expects uint16_t");
        }
        return n.intValue();
    }
}
