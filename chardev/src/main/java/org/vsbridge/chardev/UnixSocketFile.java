package org.vsbridge.chardev;

import java.nio.file.Files;
import java.nio.file.Path;

/** The file of a listening unix socket, for the servers that bind one (socket chardevs, QMP). */
public final class UnixSocketFile {

    /** Linux {@code sun_path} holds 108 bytes including the terminating NUL. */
    private static final int UNIX_PATH_MAX = 108;

    private UnixSocketFile() {
    }

    /** The one line for a unix socket that cannot be bound. */
    public static String bindFailure(final Path path, final String reason) {
        return "Failed to bind socket to " + path + ": " + reason;
    }

    /**
     * What the path alone says against binding it (too long, its directory missing or not a directory), or null.
     * Checked before start-up so that such a configuration is refused at once.
     */
    public static String whyNotBindable(final Path path) {
        if (path.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length >= UNIX_PATH_MAX) {
            return "UNIX socket path '" + path + "' is too long";
        }
        final Path dir = path.toAbsolutePath().getParent();
        if (dir != null && !Files.isDirectory(dir)) {
            return bindFailure(path, Files.exists(dir) ? "Not a directory" : "No such file or directory");
        }
        return null;
    }
}
