package org.vsbridge.core.cli;

import java.nio.file.Path;
import java.util.List;

/**
 * One console device of the process: its vhost-user socket and its ports. The command line starts a new group
 * at every {@code --socket-path} after the first; {@code --max-ports} and {@code --device} apply to the group
 * they follow.
 *
 * @param maxPorts {@code max_nr_ports}, or -1 for "highest port number + 1"
 */
public record DeviceGroup(Path socketPath, List<DeviceSpec> devices, int maxPorts) {
}
