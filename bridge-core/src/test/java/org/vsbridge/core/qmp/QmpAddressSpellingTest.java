package org.vsbridge.core.qmp;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.CommandLine;
import org.vsbridge.core.config.ConfigFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** {@code --qmp} takes QEMU's boolean spellings exactly as {@code --chardev} does (QemuOpts). */
class QmpAddressSpellingTest {

    private static final QmpAddress UNIX = new QmpAddress("/run/vm1.qmp", null, 0);

    @Test
    void everyQemuSpellingOfServerNoWaitIsAccepted() {
        for (final String options : List.of(",server,nowait", ",server=on,wait=off", ",server=yes,wait=no",
            ",server=true,wait=false", ",server=y,wait=n", ",nowait,server", ",nowait", ",server", "")) {
            assertEquals(UNIX, QmpAddress.parse("unix:/run/vm1.qmp" + options), options);
        }
        assertEquals(new QmpAddress(null, "127.0.0.1", 4444), QmpAddress.parse("tcp:127.0.0.1:4444,server,nowait"));
    }

    @Test
    void flagsMixWithTheUnixExtensions() {
        assertEquals(new QmpAddress("/run/vm1.qmp", null, 0, 0600, Set.of(0, 1000)),
            QmpAddress.parse("unix:/run/vm1.qmp,server,nowait,mode=0600,uid=0:1000"));
    }

    @Test
    void aClientOrAWaitingMonitorIsRefusedInEverySpelling() {
        for (final String options : List.of(",noserver", ",server=off", ",server=no", ",server=n")) {
            assertTrue(assertThrows(IllegalArgumentException.class,
                () -> QmpAddress.parse("unix:/x" + options)).getMessage().contains("can only be a server"), options);
        }
        for (final String options : List.of(",server,wait", ",wait=on", ",wait=yes", ",wait=true", ",wait=y")) {
            assertTrue(assertThrows(IllegalArgumentException.class,
                () -> QmpAddress.parse("unix:/x" + options)).getMessage().contains("wait=on is not supported"),
                options);
        }
    }

    @Test
    void aBadBooleanOrUnknownOptionIsNamed() {
        assertEquals("--qmp unix:/x,wait=maybe: Parameter 'wait' expects 'on' or 'off'",
            assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,wait=maybe")).getMessage());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,server,telnet"))
            .getMessage().contains("unsupported option 'telnet'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QmpAddress.parse("unix:/x,nomode"))
            .getMessage().contains("mode must be octal"));
    }

    @Test
    void theCommandLineAndTheConfigFileTakeTheSameSpelling(@TempDir final Path dir) throws Exception {
        assertEquals(List.of(UNIX),
            CommandLine.parse(new String[] {"--qmp", "unix:/run/vm1.qmp,server,nowait"}, true).config().qmp());
        final Path file = dir.resolve("vm1.json");
        Files.writeString(file, "{\"qmp\": [\"unix:/run/vm1.qmp,server,nowait\"]}");
        assertEquals(List.of(UNIX), ConfigFile.load(file).qmp());
    }
}
