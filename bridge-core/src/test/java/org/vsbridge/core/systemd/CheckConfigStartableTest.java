package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code --check-config} refuses (status 1, one clear line) what the configuration alone says can never start, and
 * a normal start refuses it the same way, with status 1 rather than 75, the status the unit restarts on.
 */
class CheckConfigStartableTest {

    @TempDir
    Path dir;

    /** The command line of each case: its chardevs, and the line the bridge must print for it. */
    private String[] args(final String which, final boolean check) {
        final List<String> a = new ArrayList<>();
        if (check) {
            a.add("--check-config");
        }
        a.addAll(List.of("--socket-path", dir.resolve("v.sock").toString(),
            "--device", "virtserialport,chardev=c0,name=a"));
        switch (which) {
            case "port" -> a.addAll(List.of("--chardev", "socket,id=c0,host=127.0.0.1,port=99999,server=on,wait=off"));
            case "stdio" -> a.addAll(List.of("--chardev", "stdio,id=c0", "--chardev", "stdio,id=c1"));
            case "directory" -> a.addAll(List.of("--chardev", "socket,id=c0,path=" + missingDirSocket()
                + ",server=on,wait=off"));
            default -> throw new IllegalArgumentException(which);
        }
        return a.toArray(String[]::new);
    }

    private Path missingDirSocket() {
        return dir.resolve("no-such-dir").resolve("c0.sock");
    }

    private String expected(final String which) {
        return switch (which) {
            case "port" -> "vhost-serial-bridge: -chardev c0: Port '99999' out of range";
            case "stdio" -> "vhost-serial-bridge: -chardev c1: stdio is taken by chardev 'c0' already: one chardev at "
                + "most may use it";
            default -> "vhost-serial-bridge: -chardev c0: Failed to bind socket to " + missingDirSocket()
                + ": No such file or directory";
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"port", "stdio", "directory"})
    void checkConfigRefusesWhatCanNeverStart(final String which) throws Exception {
        final BridgeChild check = BridgeChild.run(dir, which + "-check", args(which, true));
        assertEquals(1, check.exitStatus(), check.output());
        assertEquals(expected(which), check.output().strip());
    }

    @ParameterizedTest
    @ValueSource(strings = {"port", "stdio", "directory"})
    void aNormalStartRefusesItWithStatusOne(final String which) throws Exception {
        final BridgeChild start = BridgeChild.run(dir, which + "-start", args(which, false));
        assertEquals(1, start.exitStatus(), start.output());
        assertEquals(expected(which), start.output().strip());
    }

    @Test
    void aValidConfigurationPasses() throws Exception {
        final BridgeChild check = BridgeChild.run(dir, "valid", "--check-config",
            "--socket-path", dir.resolve("v.sock").toString(),
            "--chardev", "socket,id=c0,host=127.0.0.1,port=0,server=on,wait=off",
            "--chardev", "socket,id=c1,path=" + dir.resolve("c1.sock") + ",server=on,wait=off",
            "--chardev", "stdio,id=c2",
            "--device", "virtserialport,chardev=c0,name=a",
            "--device", "virtserialport,chardev=c1,name=b",
            "--device", "virtconsole,chardev=c2,name=c",
            "--qmp", "unix:" + dir.resolve("q.qmp") + ",server=on,wait=off");
        assertEquals(0, check.exitStatus(), check.output());
        assertTrue(check.output().startsWith("configuration OK: "), check.output());
    }
}
