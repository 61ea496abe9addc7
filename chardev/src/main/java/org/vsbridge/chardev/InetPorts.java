package org.vsbridge.chardev;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * What QEMU's {@code getaddrinfo} call makes of an inet socket chardev's host and port before it binds or
 * connects, done where the options are read: a port given as a service name ({@code http}) becomes its number
 * from {@code /etc/services} (TCP; UDP for udp chardevs). A server's {@code to} below its {@code port} leaves QEMU no port to try:
 * refused here with QEMU's words.
 */
final class InetPorts {

    private static final Path SERVICES = Path.of("/etc/services");

    private InetPorts() {
    }

    /** {@code addr} with its port as a number (of a TCP service). */
    static SocketAddressLegacy.Inet resolve(final SocketAddressLegacy.Inet addr, final boolean server)
        throws ChardevException {
        final String host = addr.host();
        final String port = servicePort(addr.host(), addr.port(), "tcp");
        if (server && addr.to() != null && !port.isEmpty() && Long.parseLong(port) > addr.to()) {
            // QEMU tries the ports from 'port' up to 'to': none (over QMP its words end with a stale errno).
            throw new ChardevException("Failed to create a socket");
        }
        return new SocketAddressLegacy.Inet(host, port, addr.numeric(), addr.to(), addr.ipv4(), addr.ipv6(),
            addr.keepAlive(), addr.mptcp());
    }

    /** A decimal port as given; a service name as its port number for {@code proto} (tcp or udp); an unknown
     *  name is QEMU's error. */
    static String servicePort(final String host, final String port, final String proto) throws ChardevException {
        if (port.isEmpty() || port.chars().allMatch(Character::isDigit)) {
            return port;
        }
        final Integer n = lookup(port, proto);
        if (n == null) {
            throw new ChardevException("address resolution failed for " + host + ":" + port
                + ": Servname not supported for ai_socktype");
        }
        return Integer.toString(n);
    }

    /** The port of service {@code name} (or one of its aliases) for {@code proto} in /etc/services, or null. */
    private static Integer lookup(final String name, final String proto) {
        final String wanted = name.toLowerCase(Locale.ROOT);
        try {
            for (final String line : Files.readAllLines(SERVICES, StandardCharsets.UTF_8)) {
                final int hash = line.indexOf('#');
                final String[] w = (hash < 0 ? line : line.substring(0, hash)).trim().split("\\s+");
                if (w.length < 2 || !w[1].endsWith("/" + proto)) {
                    continue;
                }
                for (int i = 0; i < w.length; i++) {
                    if (i != 1 && w[i].toLowerCase(Locale.ROOT).equals(wanted)) {
                        return Integer.valueOf(w[1].substring(0, w[1].indexOf('/')));
                    }
                }
            }
        } catch (final IOException | NumberFormatException e) {
            return null;
        }
        return null;
    }

    /** A udp chardev's address with its port as a number (of a UDP service). */
    static SocketAddressLegacy.Inet resolveUdp(final SocketAddressLegacy.Inet addr) throws ChardevException {
        if (addr == null) {
            return null;
        }
        return new SocketAddressLegacy.Inet(addr.host(), servicePort(addr.host(), addr.port(), "udp"), addr.numeric(),
            addr.to(), addr.ipv4(), addr.ipv6(), addr.keepAlive(), addr.mptcp());
    }
}
