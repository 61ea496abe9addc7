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
                           int maxPorts) {

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
