package org.vsbridge.chardev;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLException;

/**
 * A {@code tls-creds-x509} object: PEM files in {@code dir} under QEMU's names ({@code ca-cert.pem},
 * {@code server-cert.pem}, {@code server-key.pem}, {@code client-cert.pem}, {@code client-key.pem}), loaded once
 * when the object is created. A key may be PKCS#8 ({@code BEGIN PRIVATE KEY}), RSA PKCS#1 ({@code BEGIN RSA
 * PRIVATE KEY}, what {@code certtool --generate-privkey} writes) or EC SEC1 ({@code BEGIN EC PRIVATE KEY}, what
 * {@code openssl ecparam -genkey} writes), as GnuTLS reads them; encrypted keys are refused (see {@link TlsKeys}).
 *
 * <p>{@code verifyPeer}, as QEMU's {@code crypto/tlssession.c}: a server requires a client certificate signed by
 * the CA; a client checks that the server's certificate is signed by the CA and names the host the chardev
 * connects to (its {@code host} option, RFC 2818 matching of DNS names and IP literals against the subject
 * alternative names). Without {@code verifyPeer} nothing is checked.
 */
public final class TlsCredentials {

    private final String id;
    private final Path dir;
    private final boolean server;
    private final boolean verifyPeer;
    private final SslContext context;

    private TlsCredentials(final String id, final Path dir, final boolean server, final boolean verifyPeer,
                           final SslContext context) {
        this.id = id;
        this.dir = dir;
        this.server = server;
        this.verifyPeer = verifyPeer;
        this.context = context;
    }

    /** Loads the credentials for {@code endpoint} "server" or "client"; errors name the missing or bad file. */
    public static TlsCredentials load(final String id, final Path dir, final String endpoint,
                                      final boolean verifyPeer) throws ChardevException {
        final boolean server;
        switch (endpoint) {
            case "server" -> server = true;
            case "client" -> server = false;
            default -> throw new ChardevException("Parameter 'endpoint' does not accept value '" + endpoint + "'");
        }
        final Path ca = dir.resolve("ca-cert.pem");
        try {
            final SslContextBuilder b;
            if (server) {
                final X509Certificate[] chain = certificates(dir.resolve("server-cert.pem"));
                b = SslContextBuilder.forServer(key(dir.resolve("server-key.pem")), chain);
                if (verifyPeer) {
                    b.trustManager(certificates(ca)).clientAuth(ClientAuth.REQUIRE);
                }
            } else {
                // The host name is the connection's (SocketChardev gives it to newHandler); QEMU compares it only
                // as part of verify-peer.
                b = SslContextBuilder.forClient().endpointIdentificationAlgorithm(verifyPeer ? "HTTPS" : null);
                if (verifyPeer) {
                    b.trustManager(certificates(ca));
                } else {
                    b.trustManager(InsecureTrustManagerFactory.INSTANCE);
                }
                final Path cert = dir.resolve("client-cert.pem");
                final Path key = dir.resolve("client-key.pem");
                if (Files.exists(cert) || Files.exists(key)) {
                    final X509Certificate[] chain = certificates(cert);
                    b.keyManager(key(key), chain);
                }
            }
            return new TlsCredentials(id, dir, server, verifyPeer, b.build());
        } catch (final SSLException | IllegalArgumentException e) {
            throw new ChardevException("Unable to load TLS credentials from '" + dir + "': " + e.getMessage(), e);
        }
    }

    private static PrivateKey key(final Path file) throws ChardevException {
        return TlsKeys.readPrivateKey(required(file));
    }

    private static X509Certificate[] certificates(final Path file) throws ChardevException {
        return TlsKeys.readCertificates(required(file));
    }

    private static Path required(final Path file) throws ChardevException {
        if (!Files.isReadable(file)) {
            throw new ChardevException("Unable to access credentials " + file + ": No such file or directory");
        }
        return file;
    }

    public String id() {
        return id;
    }

    public Path dir() {
        return dir;
    }

    /** True for {@code endpoint=server}. */
    public boolean isServer() {
        return server;
    }

    public boolean verifyPeer() {
        return verifyPeer;
    }

    public SslContext context() {
        return context;
    }
}
