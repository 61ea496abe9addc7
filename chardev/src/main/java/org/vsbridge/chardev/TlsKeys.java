package org.vsbridge.chardev;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.Collection;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The PEM files of a {@code tls-creds-x509} object, read the way GnuTLS accepts them: a private key as PKCS#8
 * ({@code PRIVATE KEY}), PKCS#1 ({@code RSA PRIVATE KEY}, what {@code certtool --generate-privkey} writes) or
 * SEC1 ({@code EC PRIVATE KEY}, what {@code openssl ecparam -genkey} writes, after an {@code EC PARAMETERS}
 * block). The JDK reads only PKCS#8, so the other two are wrapped in a PKCS#8 {@code PrivateKeyInfo} (RFC 5208)
 * here, without a crypto library. Encrypted keys are refused: QEMU needs a {@code secret} object for them.
 */
final class TlsKeys {

    /** rsaEncryption, RFC 8017 appendix A.1. */
    private static final String OID_RSA = "1.2.840.113549.1.1.1";
    /** id-RSASSA-PSS, RFC 8017 appendix A.2.3. */
    private static final String OID_RSA_PSS = "1.2.840.113549.1.1.10";
    /** id-ecPublicKey, RFC 5480 section 2.1.1. */
    private static final String OID_EC = "1.2.840.10045.2.1";
    /** id-Ed25519 and id-Ed448, RFC 8410 section 3. */
    private static final String OID_ED25519 = "1.3.101.112";
    private static final String OID_ED448 = "1.3.101.113";
    /** id-dsa, RFC 3279 section 2.3.2. */
    private static final String OID_DSA = "1.2.840.10040.4.1";

    private static final int SEQUENCE = 0x30;
    private static final int INTEGER = 0x02;
    private static final int OCTET_STRING = 0x04;
    private static final int NULL = 0x05;
    private static final int OID = 0x06;
    /** SEC1 ECPrivateKey's {@code [0] parameters} and {@code [1] publicKey} (explicit tags, constructed). */
    private static final int SEC1_PARAMETERS = 0xA0;
    private static final int SEC1_PUBLIC_KEY = 0xA1;

    private static final Pattern BLOCK = Pattern.compile(
        "-----BEGIN ([A-Z0-9 ]+)-----\\R(.*?)-----END \\1-----", Pattern.DOTALL);

    private TlsKeys() {
    }

    /** The first private key in {@code file}; errors name the file and say what is wrong with it. */
    static PrivateKey readPrivateKey(final Path file) throws ChardevException {
        final String pem = readText(file);
        final Matcher m = BLOCK.matcher(pem);
        while (m.find()) {
            final String type = m.group(1);
            if (!type.endsWith("PRIVATE KEY")) {
                continue; // e.g. the EC PARAMETERS block openssl ecparam writes first
            }
            final String body = m.group(2);
            if ("ENCRYPTED PRIVATE KEY".equals(type) || body.contains("Proc-Type: 4,ENCRYPTED")) {
                throw new ChardevException("Unable to load TLS private key " + file + ": encrypted keys are not "
                    + "supported (QEMU decrypts them with a 'passwordid' secret object, which the bridge does not "
                    + "have); store the key unencrypted");
            }
            try {
                final byte[] der = base64(body);
                final byte[] pkcs8 = switch (type) {
                    case "PRIVATE KEY" -> der;
                    case "RSA PRIVATE KEY" -> pkcs8(algorithm(OID_RSA, Der.encode(NULL, new byte[0])), der);
                    case "EC PRIVATE KEY" -> fromSec1(der);
                    default -> throw new ChardevException("a '" + type + "' block is not a supported key format "
                        + "(PKCS#8, RSA PKCS#1 or EC SEC1)");
                };
                return KeyFactory.getInstance(keyAlgorithm(pkcs8)).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
            } catch (final ChardevException e) {
                throw new ChardevException("Unable to load TLS private key " + file + ": " + e.getMessage(), e);
            } catch (final GeneralSecurityException | IllegalArgumentException e) {
                throw new ChardevException("Unable to load TLS private key " + file + ": malformed " + type + ": "
                    + e.getMessage(), e);
            }
        }
        throw new ChardevException("Unable to load TLS private key " + file + ": no PEM private key block in it");
    }

    /** Every certificate in {@code file}, in order (a chain starts with its leaf). */
    static X509Certificate[] readCertificates(final Path file) throws ChardevException {
        final Collection<? extends Certificate> certs;
        try (InputStream in = Files.newInputStream(file)) {
            certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
        } catch (final IOException | CertificateException e) {
            throw new ChardevException("Unable to load TLS certificates " + file + ": " + e.getMessage(), e);
        }
        if (certs.isEmpty()) {
            throw new ChardevException("Unable to load TLS certificates " + file + ": no certificate in it");
        }
        return certs.stream().map(X509Certificate.class::cast).toArray(X509Certificate[]::new);
    }

