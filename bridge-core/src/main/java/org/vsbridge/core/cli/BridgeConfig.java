package org.vsbridge.core.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.vsbridge.chardev.ChardevBackend;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevFactory;
import org.vsbridge.chardev.ChardevKind;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.UnixSocketFile;
import org.vsbridge.core.qmp.QmpAddress;

/**
 * Everything the process is told to run: one device (its vhost-user socket, its ports), the chardevs,
 * the QMP monitors.
 *
 * @param maxPorts {@code max_nr_ports} of the device, or -1 for "highest port number + 1"
 */
public record BridgeConfig(Path socketPath, List<ChardevOptions> chardevs, List<DeviceSpec> devices, List<QmpAddress> qmp,
                           int maxPorts, List<org.vsbridge.core.objects.ObjectSpec> objects, VhostOptions vhost,
                           List<DeviceGroup> moreDevices, Limits limits) {

    /** Without {@code --object}s. */
    public BridgeConfig(final Path socketPath, final List<ChardevOptions> chardevs, final List<DeviceSpec> devices,
                        final List<QmpAddress> qmp, final int maxPorts) {
        this(socketPath, chardevs, devices, qmp, maxPorts, List.of());
    }

    /** One device group, default vhost-user options. */
    public BridgeConfig(final Path socketPath, final List<ChardevOptions> chardevs, final List<DeviceSpec> devices,
                        final List<QmpAddress> qmp, final int maxPorts,
                        final List<org.vsbridge.core.objects.ObjectSpec> objects) {
        this(socketPath, chardevs, devices, qmp, maxPorts, objects, VhostOptions.DEFAULT, List.of(), Limits.DEFAULT);
    }

    /** Every device of the process: the first group ({@link #socketPath}, {@link #devices}, {@link #maxPorts})
     *  then {@link #moreDevices}. */
    public List<DeviceGroup> deviceGroups() {
        final java.util.ArrayList<DeviceGroup> all = new java.util.ArrayList<>();
        all.add(new DeviceGroup(socketPath, devices, maxPorts));
        all.addAll(moreDevices);
        return all;
    }

    /** The same with the first device's socket at {@code path} (a socket inherited from systemd, named by its path). */
    public BridgeConfig withSocketPath(final Path path) {
        return new BridgeConfig(path, chardevs, devices, qmp, maxPorts, objects, vhost, moreDevices, limits);
    }

    /**
     * The port plan of every device group, in {@link #deviceGroups()} order, after the checks QEMU makes when it
     * creates chardevs and devices: unique chardev ids, every port's chardev defined, a chardev used by one port in
     * the whole process unless it is a mux, and each group's numbers, names and ids as its bus allows.
     */
    public List<PortPlan> plans() throws UsageException {
        final Set<String> defined = new HashSet<>();
        for (final ChardevOptions c : chardevs) {
            if (!defined.add(c.id())) {
                throw new UsageException("Chardev with id '" + c.id() + "' already exists");
            }
        }
        final Set<String> muxes = chardevs.stream().filter(o -> o.kind() == ChardevKind.MUX).map(ChardevOptions::id)
            .collect(Collectors.toSet());
        final Set<String> used = new HashSet<>();
        final List<PortPlan> plans = new ArrayList<>();
        for (final DeviceGroup g : deviceGroups()) {
            for (final DeviceSpec d : g.devices()) {
                if (!defined.contains(d.chardev())) {
                    throw new UsageException("Property '" + d.driver() + ".chardev' can't find value '" + d.chardev()
                        + "'");
                }
                if (!used.add(d.chardev()) && !muxes.contains(d.chardev())) {
                    throw new UsageException("Property '" + d.driver() + ".chardev' can't take value '" + d.chardev()
                        + "', it's in use");
                }
            }
            plans.add(PortPlan.of(g.devices(), g.maxPorts(), muxes));
        }
        return List.copyOf(plans);
    }

    /**
     * What the configuration alone decides against starting, checked before anything is opened so that such a
     * configuration is refused (status 1) instead of failing at start-up again at every restart: chardev kinds this
     * build lacks, port numbers, unix socket paths (length, a missing directory for a socket the bridge binds),
     * {@code stdio} used by two chardevs, an emergency chardev that is not defined.
     *
     * @param firstSocketInherited the first device's vhost-user socket is a listening fd: its path is not bound
     */
    public void checkOpenable(final boolean firstSocketInherited) throws UsageException {
        String stdio = null;
        for (final ChardevOptions c : chardevs) {
            try {
                ChardevFactory.checkOpenable(c);
            } catch (final ChardevException e) {
                throw new UsageException("-chardev " + c.id() + ": " + e.getMessage());
            }
            if (c.kind() == ChardevKind.STDIO) {
                if (stdio != null) {
                    throw new UsageException("-chardev " + c.id() + ": stdio is taken by chardev '" + stdio
                        + "' already: one chardev at most may use it");
                }
                stdio = c.id();
            }
        }
        final String emergency = vhost.emergencyChardev();
        if (emergency != null && chardevs.stream().noneMatch(c -> c.id().equals(emergency))) {
            throw new UsageException("--emergency-chardev: Chardev '" + emergency + "' not found");
        }
        for (final QmpAddress q : qmp) {
            if (q.isUnix()) {
                requireBindable("QMP", Path.of(q.path()));
            }
        }
        if (vhost.client()) {
            return; // the frontend's socket: it may appear later
        }
        final List<DeviceGroup> groups = deviceGroups();
        for (int g = firstSocketInherited ? 1 : 0; g < groups.size(); g++) {
            if (groups.get(g).socketPath() != null) {
                requireBindable("vhost-user", groups.get(g).socketPath());
            }
        }
    }

    private static void requireBindable(final String what, final Path path) throws UsageException {
        final String why = UnixSocketFile.whyNotBindable(path);
        if (why != null) {
            throw new UsageException(what + ": " + why);
        }
    }

    /**
     * The embedded default: a console on stdio, QMP beside the socket, in the current directory. The console is
     * QEMU's {@code -nographic} one: {@code stdio} with {@code signal=off} (Ctrl-C is a byte for the guest) under a
     * {@code mux} whose escapes (Ctrl-A, then h, x, b, Ctrl-A) act on the bridge.
     */
    public static BridgeConfig embeddedDefault() {
        final ChardevOptions stdio;
        try {
            stdio = ChardevOptions.parse("stdio,id=con0,signal=off");
        } catch (final ChardevException e) {
            throw new IllegalStateException(e);
        }
        final ChardevOptions mux = new ChardevOptions("con0-mux", new ChardevBackend.Mux("con0"));
        return new BridgeConfig(Path.of("vhost-serial-bridge.sock"),
            List.of(stdio, mux),
            List.of(new DeviceSpec(true, mux.id(), null, "console0", -1)),
            List.of(QmpAddress.parse("unix:vhost-serial-bridge.qmp,server=on,wait=off")),
            -1);
    }
}
