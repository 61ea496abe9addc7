package org.vsbridge.core.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class CommandLineTest {

    @Test
    void noArgumentsIsTheEmbeddedDefault() throws UsageException {
        final BridgeConfig config = CommandLine.parse(new String[0]).config();
        assertEquals(Path.of("vhost-serial-bridge.sock"), config.socketPath());
        assertEquals("con0", config.chardevs().get(0).id());
        assertTrue(config.devices().get(0).console());
        assertEquals("vhost-serial-bridge.qmp", config.qmp().get(0).path());
    }

    @Test
    void singleAndDoubleDashWithValueInlineOrNext() throws UsageException {
        final BridgeConfig config = CommandLine.parse(new String[] {
            "-socket-path", "/tmp/a.sock", "--chardev=socket,id=c1,path=/tmp/p,server=on,wait=off",
            "--device", "virtserialport,chardev=c1,name=org.a,id=port1,nr=3", "-qmp", "tcp:127.0.0.1:4444,server=on,wait=off",
            "--max-ports=8"}).config();
        assertEquals(Path.of("/tmp/a.sock"), config.socketPath());
        assertEquals("c1", config.chardevs().get(0).id());
        assertEquals(new DeviceSpec(false, "c1", "org.a", "port1", 3), config.devices().get(0));
        assertEquals(4444, config.qmp().get(0).port());
        assertEquals(8, config.maxPorts());
    }

    @Test
    void packedRingIsAFlagOffByDefault() throws UsageException {
        final String[] base = {"--socket-path", "x", "--chardev", "null,id=a", "--device", "virtconsole,chardev=a"};
        assertFalse(CommandLine.parse(base).config().vhost().packedRing());
        assertFalse(CommandLine.parse(new String[0]).config().vhost().packedRing(), "embedded default: split only");
        final String[] packed = java.util.Arrays.copyOf(base, base.length + 1);
        packed[base.length] = "--packed-ring";
        assertTrue(CommandLine.parse(packed).config().vhost().packedRing());
        packed[base.length] = "-packed-ring";
        assertTrue(CommandLine.parse(packed).config().vhost().packedRing(), "one dash, as every option");
        packed[base.length] = "--packed-ring=on";
        assertEquals("option --packed-ring takes no value (got 'on')",
            assertThrows(UsageException.class, () -> CommandLine.parse(packed)).getMessage());
        assertTrue(CommandLine.USAGE.contains("--packed-ring"));
    }

    @Test
    void badInputIsAClearError() {
        assertEquals("'virtio-foo' is not a valid device model name",
            assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--socket-path", "x",
                "--device", "virtio-foo,chardev=a"})).getMessage());
        assertEquals("Property 'virtserialport.colour' not found",
            assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--socket-path", "x",
                "--device", "virtserialport,chardev=a,colour=red"})).getMessage());
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--bogus"}))
            .getMessage().startsWith("unknown option '--bogus'"));
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--socket-path"}))
            .getMessage().contains("needs a value"));
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--socket-path", "x",
            "--device", "virtconsole,chardev=a", "--max-ports", "600"})).getMessage().contains("1 to 511"));
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--socket-path", "x",
            "--device", "virtconsole,chardev=a", "--qmp", "unix:/q,server=off"})).getMessage().contains("server"));
    }
}
