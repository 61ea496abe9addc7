package org.vsbridge.core.qmp;

/**
 * Where the QMP monitor listens, from QEMU's {@code -qmp} spelling: {@code unix:PATH[,server=on][,wait=off]}
 * or {@code tcp:HOST:PORT[,server=on][,wait=off]}. The monitor is always a server that does not wait.
 */
public record QmpAddress(String path, String host, int port) {

    public boolean isUnix() {
        return path != null;
    }

    public static QmpAddress parse(final String spec) {
        final String[] parts = spec.split(",");
        for (int i = 1; i < parts.length; i++) {
            final String option = parts[i];
            if (!option.matches("(server|wait)(=(on|off|yes|no|true|false))?")) {
                throw new IllegalArgumentException("--qmp " + spec + ": unsupported option '" + option + "'");
            }
            if (option.equals("server=off") || option.equals("server=no") || option.equals("server=false")) {
                throw new IllegalArgumentException("--qmp " + spec + ": the monitor can only be a server");
            }
            if (option.equals("wait") || option.equals("wait=on") || option.equals("wait=yes") || option.equals("wait=true")) {
                throw new IllegalArgumentException("--qmp " + spec + ": wait=on is not supported, use wait=off");
            }
        }
        final String address = parts[0];
        if (address.startsWith("unix:")) {
            final String path = address.substring(5);
            if (path.isEmpty()) {
                throw new IllegalArgumentException("--qmp " + spec + ": empty unix socket path");
            }
            return new QmpAddress(path, null, 0);
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
