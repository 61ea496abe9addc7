package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.vsbridge.core.cli.UsageException;

class ServiceOptionsTest {

    @Test
    void serviceOptionsAreTakenOutTheRestIsLeft() throws UsageException {
        final ServiceOptions o = ServiceOptions.extract(new String[] {"--config", "/etc/x.json", "-fd=3",
            "--chardev", "null,id=n0", "--log-level", "debug", "--check-config", "--log-file=/var/log/b.log"});
        assertEquals(Path.of("/etc/x.json"), o.config());
        assertEquals(3, o.fd());
        assertTrue(o.checkConfig());
        assertTrue(o.logLevelGiven());
        assertEquals(Path.of("/var/log/b.log"), o.logFile());
        assertArrayEquals(new String[] {"--chardev", "null,id=n0", "--log-level", "debug"}, o.rest());
        assertTrue(o.partialCommandLine());
    }

    @Test
    void printCapabilitiesIgnoresEverythingElse() throws UsageException {
        final ServiceOptions o = ServiceOptions.extract(new String[] {"--bogus", "--fd", "x", "--print-capabilities"});
        assertTrue(o.printCapabilities());
        assertEquals(0, o.rest().length);
    }

    @Test
    void badValuesAreUsageErrors() {
        assertTrue(assertThrows(UsageException.class, () -> ServiceOptions.extract(new String[] {"--fd", "-1"}))
            .getMessage().contains("--fd -1"));
        assertTrue(assertThrows(UsageException.class, () -> ServiceOptions.extract(new String[] {"--config"}))
            .getMessage().contains("needs a value"));
        assertThrows(UsageException.class, () -> ServiceOptions.extract(new String[] {"--check-config=yes"}));
    }

    @Test
    void withoutServiceOptionsNothingChanges() throws UsageException {
        final ServiceOptions o = ServiceOptions.extract(new String[] {"--socket-path", "/tmp/s"});
        assertNull(o.config());
        assertEquals(-1, o.fd());
        assertFalse(o.partialCommandLine());
        assertFalse(o.logLevelGiven());
    }
}
