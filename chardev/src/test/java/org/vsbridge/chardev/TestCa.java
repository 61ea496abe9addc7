package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A throw-away CA and certificates for one test run, made with the openssl command (skipped without it). */
public final class TestCa {

    /** The names a server certificate carries so that clients connecting to this machine accept it. */
    public static final String LOCAL_NAMES = "IP:127.0.0.1,DNS:localhost";

    private TestCa() {
    }

    /**
     * Makes a CA in {@code work}, server credentials in {@code server} (CN=localhost, with {@link #LOCAL_NAMES}),
     * and client credentials in {@code good} (CN=client1,O=Example) and {@code bad} (CN=intruder,O=Example), with
     * QEMU's file names.
     */
    public static void make(final Path work, final Path server, final Path good, final Path bad) throws Exception {
        makeCa(work);
        issue(work, server, "server", "/CN=localhost", LOCAL_NAMES, null);
        issue(work, good, "client", "/O=Example/CN=client1", null, null);
        issue(work, bad, "client", "/O=Example/CN=intruder", null, null);
    }

    /** The CA alone: {@code ca-key.pem} and {@code ca-cert.pem} in {@code work}. */
    public static void makeCa(final Path work) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/openssl")), "openssl not installed");
        openssl(work, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=vsb test CA");
    }

    /**
     * Issues a certificate for {@code role} ("server" or "client") into {@code into} with the CA in {@code work}:
     * {@code subjectAltNames} in openssl's syntax or null for none; {@code key} a PEM key file in {@code work} to
     * certify (copied as it is), or null for a new EC key in PKCS#8.
     */
    public static void issue(final Path work, final Path into, final String role, final String subject,
                             final String subjectAltNames, final String key) throws Exception {
        Files.createDirectories(into);
        final String name = into.getFileName().toString();
        final String keyFile = key != null ? key : name + "-key.pem";
        if (key == null) {
            openssl(work, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", keyFile, "-out", name + ".csr", "-subj", subject);
        } else {
            openssl(work, "req", "-new", "-key", keyFile, "-out", name + ".csr", "-subj", subject);
        }
        final List<String> sign = new java.util.ArrayList<>(List.of("x509", "-req", "-in", name + ".csr",
            "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", name + "-cert.pem",
            "-days", "2"));
        if (subjectAltNames != null) {
            Files.writeString(work.resolve(name + ".ext"), "subjectAltName=" + subjectAltNames + "\n");
            sign.addAll(List.of("-extfile", name + ".ext"));
        }
        openssl(work, sign.toArray(String[]::new));
        Files.copy(work.resolve("ca-cert.pem"), into.resolve("ca-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(work.resolve(name + "-cert.pem"), into.resolve(role + "-cert.pem"),
            StandardCopyOption.REPLACE_EXISTING);
        Files.copy(work.resolve(keyFile), into.resolve(role + "-key.pem"), StandardCopyOption.REPLACE_EXISTING);
    }

    /** Runs {@code openssl args} in {@code work}; a failure throws with its output. */
    public static void openssl(final Path work, final String... args) throws Exception {
        final List<String> cmd = new java.util.ArrayList<>();
        cmd.add("openssl");
        cmd.addAll(List.of(args));
        final Process p = new ProcessBuilder(cmd).directory(work.toFile()).redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("openssl " + String.join(" ", args) + " failed: " + out);
        }
    }
}
