package org.vsbridge.core.systemd;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.logging.Logger;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.libc.Proc;

/**
 * Sockets handed over by systemd socket activation (sd_listen_fds(3)): {@code LISTEN_PID} must be this process,
 * {@code LISTEN_FDS} counts fds from 3 up, {@code LISTEN_FDNAMES} names them colon-separated
 * ({@code FileDescriptorName=} in the .socket unit).
 *
 * <p>Names this process understands:
 * <ul>
 * <li>{@value #VHOST_USER}: the vhost-user socket the frontend connects to (at most one; AF_UNIX stream);</li>
 * <li>{@value #QMP}: a QMP monitor (any number; AF_UNIX or TCP stream).</li>
 * </ul>
 * A single fd whose name is not {@value #QMP} (an unnamed socket gets its unit's name) is the vhost-user
 * socket. Any other name is an error naming it, so a typo in a unit file does not go unnoticed.
 */
public final class ListenFds {

    private static final Logger LOG = Logger.getLogger(ListenFds.class.getName());
    public static final String LISTEN_PID = "LISTEN_PID";
    public static final String LISTEN_FDS = "LISTEN_FDS";
    public static final String LISTEN_FDNAMES = "LISTEN_FDNAMES";
    public static final String VHOST_USER = "vhost-user";
    public static final String QMP = "qmp";
    /** SD_LISTEN_FDS_START. */
    public static final int FIRST_FD = 3;
    /** systemd passes at most this many (its own limit on fds per service). */
    private static final int MAX_FDS = 1024;

    /** An inherited fd and its name. */
    public record NamedFd(int fd, String name) {
    }

    private static final ListenFds NONE = new ListenFds(List.of());

    private final List<NamedFd> fds;

    private ListenFds(final List<NamedFd> fds) {
        this.fds = fds;
    }

    /** No inherited sockets. */
    public static ListenFds none() {
        return NONE;
    }

    /**
     * The sockets the environment hands this process, checked (listening stream sockets of the right family)
     * and marked close-on-exec. The {@code LISTEN_*} variables are then removed from the C environment so that
     * children do not take the sockets for theirs; a child started with {@link ProcessBuilder} copies Java's
     * snapshot of the environment and must go through {@link #scrub(Map)}.
     */
    public static ListenFds fromEnvironment() throws UsageException {
        final ListenFds result = parse(System.getenv(), ProcessHandle.current().pid());
        if (System.getenv(LISTEN_FDS) != null || System.getenv(LISTEN_PID) != null) {
            Proc.unsetenv(LISTEN_PID);
            Proc.unsetenv(LISTEN_FDS);
            Proc.unsetenv(LISTEN_FDNAMES);
        }
        for (final NamedFd f : result.fds) {
            try {
                SocketFds.checkListening(f.fd(), "LISTEN_FDS fd " + f.fd() + " (" + f.name() + ")",
                    f.name().equals(VHOST_USER));
            } catch (final IOException e) {
                throw new UsageException("socket activation: " + e.getMessage());
            }
        }
        if (!result.fds.isEmpty()) {
            LOG.info("socket activation: " + result);
        }
        return result;
    }

    /** Parses the variables of {@code env} for process {@code pid}, without touching the fds. */
    public static ListenFds parse(final Map<String, String> env, final long pid) throws UsageException {
        final String listenPid = env.get(LISTEN_PID);
        final String listenFds = env.get(LISTEN_FDS);
        if (listenFds == null || listenFds.isEmpty()) {
            return NONE;
        }
        if (listenPid == null || listenPid.isEmpty()) {
            // sd_listen_fds() ignores fds without LISTEN_PID: they may have been meant for a parent.
            return NONE;
        }
        final long forPid;
        try {
            forPid = Long.parseLong(listenPid);
        } catch (final NumberFormatException e) {
            throw new UsageException("socket activation: " + LISTEN_PID + "=" + listenPid + " is not a pid");
        }
        if (forPid != pid) {
            return NONE;
        }
        final int count;
        try {
            count = Integer.parseInt(listenFds);
        } catch (final NumberFormatException e) {
            throw new UsageException("socket activation: " + LISTEN_FDS + "=" + listenFds + " is not a number");
        }
        if (count < 0 || count > MAX_FDS) {
            throw new UsageException("socket activation: " + LISTEN_FDS + "=" + listenFds + " is out of range");
        }
        final String namesValue = env.get(LISTEN_FDNAMES);
        final String[] names = namesValue == null || namesValue.isEmpty() ? new String[0] : namesValue.split(":", -1);
        if (names.length != 0 && names.length != count) {
            throw new UsageException("socket activation: " + LISTEN_FDNAMES + "=" + namesValue + " names "
                + names.length + " fd(s) but " + LISTEN_FDS + "=" + count);
        }
        final List<NamedFd> fds = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String name = names.length == 0 ? "unknown" : names[i];
            if (count == 1 && !name.equals(QMP)) {
                name = VHOST_USER;
            }
            if (!name.equals(VHOST_USER) && !name.equals(QMP)) {
                throw new UsageException("socket activation: fd " + (FIRST_FD + i) + " is named '" + name
                    + "'; expected FileDescriptorName=" + VHOST_USER + " or FileDescriptorName=" + QMP);
            }
            if (name.equals(VHOST_USER) && fds.stream().anyMatch(f -> f.name().equals(VHOST_USER))) {
                throw new UsageException("socket activation: more than one fd is named '" + VHOST_USER
                    + "'; this process serves one vhost-user socket");
            }
            fds.add(new NamedFd(FIRST_FD + i, name));
        }
        return new ListenFds(List.copyOf(fds));
    }

    /** Removes the socket-activation variables from an environment a child will get. */
    public static void scrub(final Map<String, String> env) {
        env.remove(LISTEN_PID);
        env.remove(LISTEN_FDS);
        env.remove(LISTEN_FDNAMES);
    }

    public List<NamedFd> fds() {
        return fds;
    }

    public boolean isEmpty() {
        return fds.isEmpty();
    }

    /** The vhost-user listening socket, if one was handed over. */
    public OptionalInt vhostUser() {
        for (final NamedFd f : fds) {
            if (f.name().equals(VHOST_USER)) {
                return OptionalInt.of(f.fd());
            }
        }
        return OptionalInt.empty();
    }

    /** The QMP listening sockets, in the order systemd passed them. */
    public List<Integer> qmp() {
        final List<Integer> out = new ArrayList<>();
        for (final NamedFd f : fds) {
            if (f.name().equals(QMP)) {
                out.add(f.fd());
            }
        }
        return out;
    }

    @Override
    public String toString() {
        final StringBuilder s = new StringBuilder();
        for (final NamedFd f : fds) {
            if (s.length() > 0) {
                s.append(", ");
            }
            s.append("fd ").append(f.fd()).append('=').append(f.name());
        }
        return s.length() == 0 ? "no inherited sockets" : s.toString();
    }
}
