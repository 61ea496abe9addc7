package org.vsbridge.core.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.logging.Level;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.core.qmp.QmpAddress;

/**
 * The command line, in QEMU's spellings: options take one or two dashes and their value either as the next
 * argument or after '='.
 */
public final class CommandLine {

    public static final String USAGE = """
        Usage: vhost-serial-bridge [options]

        A vhost-user virtio-console (multiport virtio-serial) device whose ports are wired to
        QEMU-style chardevs. With no options it runs the embedded default: a console port on
        stdio, the vhost-user socket ./vhost-serial-bridge.sock, QMP on ./vhost-serial-bridge.qmp.
        The terminal is the guest's console as QEMU's -nographic: Ctrl-C goes to the guest, Ctrl-A x
        stops the bridge, Ctrl-A h lists the escapes; logs go to ./vhost-serial-bridge.log.

        Options (one or two dashes; value as the next argument or after '='):
          --socket-path PATH      vhost-user socket to listen on (the frontend connects); repeat it to
                                  serve several devices: each --socket-path starts a device group,
                                  and the --device and --max-ports after it belong to that group
          --socket-mode MODE      server (default: listen) or client (connect to a frontend that listens)
          --reconnect-ms N        client mode: retry interval after a failed connect or a disconnect
                                  (default 1000; 0 = connect once)
          --resize-order ORDER    RESIZE payload field order: rows-cols (default, what Linux reads)
                                  or cols-rows (the virtio spec's text)
          --packed-ring           offer VIRTIO_F_RING_PACKED: a frontend that acks it gets packed
                                  virtqueues (default: split virtqueues only)
          --emergency-chardev ID  chardev that receives emerg_wr bytes (default: the console port's)
          --chardev SPEC          a chardev in QEMU's -chardev syntax, repeatable:
                                    socket,id=ID,path=PATH[,server=on][,wait=off]
                                    socket,id=ID,host=HOST,port=PORT[,server=on][,wait=off][,nodelay=on]
                                    file,id=ID,path=PATH[,input-path=PATH][,append=on]
                                    ringbuf,id=ID[,size=65536]   (alias: memory)
                                    null,id=ID    stdio,id=ID[,signal=on|off]
                                    pty, pipe, udp, serial (tty), mux (or mux=on), hub; socket with
                                    telnet, tn3270, websocket, reconnect-ms, tls-creds, abstract, fd
                                    (docs/chardevs.md has every option)
                                  every kind also takes logfile=PATH[,logappend=on]
          --object SPEC           tls-creds-x509,id=ID,dir=DIR[,endpoint=server|client][,verify-peer=on|off]
                                  authz-simple,id=ID,identity=DN
                                  {"qom-type":"authz-list","id":ID,"policy":"deny","rules":[...]}
          --device SPEC           a port, repeatable:
                                    virtconsole,chardev=ID[,name=NAME][,id=ID][,nr=N][,cols=C,rows=R]
                                    virtserialport,chardev=ID[,name=NAME][,id=ID][,nr=N][,policy=hold]
                                  (cols/rows and policy=drop|hold are bridge extensions)
          --max-ports N           max_nr_ports of the device (default: highest port number + 1);
                                  the frontend needs num_vqs = 2 * (N + 1)
          --qmp unix:PATH,server=on,wait=off | tcp:HOST:PORT,server=on,wait=off
                                  a QMP monitor, repeatable
          --limits NAME=BYTES[,...]
                                  memory bounds: port-buffer-to-host (524288), console-buffer-to-host
                                  (1048576), port-buffer-from-host (262144) (powers of two), qmp-max-input
                                  (10485760), qmp-max-output (16777216)
          --log-level LEVEL       error, warning, info (default) or debug
          --help                  print this help and exit
          --version               print the version and exit
        """;

    private CommandLine() {
    }

    /** What the command line asks for. */
    public record Parsed(BridgeConfig config, boolean help, boolean version, Level logLevel) {
    }

    public static Parsed parse(final String[] args) throws UsageException {
        return parse(args, false);
    }

