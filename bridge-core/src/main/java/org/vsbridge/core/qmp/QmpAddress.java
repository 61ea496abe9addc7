package org.vsbridge.core.qmp;

import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.QemuOpts;

/**
 * Where the QMP monitor listens, from QEMU's {@code -qmp} spelling: {@code unix:PATH[,server=on][,wait=off]}
 * or {@code tcp:HOST:PORT[,server=on][,wait=off]}, with QEMU's boolean spellings as {@code -chardev} takes them
 * ({@code server}, {@code nowait}, {@code wait=no}, ...). The monitor is always a server that does not wait.
 *
 * <p>Two extensions for unix sockets (not QEMU's): {@code mode=0600} sets the socket file's permissions
 * (octal; applied before the socket is reachable under its name), and {@code uid=0:1000} admits only clients
 * whose peer uid ({@code SO_PEERCRED}) is in the list; others are closed before the greeting, with a log line.
 *
 * @param mode socket file permission bits, or -1 to leave them to the umask
 * @param uids peer uids admitted; empty admits every client
 */
public record QmpAddress(String path, String host, int port, int mode, java.util.Set<Integer> uids) {

    public QmpAddress {
        uids = java.util.Set.copyOf(uids);
    }

    public QmpAddress(final String path, final String host, final int port) {
        this(path, host, port, -1, java.util.Set.of());
    }

    public boolean isUnix() {
        return path != null;
    }

    /** Whether a client with peer uid {@code uid} may use this monitor. */
    public boolean admits(final int uid) {
        return uids.isEmpty() || uids.contains(uid);
    }

    /** The options of {@code --qmp}: a bare {@code noNAME} of these is {@code NAME=off}. */
    private static final java.util.Set<String> OPTIONS = java.util.Set.of("server", "wait", "mode", "uid");

    private static boolean bool(final String spec, final String name, final String value) {
        try {
            return QemuOpts.parseBool(name, value);
        } catch (final ChardevException e) {
            throw new IllegalArgumentException("--qmp " + spec + ": " + e.getMessage());
        }
    }

    public static QmpAddress parse(final String spec) {
        final String[] parts = spec.split(",", -1); // -1: a spec of commas only still has an address part
        int mode = -1;
        final java.util.Set<Integer> uids = new java.util.TreeSet<>();
        for (int i = 1; i < parts.length; i++) {
            final String option = parts[i];
            if (option.isEmpty()) {
                continue; // a trailing or doubled comma, as before
            }
            // QemuOpts spellings, as --chardev takes them: server, nowait, wait=no, server=yes, ...
            final int eq = option.indexOf('=');
            final java.util.Map.Entry<String, String> opt = eq < 0 ? QemuOpts.flag(option, OPTIONS)
                : java.util.Map.entry(option.substring(0, eq), option.substring(eq + 1));
            final String value = opt.getValue();
            switch (opt.getKey()) {
                case "mode" -> {
                    if (!value.matches("0?[0-7]{3}")) {
                        throw new IllegalArgumentException("--qmp " + spec
                            + ": mode must be octal permissions such as 0600");
                    }
                    mode = Integer.parseInt(value, 8);
                }
                case "uid" -> {
                    for (final String uid : value.split(":", -1)) {
                        if (!uid.matches("[0-9]{1,10}") || Long.parseLong(uid) > 0xfffffffeL) {
                            throw new IllegalArgumentException("--qmp " + spec
                                + ": uid= takes numeric uids separated by ':' (got '" + uid + "')");
                        }
                        uids.add((int) Long.parseLong(uid));
                    }
                }
                case "server" -> {
                    if (!bool(spec, "server", value)) {
                        throw new IllegalArgumentException("--qmp " + spec + ": the monitor can only be a server");
                    }
                }
                case "wait" -> {
                    if (bool(spec, "wait", value)) {
                        throw new IllegalArgumentException("--qmp " + spec
                            + ": wait=on is not supported, use wait=off");
                    }
                }
                default -> throw new IllegalArgumentException("--qmp " + spec + ": unsupported option '" + option
                    + "'");
            }
        }
        final String address = parts[0];
        if (address.startsWith("unix:")) {
            final String path = address.substring(5);
            if (path.isEmpty()) {
                throw new IllegalArgumentException("--qmp " + spec + ": empty unix socket path");
            }
            return new QmpAddress(path, null, 0, mode, uids);
        }
        if (address.startsWith("tcp:")) {
            final String hostPort = address.substring(4);
            final int colon = hostPort.lastIndexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("--qmp " + spec + ": expected tcp:HOST:PORT");
            }
            String host = hostPort.substring(0, colon);
            if (host.startsWith("[") && host.endsWith("]")) {
                host = host.substring(1, host.length() - 1);
            }
            final int port;
            try {
                port = Integer.parseInt(hostPort.substring(colon + 1));
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException("--qmp " + spec + ": bad port '" + hostPort.substring(colon + 1) + "'");
            }
            if (mode >= 0 || !uids.isEmpty()) {
                throw new IllegalArgumentException("--qmp " + spec + ": mode= and uid= need a unix socket");
            }
            if (port < 0 || port > 65535) {
                throw new IllegalArgumentException("--qmp " + spec + ": port out of range");
            }
            return new QmpAddress(null, host.isEmpty() ? "0.0.0.0" : host, port);
        }
        throw new IllegalArgumentException("--qmp " + spec + ": expected unix:PATH or tcp:HOST:PORT");
    }

    @Override
    public String toString() {
        return isUnix() ? "unix:" + path : "tcp:" + host + ":" + port;
    }
}
