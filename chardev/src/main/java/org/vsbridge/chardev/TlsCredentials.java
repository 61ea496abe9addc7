package org.vsbridge.chardev;

import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.util.InsecureTrustManagerFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import javax.net.ssl.SSLException;

/**
 * A {@code tls-creds-x509} object: PEM files in {@code dir} under QEMU's names ({@code ca-cert.pem},
 * {@code server-cert.pem}, {@code server-key.pem}, {@code client-cert.pem}, {@code client-key.pem}), loaded once
 * when the object is created. Keys must be unencrypted PKCS#8 ({@code BEGIN PRIVATE KEY}), which is what
 * {@code openssl genpkey} and {@code certtool} write by default.
 *
 * <p>{@code verifyPeer}: a server requires and checks a client certificate, a client checks the server's
 * certificate against the CA (the host name in it is not compared).
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
                b = SslContextBuilder.forServer(required(dir.resolve("server-cert.pem")).toFile(),
                    required(dir.resolve("server-key.pem")).toFile());
                if (verifyPeer) {
                    b.trustManager(required(ca).toFile()).clientAuth(ClientAuth.REQUIRE);
                }
            } else {
                // QEMU compares the host name only when it has one; a bridge often connects by address or over a
                // path-less fd, so the CA check is the whole check here.
                b = SslContextBuilder.forClient().endpointIdentificationAlgorithm(null);
                if (verifyPeer) {
                    b.trustManager(required(ca).toFile());
                } else {
                    b.trustManager(InsecureTrustManagerFactory.INSTANCE);
                }
                final Path cert = dir.resolve("client-cert.pem");
                final Path key = dir.resolve("client-key.pem");
                if (Files.exists(cert) || Files.exists(key)) {
                    b.keyManager(required(cert).toFile(), required(key).toFile());
                }
            }
            return new TlsCredentials(id, dir, server, verifyPeer, b.build());
        } catch (final SSLException | IllegalArgumentException e) {
            throw new ChardevException("Unable to load TLS credentials from '" + dir + "': " + e.getMessage(), e);
        }
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
