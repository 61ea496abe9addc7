package org.vsbridge.core;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.CommandLine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code --max-ports} above 127 needs more than 256 queues, which a spec frontend cannot name (8-bit queue index
 * in SET_VRING_KICK/CALL): the bridge says so once at start.
 */
class ManyPortsWarningTest {

    @TempDir
    Path dir;

    /** The WARNING lines of org.vsbridge.core while a bridge with {@code maxPorts} starts and stops. */
    private List<String> warningsAtStart(final int maxPorts) throws Exception {
        final List<String> lines = new ArrayList<>();
        final Handler handler = new Handler() {
            @Override
            public void publish(final LogRecord record) {
                if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                    synchronized (lines) {
                        lines.add(record.getMessage());
                    }
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        final Logger logger = Logger.getLogger("org.vsbridge.core");
        logger.addHandler(handler);
        try {
            final Bridge bridge = new Bridge(CommandLine.parse(new String[] {
                "--chardev", "ringbuf,id=r0", "--socket-path", dir.resolve("m" + maxPorts + ".sock").toString(),
                "--max-ports", Integer.toString(maxPorts), "--device", "virtconsole,chardev=r0"}).config(), () -> { });
            try {
                bridge.start();
            } finally {
                bridge.close();
            }
        } finally {
            logger.removeHandler(handler);
        }
        synchronized (lines) {
            return lines.stream().filter(l -> l.contains("max_nr_ports")).toList();
        }
    }

    @Test
    void upTo127PortsFitASpecFrontendAndNothingIsSaid() throws Exception {
        assertEquals(List.of(), warningsAtStart(127));
    }

    @Test
    void from128PortsOneWarningNamesTheQueueCount() throws Exception {
        final List<String> at128 = warningsAtStart(128);
        assertEquals(1, at128.size(), at128.toString());
        assertTrue(at128.get(0).contains("max_nr_ports 128 needs 258 queues"), at128.get(0));
        assertTrue(at128.get(0).contains("only 256 (127 ports)"), at128.get(0));
        final List<String> at511 = warningsAtStart(511);
        assertEquals(1, at511.size(), at511.toString());
        assertTrue(at511.get(0).contains("max_nr_ports 511 needs 1024 queues"), at511.get(0));
    }
}
