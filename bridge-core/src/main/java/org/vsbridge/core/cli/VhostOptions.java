package org.vsbridge.core.cli;

import org.vsbridge.console.ResizeOrder;

/**
 * How the vhost-user sockets are served and device-wide console options (the same for every device group).
 *
 * @param client           {@code --socket-mode client}: connect to a frontend that listens instead of listening
 * @param reconnectMs      client mode: wait between attempts and after a disconnect (0 = one attempt)
 * @param resizeOrder      field order of RESIZE payloads ({@code --resize-order rows-cols|cols-rows})
 * @param emergencyChardev chardev that receives emerg_wr bytes, or null for the console port's own chardev
 * @param packedRing       {@code --packed-ring}: offer VIRTIO_F_RING_PACKED, so the frontend may choose packed
 *                         virtqueues (default: split only)
 */
public record VhostOptions(boolean client, long reconnectMs, ResizeOrder resizeOrder, String emergencyChardev,
                           boolean packedRing) {

    public static final long DEFAULT_RECONNECT_MS = 1000;
    public static final VhostOptions DEFAULT =
        new VhostOptions(false, DEFAULT_RECONNECT_MS, ResizeOrder.ROWS_COLS, null, false);

    public VhostOptions withClient(final boolean on) {
        return new VhostOptions(on, reconnectMs, resizeOrder, emergencyChardev, packedRing);
    }

    public VhostOptions withReconnectMs(final long ms) {
        return new VhostOptions(client, ms, resizeOrder, emergencyChardev, packedRing);
    }

    public VhostOptions withResizeOrder(final ResizeOrder order) {
        return new VhostOptions(client, reconnectMs, order, emergencyChardev, packedRing);
    }

    public VhostOptions withEmergencyChardev(final String id) {
        return new VhostOptions(client, reconnectMs, resizeOrder, id, packedRing);
    }

    public VhostOptions withPackedRing(final boolean offer) {
        return new VhostOptions(client, reconnectMs, resizeOrder, emergencyChardev, offer);
    }

    /**
     * These options (from the command line) over {@code file}'s: each one given here, i.e. different from its
     * default, wins; the others are the file's. So {@code --packed-ring} does not drop the file's
     * {@code socket-mode}.
     */
    public VhostOptions over(final VhostOptions file) {
        return new VhostOptions(
            client != DEFAULT.client ? client : file.client,
            reconnectMs != DEFAULT.reconnectMs ? reconnectMs : file.reconnectMs,
            resizeOrder != DEFAULT.resizeOrder ? resizeOrder : file.resizeOrder,
            emergencyChardev != null ? emergencyChardev : file.emergencyChardev,
            packedRing || file.packedRing);
    }
}
