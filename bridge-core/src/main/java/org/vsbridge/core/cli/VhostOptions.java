package org.vsbridge.core.cli;

import org.vsbridge.console.ResizeOrder;

/**
 * How the vhost-user sockets are served and device-wide console options (the same for every device group).
 *
 * @param client           {@code --socket-mode client}: connect to a frontend that listens instead of listening
 * @param reconnectMs      client mode: wait between attempts and after a disconnect (0 = one attempt)
 * @param resizeOrder      field order of RESIZE payloads ({@code --resize-order rows-cols|cols-rows})
 * @param emergencyChardev chardev that receives emerg_wr bytes, or null for the console port's own chardev
 */
public record VhostOptions(boolean client, long reconnectMs, ResizeOrder resizeOrder, String emergencyChardev) {

    public static final long DEFAULT_RECONNECT_MS = 1000;
    public static final VhostOptions DEFAULT = new VhostOptions(false, DEFAULT_RECONNECT_MS, ResizeOrder.ROWS_COLS, null);
}
