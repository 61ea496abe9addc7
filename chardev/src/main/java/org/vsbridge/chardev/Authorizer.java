package org.vsbridge.chardev;

/**
 * QEMU's {@code QAuthZ}: decides whether an identity may use a service. For {@code tls-authz} the identity is the
 * distinguished name of the client's x509 certificate, most specific part first ({@code CN=client,O=Example}),
 * as QEMU prints it.
 */
@FunctionalInterface
public interface Authorizer {

    boolean isAllowed(String identity);
}