    /**
     * {@code partial}: the device options may be incomplete (a configuration file or an inherited socket fills
     * them in): no embedded default, no required --socket-path or --device; what is not given stays null, empty
     * or -1.
     */
    public static Parsed parse(final String[] args, final boolean partial) throws UsageException {
        if (args.length == 0 && !partial) {
            return new Parsed(BridgeConfig.embeddedDefault(), false, false, Level.INFO);
        }
        Path socketPath = null;
        final List<ChardevOptions> chardevs = new ArrayList<>();
        final List<DeviceSpec> devices = new ArrayList<>();
        final List<QmpAddress> qmp = new ArrayList<>();
        final List<org.vsbridge.core.objects.ObjectSpec> objects = new ArrayList<>();
        int maxPorts = -1;
        // Device groups finished by a later --socket-path; the current group is socketPath/devices/maxPorts.
        final List<DeviceGroup> groups = new ArrayList<>();
        List<DeviceSpec> groupDevices = devices;
        boolean client = false;
        long reconnectMs = VhostOptions.DEFAULT_RECONNECT_MS;
        org.vsbridge.console.ResizeOrder resizeOrder = org.vsbridge.console.ResizeOrder.ROWS_COLS;
        String emergencyChardev = null;
        boolean packedRing = false;
        Limits limits = Limits.DEFAULT;
        boolean help = false;
        boolean version = false;
        Level logLevel = Level.INFO;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("-")) {
                throw new UsageException("unexpected argument '" + arg + "' (try --help)");
            }
            arg = arg.startsWith("--") ? arg.substring(2) : arg.substring(1);
            String value = null;
            final int eq = arg.indexOf('=');
            if (eq > 0) {
                value = arg.substring(eq + 1);
                arg = arg.substring(0, eq);
            }
            switch (arg) {
                case "help", "h" -> help = true;
                case "version" -> version = true;
                case "packed-ring" -> {
                    if (value != null) {
                        throw new UsageException("option --packed-ring takes no value (got '" + value + "')");
                    }
                    packedRing = true;
                }
                case "socket-path", "chardev", "device", "qmp", "max-ports", "log-level", "object", "socket-mode",
                    "reconnect-ms", "resize-order", "emergency-chardev", "limits" -> {
                    if (value == null) {
                        if (i + 1 >= args.length) {
                            throw new UsageException("option --" + arg + " needs a value");
                        }
                        value = args[++i];
                    }
                    switch (arg) {
                        case "socket-path" -> {
                            if (socketPath != null) {
                                groups.add(new DeviceGroup(socketPath, groupDevices, maxPorts));
                                groupDevices = new ArrayList<>();
                                maxPorts = -1;
                            }
                            socketPath = Path.of(value);
                        }
                        case "socket-mode" -> client = switch (value) {
                            case "server" -> false;
                            case "client" -> true;
                            default -> throw new UsageException("--socket-mode " + value + ": expected server or client");
                        };
                        case "reconnect-ms" -> {
                            try {
                                reconnectMs = Long.parseLong(value);
                            } catch (final NumberFormatException e) {
                                reconnectMs = -1;
                            }
                            if (reconnectMs < 0) {
                                throw new UsageException("--reconnect-ms " + value + ": expected milliseconds >= 0");
                            }
                        }
                        case "resize-order" -> {
                            try {
                                resizeOrder = org.vsbridge.console.ResizeOrder.parse(value);
                            } catch (final IllegalArgumentException e) {
                                throw new UsageException("--resize-order: " + e.getMessage());
                            }
                        }
                        case "emergency-chardev" -> emergencyChardev = value;
                        case "limits" -> {
                            try {
                                limits = Limits.parse(value);
                            } catch (final IllegalArgumentException e) {
                                throw new UsageException("--limits " + value + ": " + e.getMessage());
                            }
                        }
                        case "chardev" -> chardevs.addAll(parseChardevs(value));
                        case "object" -> {
                            try {
                                objects.add(org.vsbridge.core.objects.ObjectSpec.parse(value));
                            } catch (final org.vsbridge.core.objects.ObjectException e) {
                                throw new UsageException("-object " + value + ": " + e.getMessage());
                            }
                        }
                        case "device" -> groupDevices.add(parseDevice(value));
                        case "qmp" -> {
                            try {
                                qmp.add(QmpAddress.parse(value));
                            } catch (final IllegalArgumentException e) {
                                throw new UsageException(e.getMessage());
                            }
                        }
                        case "max-ports" -> maxPorts = parseMaxPorts(value);
                        case "log-level" -> logLevel = parseLevel(value);
                        default -> throw new IllegalStateException(arg);
                    }
                }
                default -> throw new UsageException("unknown option '" + args[i] + "' (try --help)");
            }
        }
        if (help || version) {
            return new Parsed(null, help, version, logLevel);
        }
        if (socketPath == null && !partial) {
            throw new UsageException("--socket-path is required when options are given");
        }
        if (devices.isEmpty() && !partial) {
            throw new UsageException("at least one --device virtconsole|virtserialport,... is required");
        }
        // The first group keeps BridgeConfig's own fields; later groups go to moreDevices.
        groups.add(new DeviceGroup(socketPath, groupDevices, maxPorts));
        final DeviceGroup first = groups.get(0);
        for (final DeviceGroup g : groups.subList(1, groups.size())) {
            if (g.devices().isEmpty() && !partial) {
                throw new UsageException("--socket-path " + g.socketPath() + ": this device group has no --device");
            }
        }
        return new Parsed(new BridgeConfig(first.socketPath(), chardevs, first.devices(), qmp, first.maxPorts(),
            objects, new VhostOptions(client, reconnectMs, resizeOrder, emergencyChardev, packedRing),
            List.copyOf(groups.subList(1, groups.size())), limits), false, false, logLevel);
    }

    static ChardevOptions parseChardev(final String spec) throws UsageException {
        try {
            return ChardevOptions.parse(spec);
        } catch (final ChardevException e) {
            throw new UsageException("-chardev " + spec + ": " + e.getMessage());
        }
    }

    /** A {@code --chardev}; {@code mux=on} gives QEMU's two chardevs, {@code ID-base} and the mux {@code ID}. */
    static List<ChardevOptions> parseChardevs(final String spec) throws UsageException {
        try {
            return ChardevOptions.parseAll(spec, null);
        } catch (final ChardevException e) {
            throw new UsageException("-chardev " + spec + ": " + e.getMessage());
        }
    }

    static DeviceSpec parseDevice(final String spec) throws UsageException {
        final String[] parts = spec.split(",");
        final String driver = parts[0];
        final boolean console;
        switch (driver) {
            case "virtconsole" -> console = true;
            case "virtserialport" -> console = false;
            default -> throw new UsageException("'" + driver + "' is not a valid device model name");
        }
        String chardev = null;
        String name = null;
        String id = null;
        int nr = -1;
        int cols = 0;
        int rows = 0;
        org.vsbridge.console.OutputPolicy policy = org.vsbridge.console.OutputPolicy.DROP;
        for (int i = 1; i < parts.length; i++) {
            final int eq = parts[i].indexOf('=');
            if (eq <= 0) {
                throw new UsageException("--device " + spec + ": expected key=value, got '" + parts[i] + "'");
            }
            final String key = parts[i].substring(0, eq);
            final String value = parts[i].substring(eq + 1);
            switch (key) {
                case "chardev" -> chardev = value;
                case "name" -> name = value;
                case "id" -> id = value;
                case "nr" -> {
                    try {
                        nr = Integer.parseInt(value);
                    } catch (final NumberFormatException e) {
                        nr = -2;
                    }
                    if (nr < 0) {
                        throw new UsageException("Property '" + driver + ".nr' doesn't take value '" + value + "'");
                    }
                }
                case "cols", "rows" -> {
                    int n;
                    try {
                        n = Integer.parseInt(value);
                    } catch (final NumberFormatException e) {
                        n = -1;
                    }
                    if (n < 0 || n > 0xFFFF || !console) {
                        throw new UsageException("Property '" + driver + "." + key + "' doesn't take value '" + value
                            + "'" + (console ? "" : " (console size is for virtconsole only)"));
                    }
                    if (key.equals("cols")) {
                        cols = n;
                    } else {
                        rows = n;
                    }
                }
                case "policy" -> {
                    try {
                        policy = org.vsbridge.console.OutputPolicy.parse(value);
                    } catch (final IllegalArgumentException e) {
                        throw new UsageException("Property '" + driver + ".policy' doesn't take value '" + value + "'");
                    }
                }
                case "bus" -> {
                    // QEMU users write bus=vser0.0; there is one bus per device here, so any value means it.
                }
                default -> throw new UsageException("Property '" + driver + "." + key + "' not found");
            }
        }
        if (chardev == null) {
            throw new UsageException("--device " + spec + ": chardev=ID is required");
        }
        return new DeviceSpec(console, chardev, name, id, nr, cols, rows, policy);
    }

    private static int parseMaxPorts(final String value) throws UsageException {
        try {
            final int n = Integer.parseInt(value);
            if (n >= 1 && n <= 511) {
                return n;
            }
        } catch (final NumberFormatException e) {
            // fall through to the error
        }
        throw new UsageException("--max-ports " + value + ": expected a number from 1 to 511");
    }

    private static Level parseLevel(final String value) throws UsageException {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "error" -> Level.SEVERE;
            case "warning", "warn" -> Level.WARNING;
            case "info" -> Level.INFO;
            case "debug" -> Level.FINE;
            default -> throw new UsageException("--log-level " + value + ": expected error, warning, info or debug");
        };
    }
}
