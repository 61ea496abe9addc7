package org.vsbridge.console;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The console's control-message handler, driven like a guest driver gone wrong: arbitrary control messages
 * (any id, event, value; short or long) on the control transmitq of a real device behind a real vhost-user
 * connection. The device must use every message, keep its control queues working, and answer a barrier.
 */
class ControlFuzzTest {

    private static ConsoleHarness harness;

    private static synchronized ConsoleHarness harness() {
        if (harness == null) {
            try {
                harness = new ConsoleHarness(Files.createTempDirectory("control-fuzz"), 4, List.of(
                    new PortSpec(0, "con0", null, true),
                    new PortSpec(1, "p1", "org.example.1", false),
                    new PortSpec(3, "p3", null, false)), 1 << 16, ConsoleHarness.LINUX_FEATURES);
                harness.probe(16);
            } catch (final IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return harness;
    }

    @FuzzTest(maxDuration = "60s")
    void messages(final FuzzedDataProvider data) throws IOException {
        final ConsoleHarness h = harness();
        for (int m = 0; m < 16 && data.remainingBytes() > 0; m++) {
            final int kind = data.consumeInt(0, 3);
            if (kind == 0) {
                // A malformed message: any length from 0 to 16 bytes of anything.
                final byte[] raw = data.consumeBytes(data.consumeInt(0, 16));
                h.postReadable(QueueLayout.CONTROL_TX, raw, 0, raw.length, true);
            } else {
                // A well-formed header with fuzzed fields, ids mostly near the configured ports.
                final int id = kind == 1 ? data.consumeInt(0, 5) : data.consumeInt();
                final int event = data.consumeInt(0, 10);
                final int value = data.consumeBoolean() ? data.consumeInt(0, 1) : data.consumeInt(0, 0xffff);
                final byte[] msg = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putInt(id)
                    .putShort((short) event).putShort((short) value).array();
                h.postReadable(QueueLayout.CONTROL_TX, msg, 0, msg.length, true);
            }
            if (data.consumeBoolean() && h.inFlight(QueueLayout.CONTROL_RX) < ConsoleHarness.RING_SIZE - 2) {
                h.postWritable(QueueLayout.CONTROL_RX, 2);
            }
        }
        h.barrier(); // every message above was used and the worker still serves the control queue
        h.collect(QueueLayout.CONTROL_TX);
        h.collect(QueueLayout.CONTROL_RX);
        assertTrue(h.inFlight(QueueLayout.CONTROL_TX) == 0, "every control message was used");
    }
}
