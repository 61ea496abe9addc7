package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** The guest's kernel and initramfs, built (once, then cached) by {@code src/test/guest/build-guest.sh}. */
record GuestImage(Path kernel, Path initramfs) {

    /** Runs the build script into {@code outDir}; a no-op when the guest there is current. */
    static GuestImage build(final Path moduleDir, final Path outDir) throws IOException, InterruptedException {
        final Path script = moduleDir.resolve("src/test/guest/build-guest.sh");
        final Path log = moduleDir.resolve("target/guest-build.log");
        Files.createDirectories(outDir);
        final Process p = new ProcessBuilder("bash", script.toString(), outDir.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
        if (!p.waitFor(15, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            throw new IOException("build-guest.sh did not finish within 15 minutes; log " + log);
        }
        if (p.exitValue() != 0) {
            throw new IOException("build-guest.sh failed with status " + p.exitValue() + ":\n" + Files.readString(log));
        }
        final GuestImage image = new GuestImage(outDir.resolve("vmlinuz"), outDir.resolve("initramfs.cpio.gz"));
        if (!Files.isRegularFile(image.kernel()) || !Files.isRegularFile(image.initramfs())) {
            throw new IOException("build-guest.sh left no vmlinuz/initramfs.cpio.gz in " + outDir);
        }
        return image;
    }
}
