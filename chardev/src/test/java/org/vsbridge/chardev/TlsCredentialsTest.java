package org.vsbridge.chardev;

import static org.awaitility.Awaitility.await;
import static org.vsbridge.chardev.ChardevRig.attach;
import static org.vsbridge.chardev.ChardevRig.port;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vsbridge.chardev.ByteBufs.write;

import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.interfaces.ECPrivateKey;
import java.security.interfaces.RSAPrivateCrtKey;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code tls-creds-x509} as GnuTLS reads it: private keys in PKCS#1 and SEC1 as well as PKCS#8 (made by openssl
 * for this run, used by real TLS peers), encrypted keys refused, and a client's check of the server's certificate
 * against the host it connects to (QEMU's {@code crypto/tlssession.c}, with {@code verify-peer}).
 */
class TlsCredentialsTest {

    @TempDir
    Path dir;

    private ChardevRig rig;
    private final Logger socketLog = Logger.getLogger(SocketChardev.class.getName());
    private final List<String> warnings = new CopyOnWriteArrayList<>();
    private final Handler capture = new Handler() {
        @Override
        public void publish(final LogRecord r) {
            warnings.add(new SimpleFormatter().formatMessage(r));
        }

        @Override
        public void flush() {
        }

        @Override
        public void close() {
        }
    };

    @BeforeEach
    void setUp() throws Exception {
        rig = new ChardevRig("test-tls");
        socketLog.addHandler(capture);
        TestCa.makeCa(dir);
    }

    @AfterEach
    void tearDown() {
        socketLog.removeHandler(capture);
        rig.close();
    }

    private TlsCredentials creds(final String id, final Path in, final String endpoint, final boolean verifyPeer)
        throws ChardevException {
        final TlsCredentials t = TlsCredentials.load(id, in, endpoint, verifyPeer);
        rig.objects.put(id, t);
        return t;
    }

    private String firstLine(final Path file) throws Exception {
        return Files.readAllLines(file).get(0);
    }

    // ------------------------------------------------------------------ key formats

    @Test
    void pkcs1RsaServerKeyAndSec1ClientKeyCarryBytes() throws Exception {
        // certtool --generate-privkey's format for RSA; openssl ecparam -genkey's for EC (parameters block first).
        TestCa.openssl(dir, "genrsa", "-traditional", "-out", "rsa.pem", "2048");
        TestCa.openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-out", "ec.pem");
        TestCa.issue(dir, dir.resolve("server"), "server", "/CN=localhost", TestCa.LOCAL_NAMES, "rsa.pem");
        TestCa.issue(dir, dir.resolve("client"), "client", "/O=Example/CN=client1", null, "ec.pem");
        assertEquals("-----BEGIN RSA PRIVATE KEY-----", firstLine(dir.resolve("server/server-key.pem")));
        assertEquals("-----BEGIN EC PARAMETERS-----", firstLine(dir.resolve("client/client-key.pem")));

        creds("srv", dir.resolve("server"), "server", true);
        creds("cli", dir.resolve("client"), "client", true);
        final Chardev s = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=srv");
        final RecordingFrontend sfe = attach(s);
        final Chardev c = rig.create("socket,id=c,host=localhost,port=" + port(s) + ",tls-creds=cli");
        final RecordingFrontend cfe = attach(c);
        cfe.expect("opened");
        sfe.expect("opened");
        assertTrue(write(c, "rsa server"));
        assertEquals("rsa server", sfe.takeInput(10));
        assertTrue(write(s, "ec client"));
        assertEquals("ec client", cfe.takeInput(9));
    }

    @Test
    void sec1EcServerKeyServesAJdkClient() throws Exception {
        // openssl pkey -traditional: SEC1 with the curve in [0] and the public key in [1], no parameters block.
        TestCa.openssl(dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", "p8.pem");
        TestCa.openssl(dir, "pkey", "-in", "p8.pem", "-traditional", "-out", "sec1.pem");
        TestCa.issue(dir, dir.resolve("server"), "server", "/CN=localhost", TestCa.LOCAL_NAMES, "sec1.pem");
        assertEquals("-----BEGIN EC PRIVATE KEY-----", firstLine(dir.resolve("server/server-key.pem")));
        creds("srv", dir.resolve("server"), "server", false);
        final Chardev s = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=srv");
        final RecordingFrontend sfe = attach(s);

        final KeyStore trust = KeyStore.getInstance("PKCS12");
        trust.load(null, null);
        trust.setCertificateEntry("ca", TlsKeys.readCertificates(dir.resolve("ca-cert.pem"))[0]);
        final TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        final SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        try (SSLSocket peer = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", port(s))) {
            final SSLParameters params = peer.getSSLParameters();
            params.setEndpointIdentificationAlgorithm("HTTPS");
            peer.setSSLParameters(params);
            peer.setSoTimeout((int) TimeUnit.SECONDS.toMillis(RecordingFrontend.TIMEOUT_S));
            final OutputStream out = peer.getOutputStream();
            out.write("from jdk".getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            sfe.expect("opened");
            assertEquals("from jdk", sfe.takeInput(8));
            assertTrue(write(s, "from ec"));
            final InputStream in = peer.getInputStream();
            assertEquals("from ec", new String(in.readNBytes(7), StandardCharsets.ISO_8859_1));
        }
        sfe.expect("closed");
    }

    @Test
    void everyFormatYieldsTheSameKey() throws Exception {
        TestCa.openssl(dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa8.pem");
        TestCa.openssl(dir, "pkey", "-in", "rsa8.pem", "-traditional", "-out", "rsa1.pem");
        TestCa.openssl(dir, "ecparam", "-name", "secp384r1", "-genkey", "-out", "sec1.pem");
        TestCa.openssl(dir, "pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem", "-out", "ec8.pem");
        TestCa.openssl(dir, "ec", "-in", "sec1.pem", "-no_public", "-out", "sec1-nopub.pem");
        final RSAPrivateCrtKey rsa8 = (RSAPrivateCrtKey) TlsKeys.readPrivateKey(dir.resolve("rsa8.pem"));
        final RSAPrivateCrtKey rsa1 = (RSAPrivateCrtKey) TlsKeys.readPrivateKey(dir.resolve("rsa1.pem"));
        assertEquals(rsa8.getModulus(), rsa1.getModulus());
        assertEquals(rsa8.getPrivateExponent(), rsa1.getPrivateExponent());
        final ECPrivateKey ec8 = (ECPrivateKey) TlsKeys.readPrivateKey(dir.resolve("ec8.pem"));
        for (final String sec1 : new String[] {"sec1.pem", "sec1-nopub.pem"}) {
            final ECPrivateKey ec = (ECPrivateKey) TlsKeys.readPrivateKey(dir.resolve(sec1));
            assertEquals(ec8.getS(), ec.getS(), sec1);
            assertEquals(ec8.getParams().getCurve(), ec.getParams().getCurve(), sec1);
        }
    }

    @Test
    void sec1WithoutCurveIsRefused() throws Exception {
        TestCa.openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sec1.pem");
        final String pem = Files.readString(dir.resolve("sec1.pem"));
        final byte[] der = Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
        // ECPrivateKey without [0]: version and private key only, which RFC 5915 allows when the curve is known
        // from elsewhere, but a lone key file has nowhere else.
        final TlsKeys.Der key = TlsKeys.Der.of(der, 0x30).contents();
        final byte[] stripped = TlsKeys.Der.encode(0x30, concat(key.next(0x02).encoded(), key.next(0x04).encoded()));
        final Path file = dir.resolve("no-curve.pem");
        Files.writeString(file, "-----BEGIN EC PRIVATE KEY-----\n"
            + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(stripped)
            + "\n-----END EC PRIVATE KEY-----\n");
        final ChardevException e = assertThrows(ChardevException.class, () -> TlsKeys.readPrivateKey(file));
        assertTrue(e.getMessage().startsWith("Unable to load TLS private key " + file + ": "), e.getMessage());
        assertTrue(e.getMessage().contains("does not name its curve"), e.getMessage());
    }

    @Test
    void encryptedKeysAreRefusedNamingTheFile() throws Exception {
        TestCa.issue(dir, dir.resolve("plain"), "server", "/CN=localhost", TestCa.LOCAL_NAMES, null);
        final Path key = dir.resolve("plain/server-key.pem");
        TestCa.openssl(dir, "pkcs8", "-topk8", "-in", key.toString(), "-passout", "pass:secret",
            "-out", "pkcs8-enc.pem");
        TestCa.openssl(dir, "pkey", "-in", key.toString(), "-traditional", "-aes-128-cbc", "-passout",
            "pass:secret", "-out", "legacy-enc.pem");
        assertEquals("-----BEGIN ENCRYPTED PRIVATE KEY-----", firstLine(dir.resolve("pkcs8-enc.pem")));
        assertTrue(Files.readString(dir.resolve("legacy-enc.pem")).contains("Proc-Type: 4,ENCRYPTED"));
        for (final String encrypted : new String[] {"pkcs8-enc.pem", "legacy-enc.pem"}) {
            final Path in = dir.resolve(encrypted.replace(".pem", ""));
            Files.createDirectories(in);
            Files.copy(dir.resolve("plain/server-cert.pem"), in.resolve("server-cert.pem"));
            Files.copy(dir.resolve(encrypted), in.resolve("server-key.pem"));
            final ChardevException e = assertThrows(ChardevException.class,
                () -> TlsCredentials.load("enc", in, "server", false));
            assertTrue(e.getMessage().startsWith("Unable to load TLS private key " + in.resolve("server-key.pem")
                + ": encrypted keys are not supported"), e.getMessage());
        }
        assertFalse(TlsCredentials.load("plain", dir.resolve("plain"), "server", false).verifyPeer());
    }

    // ------------------------------------------------------------------ host name

    @Test
    void clientAcceptsAServerCertificateNamingItsHost() throws Exception {
        TestCa.issue(dir, dir.resolve("server"), "server", "/CN=vsb server", TestCa.LOCAL_NAMES, null);
        TestCa.issue(dir, dir.resolve("client"), "client", "/CN=client", null, null);
        creds("srv", dir.resolve("server"), "server", false);
        creds("cli", dir.resolve("client"), "client", true);
        final Chardev s = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=srv");
        final RecordingFrontend sfe = attach(s);
        for (final String host : new String[] {"127.0.0.1", "localhost"}) {
            final Chardev c = rig.create("socket,id=" + id(host) + ",host=" + host + ",port=" + port(s)
                + ",tls-creds=cli");
            final RecordingFrontend cfe = attach(c);
            cfe.expect("opened");
            sfe.expect("opened");
            assertTrue(write(c, host));
            assertEquals(host, sfe.takeInput(host.length()));
            c.close();
            sfe.expect("closed");
        }
    }

    @Test
    void clientRefusesAServerCertificateNamingAnotherHost() throws Exception {
        TestCa.issue(dir, dir.resolve("server"), "server", "/CN=localhost", "DNS:elsewhere.example,IP:192.0.2.1",
            null);
        TestCa.issue(dir, dir.resolve("client"), "client", "/CN=client", null, null);
        creds("srv", dir.resolve("server"), "server", false);
        creds("cli", dir.resolve("client"), "client", true);
        final Chardev s = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=srv");
        final RecordingFrontend sfe = attach(s);
        final int port = port(s);
        for (final String host : new String[] {"127.0.0.1", "localhost"}) {
            warnings.clear();
            // As QEMU: the TCP connect succeeds, so creation does; the handshake fails and the client stays
            // disconnected, with the reason logged.
            final Chardev c = rig.create("socket,id=" + id(host) + ",host=" + host + ",port=" + port
                + ",tls-creds=cli");
            final RecordingFrontend cfe = attach(c);
            final String prefix = "chardev '" + id(host) + "': TLS handshake failed with host " + host
                + " port " + port + ": ";
            final String logged = await("a handshake failure logged").atMost(Duration.ofSeconds(
                RecordingFrontend.TIMEOUT_S)).pollInterval(Duration.ofMillis(20))
                .until(() -> warnings.stream().filter(w -> w.startsWith(prefix)).findFirst().orElse(null),
                    Objects::nonNull);
            assertEquals(1, ((SocketChardev) c).handshakeAttempts());
            assertFalse(c.isOpen());
            assertTrue(c.filename().startsWith("disconnected:"), c.filename());
            assertFalse(cfe.events.contains("opened"), cfe.events.toString());
            assertTrue(logged.contains(host), logged);
            c.close();
        }
        assertFalse(sfe.events.contains("opened"), "the server never saw a connected client: " + sfe.events);

        // verify-peer=off checks nothing, as QEMU: the same certificate is accepted.
        creds("lax", dir.resolve("client"), "client", false);
        final Chardev lax = rig.create("socket,id=lax,host=127.0.0.1,port=" + port + ",tls-creds=lax");
        final RecordingFrontend lfe = attach(lax);
        lfe.expect("opened");
        sfe.expect("opened");
        assertTrue(write(lax, "unchecked"));
        assertEquals("unchecked", sfe.takeInput(9));
    }

    /** A chardev id for a client of {@code host}. */
    private static String id(final String host) {
        return "localhost".equals(host) ? "by-name" : "by-address";
    }

    private static byte[] concat(final byte[] a, final byte[] b) {
        final byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
