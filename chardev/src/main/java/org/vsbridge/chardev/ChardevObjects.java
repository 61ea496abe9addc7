package org.vsbridge.chardev;

/**
 * What a chardev's options name by id and the process owns: TLS credentials and authorization objects
 * ({@code --object} / {@code object-add}), other chardevs (the backend of a {@code mux}, the members of a
 * {@code hub}) and named file descriptors ({@code socket} with an {@code fd} address). The process implements it;
 * {@link #NONE} knows nothing.
 */
public interface ChardevObjects {

    /** Knows no objects, chardevs or descriptors. */
    ChardevObjects NONE = new ChardevObjects() {
    };

    /** The {@code tls-creds-x509} object {@code id}; QEMU's words when there is none. */
    default TlsCredentials tlsCreds(final String id) throws ChardevException {
        throw new ChardevException("No TLS credentials with id '" + id + "'");
    }

    /** The {@code authz-*} object {@code id}. */
    default Authorizer authz(final String id) throws ChardevException {
        throw new ChardevException("No authorization object with id '" + id + "'");
    }

    /** The chardev {@code id}, or null. */
    default Chardev chardev(final String id) {
        return null;
    }

    /** A descriptor passed to the process under {@code name} (not a number), e.g. by systemd. */
    default int namedFd(final String name) throws ChardevException {
        throw new ChardevException("File descriptor named '" + name + "' has not been found");
    }

    /**
     * Stop the whole process as QEMU's {@code quit} does: C-a x typed on a {@code mux} over {@code stdio} (the
     * {@code -nographic} console). Returns false when the process takes no such request (the key is then ignored).
     */
    default boolean quit() {
        return false;
    }
}
