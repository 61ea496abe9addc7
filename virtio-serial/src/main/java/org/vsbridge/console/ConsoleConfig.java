package org.vsbridge.console;

import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The console config space, little endian as the virtio 1.x spec requires: {@code u16 cols; u16 rows;
 * u32 max_nr_ports; u32 emerg_wr}. Field order is Linux's {@code struct virtio_console_config} (cols first),
 * which is also what Linux reads on a config change.
 */
public final class ConsoleConfig {

    public static final int COLS_OFFSET = 0;
    public static final int ROWS_OFFSET = 2;
    public static final int MAX_NR_PORTS_OFFSET = 4;
    public static final int EMERG_WR_OFFSET = 8;
    /** Full size including emerg_wr; QEMU's vhost-user-test-device needs config_size=12 to match. */
    public static final int SIZE = 12;

    private ConsoleConfig() {
    }

    /** The config bytes of a device with {@code maxNrPorts} ports, cols = rows = emerg_wr = 0. */
    public static byte[] encode(final int maxNrPorts) {
        return encode(maxNrPorts, 0, 0);
    }

    /** The config bytes with port 0's console size (VIRTIO_CONSOLE_F_SIZE; read by a driver without
     *  MULTIPORT on a config change). emerg_wr always reads 0. */
    public static byte[] encode(final int maxNrPorts, final int cols, final int rows) {
        final byte[] bytes = new byte[SIZE];
        final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
        buffer.putShort(COLS_OFFSET, (short) cols, ByteOrder.LITTLE_ENDIAN);
        buffer.putShort(ROWS_OFFSET, (short) rows, ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(MAX_NR_PORTS_OFFSET, maxNrPorts, ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(EMERG_WR_OFFSET, 0, ByteOrder.LITTLE_ENDIAN);
        return bytes;
    }
}
