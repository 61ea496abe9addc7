package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A throw-away CA and certificates for one test run, made with the openssl command (skipped without it). */
public final class TestCa {

    private TestCa() {
    }

    /**
     * Makes a CA in {@code work}, server credentials in {@code server} (CN=localhost), and client credentials in
     * {@code good} (CN=client1,O=Example) and {@code bad} (CN=intruder,O=Example), with QEMU's file names.
     */
    public static void make(final Path work, final Path server, final Path good, final Path bad) throws Exception {
        assumeTrue(Files.isExecutable(Path.of("/usr/bin/openssl")), "openssl not installed");
        openssl(work, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=vsb test CA");
        issue(work, server, "server", "/CN=localhost");
        issue(work, good, "client", "/O=Example/CN=client1");
        issue(work, bad, "client", "/O=Example/CN=intruder");
    }

    private static void issue(final Path work, final Path into, final String role, final String subject)
        throws Exception {
        Files.createDirectories(into);
        final String name = into.getFileName().toString();
        openssl(work, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", subject);
        openssl(work, "x509", "-req", "-in", name + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", name + "-cert.pem", "-days", "2");
        Files.copy(work.resolve("ca-cert.pem"), into.resolve("ca-cert.pem"), StandardCopyOption.REPLACE_EXISTING);
        Files.copy(work.resolve(name + "-cert.pem"), into.resolve(role + "-cert.pem"),
            StandardCopyOption.REPLACE_EXISTING);
        Files.copy(work.resolve(name + "-key.pem"), into.resolve(role + "-key.pem"),
            StandardCopyOption.REPLACE_EXISTING);
    }

    private static void openssl(final Path work, final String... args) throws Exception {
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