    private static String readText(final Path file) throws ChardevException {
        try {
            return Files.readString(file, StandardCharsets.ISO_8859_1);
        } catch (final IOException e) {
            throw new ChardevException("Unable to access credentials " + file + ": " + e.getMessage(), e);
        }
    }

    /** The base64 lines of a PEM block, without RFC 1421 headers ({@code Name: value} lines). */
    private static byte[] base64(final String body) {
        final StringBuilder b = new StringBuilder();
        body.lines().filter(l -> l.indexOf(':') < 0).forEach(l -> b.append(l.strip()));
        return Base64.getDecoder().decode(b.toString());
    }

    /**
     * SEC1 {@code ECPrivateKey} (RFC 5915 section 3) to PKCS#8: the curve named in the key's {@code [0]} field
     * becomes the parameters of the algorithm identifier (RFC 5480 section 2.1.1), and the key keeps its public
     * point, as {@code openssl pkcs8 -topk8} does.
     */
    private static byte[] fromSec1(final byte[] der) throws ChardevException {
        final Der key = Der.of(der, SEQUENCE);
        final Der outer = key.contents();
        final Der version = outer.next(INTEGER);
        if (version.length() != 1 || version.bytes()[0] != 1) {
            throw new ChardevException("an EC PRIVATE KEY must have version 1");
        }
        final Der privateKey = outer.next(OCTET_STRING);
        String curve = null;
        byte[] publicKey = null;
        while (outer.hasMore()) {
            final Der field = outer.next(-1);
            if (field.tag() == SEC1_PARAMETERS) {
                final Der params = field.contents().next(-1);
                if (params.tag() != OID) {
                    throw new ChardevException("an EC PRIVATE KEY with explicit curve parameters is not supported; "
                        + "use a named curve");
                }
                curve = params.oid();
            } else if (field.tag() == SEC1_PUBLIC_KEY) {
                publicKey = field.encoded();
            }
        }
        if (curve == null) {
            throw new ChardevException("the EC PRIVATE KEY does not name its curve (no parameters field); convert "
                + "it to PKCS#8 with 'openssl pkcs8 -topk8 -nocrypt'");
        }
        final ByteArrayOutputStream inner = new ByteArrayOutputStream();
        inner.writeBytes(version.encoded());
        inner.writeBytes(privateKey.encoded());
        if (publicKey != null) {
            inner.writeBytes(publicKey);
        }
        return pkcs8(algorithm(OID_EC, Der.encode(OID, Der.oidBytes(curve))),
            Der.encode(SEQUENCE, inner.toByteArray()));
    }

    /** {@code AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters }} (RSA: NULL, EC: the curve). */
    private static byte[] algorithm(final String oid, final byte[] parameters) {
        return Der.encode(SEQUENCE, concat(Der.encode(OID, Der.oidBytes(oid)), parameters));
    }

    /** {@code PrivateKeyInfo ::= SEQUENCE { version 0, privateKeyAlgorithm, privateKey OCTET STRING }}. */
    private static byte[] pkcs8(final byte[] algorithm, final byte[] key) {
        return Der.encode(SEQUENCE, concat(Der.encode(INTEGER, new byte[] {0}), algorithm,
            Der.encode(OCTET_STRING, key)));
    }

    /** The JDK's {@code KeyFactory} name for the algorithm a PKCS#8 key names. */
    private static String keyAlgorithm(final byte[] pkcs8) throws ChardevException {
        final Der info = Der.of(pkcs8, SEQUENCE).contents();
        info.next(INTEGER);
        final String oid = info.next(SEQUENCE).contents().next(OID).oid();
        return switch (oid) {
            case OID_RSA -> "RSA";
            case OID_RSA_PSS -> "RSASSA-PSS";
            case OID_EC -> "EC";
            case OID_ED25519 -> "Ed25519";
            case OID_ED448 -> "Ed448";
            case OID_DSA -> "DSA";
            default -> throw new ChardevException("unsupported key algorithm " + oid);
        };
    }

