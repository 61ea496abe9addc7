package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

class ControlMessageTest {

    @Test
    void encodesLittleEndianHeader() {
        final UnsafeBuffer buffer = new UnsafeBuffer(new byte[ControlMessage.HEADER_LENGTH]);
        assertEquals(8, ControlMessage.encode(buffer, 0, 0x01020304, ControlMessage.PORT_OPEN, 1));
        assertArrayEquals(new byte[] {4, 3, 2, 1, 6, 0, 1, 0}, buffer.byteArray());
    }

    @Test
    void decodesWhatLinuxSendsForDeviceReady() {
        // Linux: DEVICE_READY with id 0xFFFFFFFF (unused) and value 1.
        final byte[] wire = {(byte) 0xFF, (byte) 0xFF, (byte) 0xFF, (byte) 0xFF, 0, 0, 1, 0};
        final UnsafeBuffer buffer = new UnsafeBuffer(wire);
        assertEquals(-1, ControlMessage.id(buffer, 0));
        assertEquals(ControlMessage.DEVICE_READY, ControlMessage.event(buffer, 0));
        assertEquals(1, ControlMessage.value(buffer, 0));
    }

    @Test
    void roundTripsAtAnOffsetAndKeepsSixteenBitFieldsUnsigned() {
        final UnsafeBuffer buffer = new UnsafeBuffer(new byte[32]);
        ControlMessage.encode(buffer, 11, 510, 0xFFFE, 0x8001);
        assertEquals(510, ControlMessage.id(buffer, 11));
        assertEquals(0xFFFE, ControlMessage.event(buffer, 11));
        assertEquals(0x8001, ControlMessage.value(buffer, 11));
    }

    @Test
    void eventNumbersMatchLinux() {
        assertEquals(0, ControlMessage.DEVICE_READY);
        assertEquals(1, ControlMessage.PORT_ADD);
        assertEquals(2, ControlMessage.PORT_REMOVE);
        assertEquals(3, ControlMessage.PORT_READY);
        assertEquals(4, ControlMessage.CONSOLE_PORT);
        assertEquals(5, ControlMessage.RESIZE);
        assertEquals(6, ControlMessage.PORT_OPEN);
        assertEquals(7, ControlMessage.PORT_NAME);
        assertEquals("PORT_NAME", ControlMessage.eventName(7));
        assertEquals("event 99", ControlMessage.eventName(99));
    }
}
