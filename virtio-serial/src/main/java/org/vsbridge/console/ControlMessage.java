package org.vsbridge.console;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Flyweight helpers for the console control message {@code struct virtio_console_control
 * { le32 id; le16 event; le16 value; }}, optionally followed by a payload (the port name for PORT_NAME).
 * Read and written in place, no object per message.
 */
public final class ControlMessage {

    public static final int HEADER_LENGTH = 8;
    public static final int ID_OFFSET = 0;
    public static final int EVENT_OFFSET = 4;
    public static final int VALUE_OFFSET = 6;

    /** Driver to device: the driver is ready (value 1) or failed (value 0); id unused. */
    public static final int DEVICE_READY = 0;
    /** Device to driver: create port {@code id} (the spec calls it DEVICE_ADD). */
    public static final int PORT_ADD = 1;
    /** Device to driver: hot-unplug port {@code id}. */
    public static final int PORT_REMOVE = 2;
    /** Driver to device: port {@code id} is set up (value 1) or failed (value 0). */
    public static final int PORT_READY = 3;
    /** Device to driver: port {@code id} is a console (hvc) port. */
    public static final int CONSOLE_PORT = 4;
    /** Device to driver: console size changed. */
    public static final int RESIZE = 5;
    /** Both ways: port {@code id} opened (value 1) or closed (value 0) on the sender's side. */
    public static final int PORT_OPEN = 6;
    /** Device to driver: the name of port {@code id} follows the header. */
    public static final int PORT_NAME = 7;

    /** Longest port name accepted, in UTF-8 bytes; Linux posts PAGE_SIZE control buffers. */
    public static final int MAX_NAME_BYTES = 1024;

    private ControlMessage() {
    }

    public static int id(final DirectBuffer buffer, final int offset) {
        return buffer.getInt(offset + ID_OFFSET, ByteOrder.LITTLE_ENDIAN);
    }

    public static int event(final DirectBuffer buffer, final int offset) {
        return buffer.getShort(offset + EVENT_OFFSET, ByteOrder.LITTLE_ENDIAN) & 0xFFFF;
    }

    public static int value(final DirectBuffer buffer, final int offset) {
        return buffer.getShort(offset + VALUE_OFFSET, ByteOrder.LITTLE_ENDIAN) & 0xFFFF;
    }

    /** Write the 8-byte header at {@code offset}; returns {@link #HEADER_LENGTH}. */
    public static int encode(final MutableDirectBuffer buffer, final int offset, final int id, final int event,
                             final int value) {
        buffer.putInt(offset + ID_OFFSET, id, ByteOrder.LITTLE_ENDIAN);
        buffer.putShort(offset + EVENT_OFFSET, (short) event, ByteOrder.LITTLE_ENDIAN);
        buffer.putShort(offset + VALUE_OFFSET, (short) value, ByteOrder.LITTLE_ENDIAN);
        return HEADER_LENGTH;
    }

    /** The event's name as Linux spells it, for log lines. */
    public static String eventName(final int event) {
        switch (event) {
            case DEVICE_READY:
                return "DEVICE_READY";
            case PORT_ADD:
                return "PORT_ADD";
            case PORT_REMOVE:
                return "PORT_REMOVE";
            case PORT_READY:
                return "PORT_READY";
            case CONSOLE_PORT:
                return "CONSOLE_PORT";
            case RESIZE:
                return "RESIZE";
            case PORT_OPEN:
                return "PORT_OPEN";
            case PORT_NAME:
                return "PORT_NAME";
            default:
                return "event " + event;
        }
    }
}
