package org.vsbridge.core.cli;

import java.nio.file.Path;
import java.util.List;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.core.qmp.QmpAddress;

/**
 * Everything the process is told to run: one device (its vhost-user socket, its ports), the chardevs,
 * the QMP monitors.
 *
 * @param maxPorts {@code max_nr_ports} of the device, or -1 for "highest port number + 1"
 */
public record BridgeConfig(Path socketPath, List<ChardevOptions> chardevs, List<DeviceSpec> devices, List<QmpAddress> qmp,
                           int maxPorts, List<org.vsbridge.core.objects.ObjectSpec> objects, VhostOptions vhost,
                           List<DeviceGroup> moreDevices) {

    /** Without {@code --object}s. */
    public BridgeConfig(final Path socketPath, final List<ChardevOptions> chardevs, final List<DeviceSpec> devices,
                        final List<QmpAddress> qmp, final int maxPorts) {
        this(socketPath, chardevs, devices, qmp, maxPorts, List.of());
    }

    /** One device group, default vhost-user options. */
    public BridgeConfig(final Path socketPath, final List<ChardevOptions> chardevs, final List<DeviceSpec> devices,
                        final List<QmpAddress> qmp, final int maxPorts,
                        final List<org.vsbridge.core.objects.ObjectSpec> objects) {
        this(socketPath, chardevs, devices, qmp, maxPorts, objects, VhostOptions.DEFAULT, List.of());
    }

    /** Every device of the process: the first group ({@link #socketPath}, {@link #devices}, {@link #maxPorts})
     *  then {@link #moreDevices}. */
    public List<DeviceGroup> deviceGroups() {
        final java.util.ArrayList<DeviceGroup> all = new java.util.ArrayList<>();
        all.add(new DeviceGroup(socketPath, devices, maxPorts));
        all.addAll(moreDevices);
        return all;
    }

    /** The embedded default: a console on stdio, QMP beside the socket, in the current directory. */
    public static BridgeConfig embeddedDefault() {
        final ChardevOptions stdio;
        try {
            stdio = ChardevOptions.parse("stdio,id=con0");
        } catch (final ChardevException e) {
            throw new IllegalStateException(e);
        }
        return new BridgeConfig(Path.of("vhost-serial-bridge.sock"),
            List.of(stdio),
            List.of(new DeviceSpec(true, "con0", null, "console0", -1)),
            List.of(QmpAddress.parse("unix:vhost-serial-bridge.qmp,server=on,wait=off")),
            -1);
    }
}
