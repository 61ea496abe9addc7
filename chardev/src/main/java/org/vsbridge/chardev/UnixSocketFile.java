package org.vsbridge.chardev;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Logger;

/**
 * The file of a listening unix socket, for the servers that bind one (socket chardevs, QMP): what is at the path
 * before bind is taken over only when it is a stale socket, one that refuses connections; at close the file is
 * removed only while it is still the one this process bound. The vhost-user module keeps its own small copy.
 */
public final class UnixSocketFile {

    private static final Logger LOG = Logger.getLogger(UnixSocketFile.class.getName());

    private static final String IN_USE = "Address already in use";
    /** Linux {@code sun_path} holds 108 bytes including the terminating NUL. */
    private static final int UNIX_PATH_MAX = 108;

    /** The path holds a live socket or a file of another kind: refused, and retrying will not change it. */
    public static final class InUseException extends IOException {

        private static final long serialVersionUID = 1L;

        InUseException(final String message) {
            super(message);
        }
    }

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

    /**
     * Before bind: nothing at the path, or a stale socket there (removed now). A socket somebody listens on, or a
     * file of another kind, is left alone and refused with {@link InUseException}.
     */
    public static void removeIfStale(final Path path) throws IOException {
        final int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (final NoSuchFileException e) {
            return;
        }
        if ((mode & 0170000) != 0140000) {
            throw new InUseException(bindFailure(path, IN_USE + " (a file that is not a socket is there)"));
        }
        if (!refusesConnections(path)) {
            if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
                return; // gone meanwhile
            }
            throw new InUseException(bindFailure(path, IN_USE + " (another process is listening on it)"));
        }
        Files.deleteIfExists(path);
        LOG.info(() -> "removed stale socket " + path);
    }

    /**
     * Only a refused connect proves that nobody listens. A non-blocking connect cannot hang on a full backlog:
     * connected, pending or "try again" all mean a listener is there.
     */
    private static boolean refusesConnections(final Path path) {
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.configureBlocking(false);
            probe.connect(UnixDomainSocketAddress.of(path));
            return false;
        } catch (final ConnectException e) {
            return true;
        } catch (final IOException | RuntimeException e) {
            return false;
        }
    }

    /** Right after bind: the identity (device, inode) of the file just created, or null if it cannot be read. */
    public static Object identity(final Path path) {
        try {
            return List.of(Files.getAttribute(path, "unix:dev", LinkOption.NOFOLLOW_LINKS),
                Files.getAttribute(path, "unix:ino", LinkOption.NOFOLLOW_LINKS));
        } catch (final IOException | RuntimeException e) {
            return null;
        }
    }

    /**
     * At close: removes the file at {@code path} if it is still the one with {@code identity}; a file somebody
     * else put there since is theirs. Call it before the listening socket closes: a bound socket holds its file's
     * inode, so no other file can have that inode number meanwhile, even when this one was unlinked.
     */
    public static void removeIfOwn(final Path path, final Object identity) throws IOException {
        if (identity != null && identity.equals(identity(path))) {
            Files.deleteIfExists(path);
        }
    }
}
