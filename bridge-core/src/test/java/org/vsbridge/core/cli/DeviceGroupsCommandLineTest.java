package org.vsbridge.core.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.vsbridge.console.OutputPolicy;
import org.vsbridge.console.ResizeOrder;

/** Device groups, client socket mode and the console options of issue 4 on the command line. */
class DeviceGroupsCommandLineTest {

    private static BridgeConfig parse(final String... args) throws UsageException {
        return CommandLine.parse(args).config();
    }

    @Test
    void everySocketPathStartsADeviceGroup() throws Exception {
        final BridgeConfig c = parse("--chardev", "null,id=a", "--chardev", "null,id=b", "--chardev", "null,id=c",
            "--socket-path", "/run/a.sock", "--max-ports", "4", "--device", "virtconsole,chardev=a,cols=80,rows=25",
            "--socket-path", "/run/b.sock", "--device", "virtserialport,chardev=b,policy=hold",
            "--device", "virtserialport,chardev=c", "--max-ports", "8");
        assertEquals(Path.of("/run/a.sock"), c.socketPath());
        assertEquals(4, c.maxPorts());
        assertEquals(List.of(new DeviceSpec(true, "a", null, null, -1, 80, 25, OutputPolicy.DROP)), c.devices());
        assertEquals(1, c.moreDevices().size());
        final DeviceGroup b = c.moreDevices().get(0);
        assertEquals(Path.of("/run/b.sock"), b.socketPath());
        assertEquals(8, b.maxPorts());
        assertEquals(OutputPolicy.HOLD, b.devices().get(0).policy());
        assertEquals(OutputPolicy.DROP, b.devices().get(1).policy());
        assertEquals(2, c.deviceGroups().size());
        assertFalse(c.vhost().client());
        assertEquals(ResizeOrder.ROWS_COLS, c.vhost().resizeOrder());
        assertNull(c.vhost().emergencyChardev());
    }

    @Test
    void clientModeReconnectResizeOrderAndEmergencyChardev() throws Exception {
        final BridgeConfig c = parse("--chardev", "null,id=a", "--socket-path", "/run/fe.sock",
            "--socket-mode", "client", "--reconnect-ms", "250", "--resize-order", "cols-rows",
            "--emergency-chardev", "a", "--device", "virtconsole,chardev=a");
        assertTrue(c.vhost().client());
        assertEquals(250, c.vhost().reconnectMs());
        assertEquals(ResizeOrder.COLS_ROWS, c.vhost().resizeOrder());
        assertEquals("a", c.vhost().emergencyChardev());
    }

    @Test
    void badValuesAreRefusedWithTheReason() {
        assertEquals("--socket-mode both: expected server or client", assertThrows(UsageException.class,
            () -> parse("--socket-path", "/x", "--socket-mode", "both", "--device", "virtconsole,chardev=a"))
            .getMessage());
        assertEquals("--reconnect-ms -5: expected milliseconds >= 0", assertThrows(UsageException.class,
            () -> parse("--socket-path", "/x", "--reconnect-ms", "-5", "--device", "virtconsole,chardev=a"))
            .getMessage());
        assertTrue(assertThrows(UsageException.class, () -> parse("--socket-path", "/x",
            "--device", "virtserialport,chardev=a,cols=80")).getMessage().contains("virtconsole only"));
        assertEquals("Property 'virtserialport.policy' doesn't take value 'keep'", assertThrows(UsageException.class,
            () -> parse("--socket-path", "/x", "--device", "virtserialport,chardev=a,policy=keep")).getMessage());
        assertEquals("--socket-path /y: this device group has no --device", assertThrows(UsageException.class,
            () -> parse("--socket-path", "/x", "--device", "virtconsole,chardev=a", "--socket-path", "/y"))
            .getMessage());
    }
}
