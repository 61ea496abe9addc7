package org.vsbridge.vhost.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;

/**
 * What this process holds, read from /proc/self: open fds by kind (memfd, eventfd, named unix socket, other) and
 * memfd mappings. Leak tests take a snapshot before and after a fault and compare; the JVM's own fds and mappings
 * (jars, code cache, an unnamed socket glibc may open for a user lookup) are in "other" and not compared exactly.
 * {@code sockets} counts unix sockets with a path: a server's listeners and every connection it accepted.
 */
public record ProcessResources(int fds, int memfds, int eventfds, int sockets, int memfdMappings) {

    public static ProcessResources now() throws IOException {
        int fds = 0;
        int memfds = 0;
        int eventfds = 0;
        int sockets = 0;
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            for (final Path p : (Iterable<Path>) s::iterator) {
                final String target;
                try {
                    target = Files.readSymbolicLink(p).toString();
                } catch (final IOException e) {
                    continue; // the fd of the directory listing itself, closed meanwhile
                }
                fds++;
                if (target.startsWith("/memfd:")) {
                    memfds++;
                } else if (target.contains("[eventfd]")) {
                    eventfds++;
                } else if (target.startsWith("socket:") && unixSocketPath(target).startsWith("/")) {
                    sockets++;
                }
            }
        }
        int memfdMappings = 0;
        final List<String> maps = Files.readAllLines(Path.of("/proc/self/maps"));
        for (final String l : maps) {
            if (l.contains("/memfd:")) {
                memfdMappings++;
            }
        }
        return new ProcessResources(fds, memfds, eventfds, sockets, memfdMappings);
    }

    /**
     * Waits (30 s hang guard) until memfds, eventfds, sockets and memfd mappings are back to {@code before}; returns
     * the last snapshot either way, for the caller to compare and report.
     */
    public static ProcessResources awaitBackTo(final ProcessResources before) throws IOException {
        try {
            return Awaitility.await().atMost(LogCapture.TIMEOUT).pollInterval(Duration.ofMillis(20))
                .until(ProcessResources::now, now -> now.sameGuestResources(before));
        } catch (final ConditionTimeoutException e) {
            return now();
        }
    }

    /** Equal in every counted kind except the total (the JVM opens files of its own). */
    public boolean sameGuestResources(final ProcessResources o) {
        return memfds == o.memfds && eventfds == o.eventfds && sockets == o.sockets && memfdMappings == o.memfdMappings;
    }

    /** /proc/self/fd entries by target, for failure messages. */
    public static String describeFds() throws IOException {
        final TreeMap<String, Integer> kinds = new TreeMap<>();
        try (Stream<Path> s = Files.list(Path.of("/proc/self/fd"))) {
            for (final Path p : (Iterable<Path>) s::iterator) {
                try {
                    final String target = Files.readSymbolicLink(p).toString();
                    if (target.startsWith("socket:")) {
                        kinds.merge(target + " fd " + p.getFileName() + " " + unixSocketPath(target), 1, Integer::sum);
                        continue;
                    }
                    kinds.merge(target.replaceAll("\\d+", "N"), 1, Integer::sum);
                } catch (final IOException e) {
                    // closed meanwhile
                }
            }
        }
        return kinds.toString();
    }

    /** The path column of /proc/net/unix for a "socket:[inode]" target, or "" (not a unix socket, or unnamed). */
    private static String unixSocketPath(final String target) {
        final String inode = target.substring(target.indexOf('[') + 1, target.length() - 1);
        try {
            for (final String l : Files.readAllLines(Path.of("/proc/net/unix"))) {
                final String[] f = l.trim().split("\\s+");
                if (f.length >= 7 && f[6].equals(inode)) {
                    return f.length >= 8 ? f[7] : "(unnamed unix)";
                }
            }
        } catch (final IOException e) {
            return "";
        }
        return "(not unix)";
    }
}
