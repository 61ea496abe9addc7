package org.vsbridge.vhost.protocol;

import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteOrder;

/**
 * Flyweight over the 12-byte vhost-user message header: {@code u32 request; u32 flags; u32 size}, host byte
 * order (little-endian on every platform this runs on). Reads and writes in place, allocates nothing.
 */
public final class MessageHeader {

    public static final int LENGTH = 12;
    public static final int VERSION = 0x1;
    public static final int VERSION_MASK = 0x3;
    public static final int FLAG_REPLY = 0x4;
    public static final int FLAG_NEED_REPLY = 0x8;
    /** Every reply carries exactly this (QEMU refuses anything else). */
    public static final int REPLY_FLAGS = VERSION | FLAG_REPLY;

    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;

    private final UnsafeBuffer buffer = new UnsafeBuffer(new byte[0]);
    private int offset;

    public MessageHeader wrap(final byte[] bytes, final int offset) {
        buffer.wrap(bytes);
        this.offset = offset;
        return this;
    }

    public int request() {
        return buffer.getInt(offset, ORDER);
    }

    public int flags() {
        return buffer.getInt(offset + 4, ORDER);
    }

    /** Payload size (unsigned on the wire; a negative int here is a huge size). */
    public int size() {
        return buffer.getInt(offset + 8, ORDER);
    }

    public boolean needReply() {
        return (flags() & FLAG_NEED_REPLY) != 0;
    }

    public int version() {
        return flags() & VERSION_MASK;
    }

    public MessageHeader request(final int request) {
        buffer.putInt(offset, request, ORDER);
        return this;
    }

    public MessageHeader flags(final int flags) {
        buffer.putInt(offset + 4, flags, ORDER);
        return this;
    }

    public MessageHeader size(final int size) {
        buffer.putInt(offset + 8, size, ORDER);
        return this;
    }
}
