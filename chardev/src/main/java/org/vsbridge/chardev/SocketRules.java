package org.vsbridge.chardev;

/**
 * The checks QEMU makes on a socket chardev's options ({@code qmp_chardev_validate_socket}), shared by the CLI and
 * QMP parsers, which differ only in their defaults.
 */
final class SocketRules {

    private SocketRules() {
    }

    /**
     * @param hasWait   whether {@code wait} counts as given (CLI: given or server=on; QMP: given)
     * @param websocket null when not given
     * @param reconnect seconds, null when not given
     * @param reconnectMs milliseconds, null when not given
     */
    static ChardevBackend.Socket validate(final SocketAddressLegacy addr, final String tlsCreds,
                                          final String tlsAuthz, final boolean server, final boolean hasWait,
                                          final boolean wait, final boolean nodelay, final boolean telnet,
                                          final boolean tn3270, final Boolean websocket, final Long reconnect,
                                          final Long reconnectMs) throws ChardevException {
        // Which address types take TLS is checked on opening, once the credentials are found (tlsCreds below).
        if (addr instanceof SocketAddressLegacy.Fd && reconnect != null) {
            throw new ChardevException("'reconnect' option is incompatible with 'fd' address type");
        }
        if (tlsAuthz != null && tlsCreds == null) {
            throw new ChardevException("'tls_authz' option requires 'tls_creds' option");
        }
        if (server) {
            if (reconnect != null) {
                throw new ChardevException("'reconnect' option is incompatible with socket in server listen mode");
            }
            if (reconnectMs != null) {
                throw new ChardevException(
                    "'reconnect-ms' option is incompatible with socket in server listen mode");
            }
        } else {
            if (websocket != null && websocket) {
                throw new ChardevException("Websocket client is not implemented");
            }
            if (hasWait) {
                throw new ChardevException("'wait' option is incompatible with socket in client connect mode");
            }
        }
        if (reconnect != null && reconnectMs != null) {
            throw new ChardevException("'reconnect' and 'reconnect-ms' are mutually exclusive");
        }
        if ((reconnect != null && reconnect < 0) || (reconnectMs != null && reconnectMs < 0)) {
            throw new ChardevException("'reconnect' must not be negative");
        }
        if (reconnect != null && reconnect > Long.MAX_VALUE / 1000) {
            throw new ChardevException("'reconnect' must be at most " + Long.MAX_VALUE / 1000 + " seconds");
        }
        final long delayMs = reconnect != null ? reconnect * 1000 : reconnectMs != null ? reconnectMs : 0;
        return new ChardevBackend.Socket(addr, tlsCreds, tlsAuthz, server, server && hasWait && wait, nodelay,
            telnet, tn3270, websocket != null && websocket, delayMs);
    }

    /**
     * The credentials of a socket chardev with {@code tls-creds}, or null without: checked in QEMU's order when it
     * opens one (found, then of the chardev's endpoint, then an address type that takes TLS: fd as a server, inet).
     */
    static TlsCredentials tlsCreds(final ChardevBackend.Socket options, final ChardevObjects objects)
        throws ChardevException {
        if (options.tlsCreds() == null) {
            return null;
        }
        final TlsCredentials tls = objects.tlsCreds(options.tlsCreds());
        if (tls.isServer() != options.server()) {
            throw new ChardevException("Expecting TLS credentials with a " + (options.server() ? "server"
                : "client") + " endpoint");
        }
        // Java 17 has no pattern switch: one branch per address type.
        final SocketAddressLegacy addr = options.addr();
        if (addr instanceof SocketAddressLegacy.Fd && !options.server()) {
            throw new ChardevException("'tls_creds' option is incompatible with 'fd' address type as client");
        } else if (addr instanceof SocketAddressLegacy.Unix) {
            throw new ChardevException("'tls_creds' option is incompatible with 'unix' address type");
        } else if (addr instanceof SocketAddressLegacy.Vsock) {
            throw new ChardevException("'tls_creds' option is incompatible with 'vsock' address type");
        }
        return tls;
    }
}
