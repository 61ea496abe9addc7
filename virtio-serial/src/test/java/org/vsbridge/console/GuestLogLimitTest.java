package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

class GuestLogLimitTest {

    @Test
    void aBurstOfGuestTriggeredLinesIsCutAfterTheLimit() {
        final Logger logger = Logger.getLogger("guest-log-limit-test");
        logger.setUseParentHandlers(false);
        final List<String> lines = new ArrayList<>();
        final Handler capture = new Handler() {
            @Override
            public void publish(final LogRecord record) {
                lines.add(record.getMessage());
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        logger.addHandler(capture);
        try {
            final GuestLogLimit limit = new GuestLogLimit(logger, Long.MAX_VALUE / 4);
            for (int i = 0; i < 1000; i++) {
                final int n = i;
                limit.log(Level.WARNING, () -> "line " + n);
            }
            // One window that never ends: the burst, then nothing.
            assertEquals(GuestLogLimit.BURST, lines.size());
            assertEquals("line 0", lines.get(0));
            assertEquals(1000 - GuestLogLimit.BURST, limit.suppressed());
        } finally {
            logger.removeHandler(capture);
        }
    }
}
