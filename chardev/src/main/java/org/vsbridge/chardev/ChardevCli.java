package org.vsbridge.chardev;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * QEMU's {@code -chardev} option syntax ({@code QemuOpts} with the {@code chardev} option list of QEMU 10.2) into
 * {@link ChardevOptions}. Like QEMU, every option of the chardev list is accepted (and type-checked) with every
 * driver; a driver ignores the options it has no use for. QEMU's {@code -chardev} takes no legacy short forms
 * ({@code tcp:...}, {@code file:...} belong to {@code -serial} and {@code -monitor}), and neither does this.
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
        // QEMU 10.2 has no 'reconnect' (seconds) any more: only reconnect-ms.
        for (final String s : new String[] {"to", "reconnect-ms", "width", "height", "cols", "rows", "debug"}) {
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
     * QEMU 10's hub lists its chardevs as {@code chardevs.0=a,chardevs.1=b}: its option list names exactly
     * {@code chardevs.0} to {@code chardevs.3} (any other index is an unknown parameter).
     */
    private static final Pattern HUB_MEMBER = Pattern.compile("chardevs\\.([0-3])");

    /** How many chardevs a hub takes ({@code chardevs.0} .. {@code chardevs.3}). */
    private static final int HUB_MAX = 4;

    /** QEMU's {@code id_wellformed}: a letter, then letters, digits, '-', '.', '_'. */
    private static final Pattern ID = Pattern.compile("[A-Za-z][A-Za-z0-9._-]*");

    /** {@code qemu_strtosz}: decimal with an optional fraction and unit, or hex without either. */
    private static final Pattern SIZE = Pattern.compile("(\\d+(?:\\.\\d*)?|\\.\\d+)([bBkKmMgGtTpPeE]?)");
    private static final Pattern HEX_SIZE = Pattern.compile("0[xX]([0-9a-fA-F]+)");

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
        final Map<String, String> opts = new LinkedHashMap<>();
        parseParams(spec, "backend", opts);
        final String mux = opts.get("mux");
        if (mux == null || !parseBool("mux", mux)) {
            return java.util.List.of(build(opts, defaultId));
        }
        opts.remove("mux");
        final String id = opts.getOrDefault("id", defaultId);
        if (id == null) {
            throw noId();
        }
        opts.put("id", id + "-base");
        final ChardevOptions base = build(opts, null);
        return java.util.List.of(base, new ChardevOptions(id, new ChardevBackend.Mux(id + "-base")));
    }

    static ChardevOptions parse(final String spec, final String defaultId) throws ChardevException {
        if (spec == null) {
            throw new ChardevException("Parameter 'backend' is missing");
        }
        final Map<String, String> opts = new LinkedHashMap<>();
        parseParams(spec, "backend", opts);
        return build(opts, defaultId);
    }

    // ------------------------------------------------------------------ QemuOpts syntax

    /**
     * Splits {@code name=value,...} into {@code opts} (later ones win, as in QEMU, except {@code id}: the first). A first element without '='
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
            if (name.equals("id") && opts.containsKey("id")) {
                continue; // QemuOpts takes the first id= as the id; a later one is ignored
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

    /**
     * QEMU's number options ({@code parse_option_number}: {@code qemu_strtou64} in base 0): decimal, {@code 0x}
     * hex or {@code 0} octal, a leading minus wrapping around as C's {@code strtoull} does; the 64 bits are
     * returned as a long (values from 2^63 up come back negative).
     */
    private static long parseNumber(final String name, final String value) throws ChardevException {
        String digits = value;
        boolean negative = false;
        if (digits.startsWith("-") || digits.startsWith("+")) {
            negative = digits.charAt(0) == '-';
            digits = digits.substring(1);
        }
        final BigInteger n;
        try {
            if (digits.startsWith("0x") || digits.startsWith("0X")) {
                n = unsignedDigits(digits.substring(2), 16);
            } else if (digits.length() > 1 && digits.startsWith("0")) {
                n = unsignedDigits(digits.substring(1), 8);
            } else {
                n = unsignedDigits(digits, 10);
            }
        } catch (final NumberFormatException e) {
            throw new ChardevException("Parameter '" + name + "' expects a number");
        }
        if (n.bitLength() > 64) {
            throw new ChardevException("Value '" + value + "' is too large for parameter '" + name + "'");
        }
        return (negative ? n.negate() : n).longValue();
    }

    private static BigInteger unsignedDigits(final String digits, final int radix) {
        if (digits.isEmpty() || !Character.isLetterOrDigit(digits.charAt(0))) {
            throw new NumberFormatException(digits);
        }
        return new BigInteger(digits, radix);
    }

    /**
     * QEMU's {@code qemu_strtosz}: a decimal number (a fraction only with a unit) and an optional binary unit
     * (B, K, M, G, T, P, E), or a hex number without fraction or unit; a value of 2^64 or more, or a negative one,
     * is out of range. The 64 bits are returned as a long (values from 2^63 up come back negative).
     */
    private static long parseSize(final String name, final String value) throws ChardevException {
        final String unsigned = value.startsWith("-") ? value.substring(1) : value;
        final var hex = HEX_SIZE.matcher(unsigned);
        final var m = SIZE.matcher(unsigned);
        final BigInteger bytes;
        if (hex.matches()) {
            bytes = new BigInteger(hex.group(1), 16);
        } else if (m.matches()) {
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
            bytes = number.multiply(new BigDecimal(BigInteger.ONE.shiftLeft(shift))).toBigInteger();
        } else {
            throw sizeError(name);
        }
        if (value.startsWith("-") || bytes.compareTo(SIZE_LIMIT) >= 0) {
            throw new ChardevException("Value '" + value + "' is out of range for parameter '" + name + "'");
        }
        return bytes.longValue();
    }

    private static ChardevException noId() {
        return new ChardevException("chardev: no id specified");
    }

    private static ChardevException sizeError(final String name) {
        return new ChardevException("Parameter '" + name + "' expects a non-negative number below 2^64");
    }

    // ------------------------------------------------------------------ per driver (qemu_chr_parse_*)

    private static ChardevOptions build(final Map<String, String> opts, final String defaultId)
        throws ChardevException {
        String id = opts.get("id");
        if (id == null) {
            id = defaultId;
        }
        if (id == null) {
            throw noId();
        }
        if (!ID.matcher(id).matches()) {
            throw new ChardevException("Parameter 'id' expects an identifier");
        }
        final String driver = opts.get("backend");
        if (driver == null) {
            throw new ChardevException("chardev: \"" + id + "\" missing backend");
        }
        // QEMU 10.2 knows the QAPI names only (its old aliases 'tty' and 'parport' are gone).
        final ChardevKind kind = ChardevKind.fromQapiName(driver);
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
            // QEMU takes a socket without an address for one passed by the monitor under the empty name, which
            // the bridge, without getfd, never has.
            throw new ChardevException("File descriptor named '' has not been found");
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
        final Long reconnectMs = number(opts, "reconnect-ms");

        final SocketAddressLegacy addr;
        if (path != null) {
            addr = new SocketAddressLegacy.Unix(path, bool(opts, "abstract", false), bool(opts, "tight", true));
        } else if (host != null) {
            addr = InetPorts.resolve(new SocketAddressLegacy.Inet(host, port, null, uint16(opts, "to"),
                opts.containsKey("ipv4") ? bool(opts, "ipv4", false) : null,
                opts.containsKey("ipv6") ? bool(opts, "ipv6", false) : null, null, null), server);
        } else {
            addr = new SocketAddressLegacy.Fd(fd);
        }
        return SocketRules.validate(addr, opts.get("tls-creds"), opts.get("tls-authz"), server, hasWait, wait,
            nodelay, opts.containsKey("telnet") && bool(opts, "telnet", false),
            opts.containsKey("tn3270") && bool(opts, "tn3270", false),
            opts.containsKey("websocket") ? bool(opts, "websocket", false) : null, null,
            reconnectMs == null || reconnectMs >= 0 ? reconnectMs : Long.valueOf(0));
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
        return new ChardevBackend.Udp(InetPorts.resolveUdp(new SocketAddressLegacy.Inet(host, port)),
            local instanceof SocketAddressLegacy.Inet l ? InetPorts.resolveUdp(l) : local);
    }

    /** {@code chardevs.0}, {@code chardevs.1} ... up to the first index not given, as QEMU reads them. */
    private static ChardevBackend.Hub hub(final Map<String, String> opts) throws ChardevException {
        final java.util.List<String> members = new ArrayList<>();
        for (int i = 0; i < HUB_MAX && opts.containsKey("chardevs." + i); i++) {
            members.add(opts.get("chardevs." + i));
        }
        if (members.isEmpty()) {
            throw new ChardevException("hub: 'chardevs' list is not defined");
        }
        return new ChardevBackend.Hub(members);
    }

    private static long ringSize(final Map<String, String> opts) throws ChardevException {
        final String value = opts.get("size");
        // As in QEMU, size=0 means "not given".
        final long size = value == null ? 0 : parseSize("size", value);
        if (size < 0) {
            // 2^63 and up: no power of two but 2^63, and that is far above what this bridge allocates.
            ChardevBackend.checkRingSize(size == Long.MIN_VALUE ? 1L << 62 : size);
        }
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

    /** A number option stored in a uint16_t field ({@code to}): its low 16 bits, as QEMU's assignment keeps. */
    private static Integer uint16(final Map<String, String> opts, final String name) throws ChardevException {
        final Long n = number(opts, name);
        return n == null ? null : (int) (n & 0xFFFF);
    }
}
