package org.vsbridge.chardev;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;

/**
 * Addresses written the way QEMU's {@code filename} of a socket chardev writes them: numeric hosts as
 * {@code getnameinfo(NI_NUMERICHOST)} prints them (IPv6 compressed per RFC 5952, with its scope), and
 * {@code [v6]:port} in the connected form.
 */
final class SocketNames {

    private SocketNames() {
    }

    /** A numeric host: dotted IPv4, compressed IPv6 (plus {@code %scope} for scoped addresses). */
    static String numericHost(final InetAddress address) {
        if (!(address instanceof Inet6Address v6)) {
            return address.getHostAddress();
        }
        final byte[] b = v6.getAddress();
        final int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((b[2 * i] & 0xFF) << 8) | (b[2 * i + 1] & 0xFF);
        }
        // The longest run of two or more zero groups becomes "::" (the first one on a tie).
        int bestStart = -1;
        int bestLength = 1;
        for (int i = 0; i < 8; ) {
            if (groups[i] != 0) {
                i++;
                continue;
            }
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j;
        }
        final StringBuilder s = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                s.append("::");
                i += bestLength - 1;
                continue;
            }
            if (s.length() > 0 && s.charAt(s.length() - 1) != ':') {
                s.append(':');
            }
            s.append(Integer.toHexString(groups[i]));
        }
        if (v6.getScopedInterface() != null) {
            s.append('%').append(v6.getScopedInterface().getName());
        } else if (v6.getScopeId() != 0) {
            s.append('%').append(v6.getScopeId());
        }
        return s.toString();
    }

    /** {@code host:port}, with the host in brackets when it is IPv6 (the connected form). */
    static String hostPort(final InetSocketAddress address) {
        final InetAddress a = address.getAddress();
        final String host = a == null ? address.getHostString() : numericHost(a);
        return (a instanceof Inet6Address ? "[" + host + "]" : host) + ":" + address.getPort();
    }
}