    private static byte[] concat(final byte[]... parts) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (final byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    /**
     * One DER element (X.690) in a byte array, or a cursor over the elements inside one. Only what keys need:
     * single-byte tags, definite lengths up to four bytes.
     */
    static final class Der {
        private final byte[] buf;
        private final int start;     // first byte of the tag (element) or of the contents (cursor)
        private final int valueAt;   // first content byte
        private final int end;       // one past the last byte
        private int pos;             // cursor only: the next element

        private Der(final byte[] buf, final int start, final int valueAt, final int end) {
            this.buf = buf;
            this.start = start;
            this.valueAt = valueAt;
            this.end = end;
            this.pos = valueAt;
        }

        /** The whole of {@code der} as one element with {@code tag}. */
        static Der of(final byte[] der, final int tag) throws ChardevException {
            final Der all = new Der(der, 0, 0, der.length);
            final Der e = all.next(tag);
            if (all.hasMore()) {
                throw new ChardevException("trailing bytes after the key");
            }
            return e;
        }

        int tag() {
            return buf[start] & 0xFF;
        }

        int length() {
            return end - valueAt;
        }

        byte[] bytes() {
            return java.util.Arrays.copyOfRange(buf, valueAt, end);
        }

        /** Tag, length and contents, as found. */
        byte[] encoded() {
            return java.util.Arrays.copyOfRange(buf, start, end);
        }

        /** A cursor over the elements inside this one. */
        Der contents() {
            return new Der(buf, valueAt, valueAt, end);
        }

        boolean hasMore() {
            return pos < end;
        }

        /** The next element inside this cursor; {@code tag} -1 takes any. */
        Der next(final int tag) throws ChardevException {
            if (pos + 2 > end) {
                throw new ChardevException("truncated DER");
            }
            final int at = pos;
            final int t = buf[pos++] & 0xFF;
            if ((t & 0x1F) == 0x1F) {
                throw new ChardevException("unsupported DER tag");
            }
            int len = buf[pos++] & 0xFF;
            if (len > 0x80) {
                final int n = len & 0x7F;
                if (n > 4 || pos + n > end) {
                    throw new ChardevException("bad DER length");
                }
                len = 0;
                for (int i = 0; i < n; i++) {
                    len = (len << 8) | (buf[pos++] & 0xFF);
                }
            } else if (len == 0x80) {
                throw new ChardevException("indefinite DER length");
            }
            if (len < 0 || len > end - pos) {
                throw new ChardevException("DER element longer than its container");
            }
            if (tag >= 0 && t != tag) {
                throw new ChardevException(String.format("expected DER tag 0x%02x, found 0x%02x", tag, t));
            }
            final Der e = new Der(buf, at, pos, pos + len);
            pos += len;
            return e;
        }

        /** This OBJECT IDENTIFIER's dotted form. */
        String oid() throws ChardevException {
            if (tag() != OID || length() == 0) {
                throw new ChardevException("expected an OBJECT IDENTIFIER");
            }
            final StringBuilder s = new StringBuilder();
            long arc = 0;
            boolean first = true;
            for (int i = valueAt; i < end; i++) {
                arc = (arc << 7) | (buf[i] & 0x7F);
                if ((buf[i] & 0x80) == 0) {
                    if (first) {
                        final long top = Math.min(arc / 40, 2);
                        s.append(top).append('.').append(arc - top * 40);
                        first = false;
                    } else {
                        s.append('.').append(arc);
                    }
                    arc = 0;
                } else if (arc > (Long.MAX_VALUE >> 7)) {
                    throw new ChardevException("OBJECT IDENTIFIER arc too large");
                }
            }
            return s.toString();
        }

        /** The contents octets of an OBJECT IDENTIFIER in dotted form. */
        static byte[] oidBytes(final String dotted) {
            final String[] arcs = dotted.split("\\.");
            final ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (int i = 1; i < arcs.length; i++) {
                long arc = Long.parseLong(arcs[i]);
                if (i == 1) {
                    arc += 40 * Long.parseLong(arcs[0]);
                }
                final byte[] tmp = new byte[10];
                int n = 0;
                do {
                    tmp[n++] = (byte) (arc & 0x7F);
                    arc >>>= 7;
                } while (arc != 0);
                for (int j = n - 1; j >= 0; j--) {
                    out.write(tmp[j] | (j > 0 ? 0x80 : 0));
                }
            }
            return out.toByteArray();
        }

        /** Tag, definite length and {@code contents}. */
        static byte[] encode(final int tag, final byte[] contents) {
            final ByteArrayOutputStream out = new ByteArrayOutputStream(contents.length + 6);
            out.write(tag);
            final int len = contents.length;
            if (len < 0x80) {
                out.write(len);
            } else {
                final int n = len < 0x100 ? 1 : len < 0x10000 ? 2 : len < 0x1000000 ? 3 : 4;
                out.write(0x80 | n);
                for (int i = n - 1; i >= 0; i--) {
                    out.write(len >>> (8 * i));
                }
            }
            out.writeBytes(contents);
            return out.toByteArray();
        }
    }
}
