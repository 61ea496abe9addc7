package org.vsbridge.console;

/**
 * Virtqueue numbering of a virtio-console device (virtio spec, console device, "Virtqueues"): port 0 owns
 * queues 0 (receiveq, device to driver) and 1 (transmitq), the control receiveq and transmitq are 2 and 3,
 * and port N &gt;= 1 owns 2N+2 (receiveq) and 2N+3 (transmitq). Even queues are always device to driver.
 */
public final class QueueLayout {

    public static final int PORT0_RX = 0;
    public static final int PORT0_TX = 1;
    public static final int CONTROL_RX = 2;
    public static final int CONTROL_TX = 3;
    /** Largest max_nr_ports QEMU accepts: VIRTIO_QUEUE_MAX (1024) / 2 - 1. */
    public static final int MAX_PORTS = 511;
    /** Returned by {@link #portOf} for the control queues and for negative indexes. */
    public static final int NO_PORT = -1;

    private QueueLayout() {
    }

    /** Queues of a multiport device with {@code maxPorts} ports: one rx/tx pair per port plus the control pair. */
    public static int queueCount(final int maxPorts) {
        return 2 * (maxPorts + 1);
    }

    /** The receiveq (device to driver) of port {@code nr}. */
    public static int rxQueue(final int nr) {
        return nr == 0 ? PORT0_RX : 2 * nr + 2;
    }

    /** The transmitq (driver to device) of port {@code nr}. */
    public static int txQueue(final int nr) {
        return nr == 0 ? PORT0_TX : 2 * nr + 3;
    }

    /** The port a data queue belongs to, or {@link #NO_PORT} for a control queue or a negative index. */
    public static int portOf(final int queue) {
        if (queue < 0 || queue == CONTROL_RX || queue == CONTROL_TX) {
            return NO_PORT;
        }
        return queue < CONTROL_RX ? 0 : (queue - 2) / 2;
    }

    /** True for a receiveq (buffers the device fills for the driver). */
    public static boolean isRx(final int queue) {
        return (queue & 1) == 0;
    }

    public static boolean isControl(final int queue) {
        return queue == CONTROL_RX || queue == CONTROL_TX;
    }
}
