package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class ControlOutboxTest {

    @Test
    void keepsOrderAcrossWrapAround() {
        final ControlOutbox outbox = new ControlOutbox(3);
        assertEquals(4, outbox.capacity());
        int next = 0;
        int expected = 0;
        for (int round = 0; round < 10; round++) {
            while (outbox.offer(next, ControlMessage.PORT_ADD, next & 1)) {
                next++;
            }
            assertEquals(4, outbox.size());
            for (int i = 0; i < 3; i++) {
                assertEquals(expected, outbox.headId());
                assertEquals(ControlMessage.PORT_ADD, outbox.headEvent());
                assertEquals(expected & 1, outbox.headValue());
                outbox.removeHead();
                expected++;
            }
        }
        assertEquals(10, outbox.overflowed());
    }

    @Test
    void refusesWhenFullAndClearsOnReset() {
        final ControlOutbox outbox = new ControlOutbox(256);
        for (int i = 0; i < 256; i++) {
            assertTrue(outbox.offer(i, ControlMessage.PORT_OPEN, 1));
        }
        assertFalse(outbox.offer(256, ControlMessage.PORT_OPEN, 1));
        assertEquals(1, outbox.overflowed());
        assertEquals(256, outbox.clear());
        assertTrue(outbox.isEmpty());
        assertTrue(outbox.offer(7, ControlMessage.PORT_NAME, 1));
        assertEquals(7, outbox.headId());
        assertEquals(ControlMessage.PORT_NAME, outbox.headEvent());
    }
}
