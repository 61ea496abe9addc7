package org.vsbridge.core.objects;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Logger;
import org.vsbridge.chardev.Authorizer;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.TlsCredentials;

/**
 * The user-creatable objects of the process ({@code --object}, {@code object-add}, {@code object-del}):
 * {@code tls-creds-x509}, {@code authz-simple}, {@code authz-list}. Thread-safe. Chardevs look objects up when
 * they open; deleting one later leaves open chardevs as they are (QEMU does not hold them either).
 */
public final class ObjectRegistry {

    private static final Logger LOG = Logger.getLogger(ObjectRegistry.class.getName());

    /** The qom-types this registry creates (object-add's accepted values). */
    public static final String[] TYPES = {"tls-creds-x509", "authz-simple", "authz-list"};

    private final Map<String, Object> objects = new ConcurrentHashMap<>();

    /** Creates the object; QEMU's words for a duplicate id, an unknown type or a bad property. */
    public void add(final ObjectSpec spec) throws ObjectException {
        final Object object = create(spec);
        if (objects.putIfAbsent(spec.id(), object) != null) {
            throw new ObjectException("attempt to add duplicate property '" + spec.id()
                + "' to object (type 'container')");
        }
        LOG.info(() -> "object '" + spec.id() + "' (" + spec.qomType() + ") created");
    }

    public void delete(final String id) throws ObjectException {
        if (objects.remove(id) == null) {
            throw new ObjectException("object '" + id + "' not found");
        }
        LOG.info(() -> "object '" + id + "' deleted");
    }

    public TlsCredentials tlsCreds(final String id) throws ChardevException {
        final Object o = objects.get(id);
        if (o == null) {
            throw new ChardevException("No TLS credentials with id '" + id + "'");
        }
        if (!(o instanceof TlsCredentials t)) {
            throw new ChardevException("Object with id '" + id + "' is not TLS credentials");
        }
        return t;
    }

    public Authorizer authz(final String id) throws ChardevException {
        final Object o = objects.get(id);
        if (!(o instanceof Authorizer a)) {
            throw new ChardevException("Cannot find QAuthZ object ID " + id);
        }
        return a;
    }

    private static Object create(final ObjectSpec spec) throws ObjectException {
        switch (spec.qomType()) {
            case "tls-creds-x509" -> {
                spec.onlyKnown("dir", "endpoint", "verify-peer", "sanity-check", "priority", "passwordid");
                if (spec.props().has("passwordid")) {
                    throw new ObjectException("tls-creds-x509: 'passwordid' (encrypted keys) is not supported by "
                        + "the bridge: use an unencrypted key");
                }
                if (spec.props().has("priority")) {
                    throw new ObjectException("tls-creds-x509: 'priority' (a GnuTLS priority string) has no "
                        + "equivalent in the bridge's Java TLS stack");
                }
                final String dir = spec.string("dir", null);
                if (dir == null) {
                    throw new ObjectException("Parameter 'dir' is missing");
                }
                try {
                    return TlsCredentials.load(spec.id(), Path.of(dir), spec.string("endpoint", "client"),
                        spec.bool("verify-peer", true));
                } catch (final ChardevException e) {
                    throw new ObjectException(e.getMessage());
                }
            }
            case "authz-simple" -> {
                spec.onlyKnown("identity");
                final String identity = spec.string("identity", null);
                if (identity == null) {
                    throw new ObjectException("Parameter 'identity' is missing");
                }
                return (Authorizer) identity::equals;
            }
            case "authz-list" -> {
                return AuthzList.of(spec);
            }
            case "tls-creds-psk", "tls-creds-anon" -> throw new ObjectException("'" + spec.qomType()
                + "' is not supported by the bridge: use tls-creds-x509");
            case "authz-listfile", "authz-pam" -> throw new ObjectException("'" + spec.qomType()
                + "' is not supported by the bridge: use authz-simple or authz-list");
            // QEMU's words for a type it does not know; the bridge creates only TYPES.
            default -> throw new ObjectException("Parameter 'qom-type' does not accept value '" + spec.qomType()
                + "'");
        }
    }
}
