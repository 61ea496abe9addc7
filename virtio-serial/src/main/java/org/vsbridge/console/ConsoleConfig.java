package org.vsbridge.console;

import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * The console config space, little endian as the virtio 1.x spec requires: {@code u16 cols; u16 rows;
 * u32 max_nr_ports; u32 emerg_wr}. Field order is Linux's {@code struct virtio_console_config} (cols first);
 * both are reported as 0 like QEMU does, so the disputed order does not matter here.
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
        final byte[] bytes = new byte[SIZE];
        final UnsafeBuffer buffer = new UnsafeBuffer(bytes);
        buffer.putShort(COLS_OFFSET, (short) 0, ByteOrder.LITTLE_ENDIAN);
        buffer.putShort(ROWS_OFFSET, (short) 0, ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(MAX_NR_PORTS_OFFSET, maxNrPorts, ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(EMERG_WR_OFFSET, 0, ByteOrder.LITTLE_ENDIAN);
        return bytes;
    }
}
