package org.vsbridge.core.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.logging.Level;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.ChardevKind;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.console.ResizeOrder;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.CommandLine;
import org.vsbridge.core.cli.DeviceGroup;
import org.vsbridge.core.cli.DeviceSpec;
import org.vsbridge.core.cli.Limits;
import org.vsbridge.core.cli.PortPlan;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.core.cli.VhostOptions;
import org.vsbridge.core.objects.ObjectSpec;
import org.vsbridge.core.qmp.QmpAddress;

class ConfigFileTest {

    @TempDir
    Path dir;

    private static final String GOOD = """
        {
          "socket-path": "/run/vhost-serial-bridge/vm1.sock",
          "max-ports": 4,
          "log-level": "debug",
          "chardevs": [
            "socket,id=c0,path=/run/vm1-console.sock,server=on,wait=off",
            { "id": "c1", "backend": { "type": "ringbuf", "data": { "size": 4096 } } }
          ],
          "devices": [
            { "driver": "virtconsole", "chardev": "c0", "id": "con0" },
            { "driver": "virtserialport", "chardev": "c1", "name": "org.example.1", "id": "port1", "nr": 2 }
          ],
          "qmp": [ "unix:/run/vhost-serial-bridge/vm1.qmp,server=on,wait=off" ]
        }
        """;

    private Path write(final String text) throws IOException {
        final Path file = dir.resolve("vm1.json");
        Files.writeString(file, text);
        return file;
    }

    private String errorOf(final String text) throws IOException {
        final Path file = write(text);
        return assertThrows(UsageException.class, () -> ConfigFile.read(file)).getMessage();
    }

    @Test
    void aFullFileGivesTheSameModelAsTheCommandLine() throws Exception {
        final ConfigFile.Settings s = ConfigFile.read(write(GOOD));
        final BridgeConfig c = s.config();
        assertEquals(Path.of("/run/vhost-serial-bridge/vm1.sock"), c.socketPath());
        assertEquals(4, c.maxPorts());
        assertEquals(Level.FINE, s.logLevel());
        assertNull(s.logFile());
        assertEquals(List.of("c0", "c1"), c.chardevs().stream().map(ChardevOptions::id).toList());
        assertEquals(ChardevOptions.parse("socket,id=c0,path=/run/vm1-console.sock,server=on,wait=off"),
            c.chardevs().get(0));
        assertEquals(ChardevKind.RINGBUF, c.chardevs().get(1).kind());
        assertEquals(List.of(new DeviceSpec(true, "c0", null, "con0", -1),
            new DeviceSpec(false, "c1", "org.example.1", "port1", 2)), c.devices());
        assertEquals(List.of(QmpAddress.parse("unix:/run/vhost-serial-bridge/vm1.qmp")), c.qmp());
        final PortPlan plan = ConfigFile.check(c, false).get(0);
        assertEquals(List.of(0, 2), plan.ports().stream().map(p -> p.nr()).toList());
        assertEquals(4, plan.maxPorts());
    }

    @Test
    void anUnknownKeyIsNamedWithItsPosition() throws IOException {
        final String e = errorOf("{\n  \"socket-path\": \"/x\",\n  \"sockt-path\": \"/y\"\n}\n");
        assertTrue(e.startsWith(dir.resolve("vm1.json") + ":3:3: 'sockt-path': unknown key"), e);
    }

    @Test
    void anUnknownKeyInsideADeviceIsNamedByPath() throws IOException {
        final String e = errorOf("{\"devices\": [\n {\"driver\": \"virtconsole\", \"chardev\": \"c0\"},\n"
            + " {\"driver\": \"virtserialport\", \"chardev\": \"c1\", \"bus\": \"vser0.0\"}]}");
        assertTrue(e.endsWith(":3:48: 'devices[1].bus': unknown key (expected one of chardev, cols, driver, id, name, "
            + "nr, policy, rows)"), e);
    }

    @Test
    void wrongTypesAreNamed() throws IOException {
        assertTrue(errorOf("{\"max-ports\": \"4\"}").endsWith(":1:15: 'max-ports': expected an integer, got a string"));
        assertTrue(errorOf("{\"max-ports\": 4.5}").contains("'max-ports': expected an integer, got a number"));
        assertTrue(errorOf("{\"max-ports\": 9999999999}").contains("'max-ports': number out of range"));
        assertTrue(errorOf("{\"max-ports\": 600}").contains("'max-ports': expected a number from 1 to 511, got 600"));
        assertTrue(errorOf("{\"chardevs\": {}}").contains("'chardevs': expected an array, got an object"));
        assertTrue(errorOf("{\"devices\": [{\"driver\": \"virtconsole\", \"chardev\": \"c0\", \"nr\": true}]}")
            .contains("'devices[0].nr': expected an integer, got a boolean"));
        assertTrue(errorOf("{\"log-level\": \"loud\"}").contains("'log-level': 'loud': expected error"));
        assertTrue(errorOf("[]").contains("the file must hold one JSON object"));
    }

    @Test
    void badChardevsCarryTheirParserMessage() throws IOException {
        final String cli = errorOf("{\"chardevs\": [\"socket,id=c0,pth=/x\"]}");
        assertTrue(cli.contains(":1:15: 'chardevs[0]': -chardev socket,id=c0,pth=/x: "), cli);
        final String qapi = errorOf("{\"chardevs\": [\n {\"id\": \"c1\", \"backend\": {\"type\": \"ringbuf\", "
            + "\"data\": {\"sise\": 1}}}]}");
        assertTrue(qapi.contains(":2:2: 'chardevs[0]': chardev 'c1': "), qapi);
        assertTrue(qapi.contains("sise"), qapi);
        assertTrue(errorOf("{\"chardevs\": [{\"backend\": {}}]}").contains("'chardevs[0].id': a non-empty string"));
        assertTrue(errorOf("{\"chardevs\": [{\"id\": \"x\", \"backend\": {}, \"opts\": 1}]}")
            .contains("'chardevs[0].opts': unknown key (expected id, backend)"));
    }

    @Test
    void malformedJsonAndDuplicateKeysArePositioned() throws IOException {
        final String syntax = errorOf("{\n  \"socket-path\": \"/x\"\n  \"max-ports\": 2\n}");
        assertTrue(syntax.startsWith(dir.resolve("vm1.json") + ":3:"), syntax);
        final String dup = errorOf("{\"max-ports\": 2,\n \"max-ports\": 3}");
        assertTrue(dup.contains(":2:") && dup.contains("max-ports"), dup);
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.read(dir.resolve("missing.json")))
            .getMessage().endsWith("missing.json: no such file"));
    }

    @Test
    void theCommandLineOverridesScalarsAndReplacesWholeLists() throws Exception {
        final BridgeConfig file = ConfigFile.load(write(GOOD));
        final BridgeConfig cli = new BridgeConfig(Path.of("/tmp/other.sock"),
            List.of(ChardevOptions.parse("null,id=n0")), List.of(), List.of(), -1);
        final BridgeConfig merged = ConfigFile.merge(file, cli);
        assertEquals(Path.of("/tmp/other.sock"), merged.socketPath());
        assertEquals(List.of("n0"), merged.chardevs().stream().map(ChardevOptions::id).toList());
        assertEquals(file.devices(), merged.devices());
        assertEquals(file.qmp(), merged.qmp());
        assertEquals(4, merged.maxPorts());
        // The file's devices now point at chardevs the command line replaced: the check says which.
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(merged, false)).getMessage()
            .contains("Property 'virtconsole.chardev' can't find value 'c0'"));

        final BridgeConfig nothing = new BridgeConfig(null, List.of(), List.of(), List.of(), -1);
        assertEquals(file, ConfigFile.merge(file, nothing));
        assertEquals(Level.INFO, ConfigFile.pick(null, Level.INFO, Level.WARNING));
        assertEquals(Level.FINE, ConfigFile.pick(Level.FINE, Level.INFO, Level.WARNING));
    }

    @Test
    void packedRingIsABooleanAndMergesOptionByOption() throws Exception {
        final BridgeConfig file = ConfigFile.load(write("{\"packed-ring\": true, \"socket-mode\": \"client\"}"));
        assertTrue(file.vhost().packedRing());
        assertTrue(file.vhost().client());
        assertFalse(ConfigFile.load(write("{\"packed-ring\": false}")).vhost().packedRing());
        assertFalse(ConfigFile.load(write("{}")).vhost().packedRing(), "default: split rings only");
        assertTrue(errorOf("{\"packed-ring\": \"on\"}").endsWith(":1:17: 'packed-ring': expected a boolean, got a string"),
            errorOf("{\"packed-ring\": \"on\"}"));
        assertTrue(errorOf("{\"packed-ring\": 1}").contains("'packed-ring': expected a boolean, got an integer"));
        assertTrue(errorOf("{\"packed-ring\": null}").contains("'packed-ring': expected a boolean, got null"));
        assertTrue(errorOf("{\"packed_ring\": true}").contains("packed-ring"), "the unknown-key error lists it");

        // --packed-ring on the command line keeps the file's other vhost options, and the other way round.
        final BridgeConfig clientFile = ConfigFile.load(write("{\"socket-mode\": \"client\", \"reconnect-ms\": 50}"));
        final BridgeConfig cli = CommandLine.parse(new String[] {"--packed-ring"}, true).config();
        final VhostOptions merged = ConfigFile.merge(clientFile, cli).vhost();
        assertTrue(merged.packedRing());
        assertTrue(merged.client());
        assertEquals(50, merged.reconnectMs());
        final BridgeConfig resize = CommandLine.parse(new String[] {"--resize-order", "cols-rows"}, true).config();
        final VhostOptions merged2 = ConfigFile.merge(file, resize).vhost();
        assertTrue(merged2.packedRing(), "the file's packed-ring stays");
        assertEquals(ResizeOrder.COLS_ROWS, merged2.resizeOrder());
    }

    @Test
    void checkNeedsASocketAndPortsAndAValidPlan() throws Exception {
        final BridgeConfig noSocket = new BridgeConfig(null, List.of(ChardevOptions.parse("null,id=n0")),
            List.of(new DeviceSpec(true, "n0", null, null, -1)), List.of(), -1);
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(noSocket, false)).getMessage()
            .startsWith("no vhost-user socket"));
        assertEquals(1, ConfigFile.check(noSocket, true).get(0).maxPorts());
        final BridgeConfig noPorts = new BridgeConfig(Path.of("/x"), List.of(), List.of(), List.of(), -1);
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(noPorts, false)).getMessage()
            .startsWith("no ports"));
        final BridgeConfig port0 = new BridgeConfig(Path.of("/x"), List.of(ChardevOptions.parse("null,id=n0")),
            List.of(new DeviceSpec(false, "n0", null, null, 0)), List.of(), -1);
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(port0, false)).getMessage()
            .contains("Port number 0 on virtio-serial devices reserved"));
        final BridgeConfig dupChardev = new BridgeConfig(Path.of("/x"),
            List.of(ChardevOptions.parse("null,id=n0"), ChardevOptions.parse("null,id=n0")),
            List.of(new DeviceSpec(true, "n0", null, null, -1)), List.of(), -1);
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(dupChardev, false)).getMessage()
            .contains("Chardev with id 'n0' already exists"));
    }

    @Test
    void limitsAreByteCountsCheckedAndMergedOneByOne() throws Exception {
        final BridgeConfig file = ConfigFile.load(write(
            "{\"limits\": {\"port-buffer-to-host\": 2097152, \"qmp-max-input\": 65536}}"));
        assertEquals(2 << 20, file.limits().portToHost());
        assertEquals(65536, file.limits().qmpMaxInput());
        assertEquals(Limits.DEFAULT.consoleToHost(), file.limits().consoleToHost());
        final BridgeConfig cli = CommandLine.parse(new String[] {"--limits", "port-buffer-from-host=65536"}, true)
            .config();
        final Limits merged = ConfigFile.merge(file, cli).limits();
        assertEquals(65536, merged.portFromHost(), "the command line's");
        assertEquals(2 << 20, merged.portToHost(), "the file's stays");
        assertEquals(65536, merged.qmpMaxInput(), "the file's stays");

        assertTrue(errorOf("{\"limits\": {\"port-buffer-to-host\": 100000}}")
            .contains("'limits.port-buffer-to-host': port-buffer-to-host must be a power of two"));
        assertTrue(errorOf("{\"limits\": {\"qmp-max-output\": 10}}").contains("'limits.qmp-max-output'"));
        assertTrue(errorOf("{\"limits\": {\"ring\": 4096}}").contains("'limits.ring': unknown key (expected one of "
            + "port-buffer-to-host, console-buffer-to-host"));
        assertTrue(errorOf("{\"limits\": {\"qmp-max-input\": \"1M\"}}")
            .contains("'limits.qmp-max-input': expected an integer, got a string"));
        assertTrue(errorOf("{\"limits\": [1]}").contains("'limits': expected an object"));
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--limits", "x"}, true))
            .getMessage().contains("expected NAME=BYTES"));
    }

    @Test
    void aQmpSpecOfCommasOnlyIsAnErrorNotACrash() throws Exception {
        // Found by the fuzzer in CI (ConfigFileFuzzTestInputs/load/regression-qmp-commas-only).
        assertTrue(errorOf("{\"qmp\": [\",\"]}").contains("'qmp[0]': --qmp ,: expected unix:PATH or tcp:HOST:PORT"),
            errorOf("{\"qmp\": [\",\"]}"));
        assertTrue(assertThrows(UsageException.class, () -> CommandLine.parse(new String[] {"--qmp", ",,"}, true))
            .getMessage().contains("expected unix:PATH or tcp:HOST:PORT"));
        assertEquals(QmpAddress.parse("unix:/x.qmp"), QmpAddress.parse("unix:/x.qmp,"), "a trailing comma as before");
    }

    @Test
    void reconnectInSecondsIsRefusedAsQemu102RefusesIt() throws Exception {
        // Once 'reconnect' * 1000 threw an ArithmeticException out of both chardev parsers; QEMU 10.2 has
        // dropped 'reconnect' (seconds) for 'reconnect-ms', and so has the bridge.
        final String qapi = errorOf("{\"chardevs\": [{\"id\": \"c\", \"backend\": {\"type\": \"socket\", \"data\": "
            + "{\"addr\": {\"type\": \"unix\", \"data\": {\"path\": \"/s\"}}, \"server\": false, "
            + "\"reconnect\": 9223372036854775807}}}]}");
        assertTrue(qapi.contains("'chardevs[0]': chardev 'c': Parameter 'backend.data.reconnect' is unexpected"), qapi);
        final String cli = errorOf("{\"chardevs\": [\"socket,id=c,path=/s,reconnect=9223372036854775807\"]}");
        assertTrue(cli.contains("Invalid parameter 'reconnect'"), cli);
    }

    @Test
    void objectsAreObjectStringsOrObjectAddArguments() throws Exception {
        final BridgeConfig c = ConfigFile.load(write("""
            {"objects": [
               "tls-creds-x509,id=tls0,dir=/etc/pki/vsb,endpoint=server,verify-peer=on",
               {"qom-type": "authz-list", "id": "auth0", "policy": "deny",
                "rules": [{"match": "CN=client,O=Example", "policy": "allow"}]}
             ]}
            """));
        assertEquals(List.of("tls-creds-x509", "authz-list"), c.objects().stream().map(ObjectSpec::qomType).toList());
        assertEquals(List.of("tls0", "auth0"), c.objects().stream().map(ObjectSpec::id).toList());
        assertEquals("server", c.objects().get(0).props().get("endpoint").asText());
        assertEquals("allow", c.objects().get(1).props().get("rules").get(0).get("policy").asText());
        // The same model as --object: a file's objects equal the command line's.
        final BridgeConfig cli = CommandLine.parse(new String[] {
            "--object", "tls-creds-x509,id=tls0,dir=/etc/pki/vsb,endpoint=server,verify-peer=on"}, true).config();
        assertEquals(cli.objects().get(0), c.objects().get(0));

        assertTrue(errorOf("{\"objects\": [\"authz-simple,identity=CN=x\"]}")
            .contains(":1:14: 'objects[0]': Parameter 'id' is missing"), errorOf("{\"objects\": [\"authz-simple,identity=CN=x\"]}"));
        assertTrue(errorOf("{\"objects\": [{\"id\": \"a\"}]}").contains("'objects[0]': Parameter 'qom-type' is missing"));
        assertTrue(errorOf("{\"objects\": [4]}").contains("'objects[0]': expected an --object string or a"));
        assertTrue(errorOf("{\"objects\": {}}").contains("'objects': expected an array, got an object"));

        // The command line's --object list replaces the file's.
        final BridgeConfig merged = ConfigFile.merge(c, cli);
        assertEquals(List.of("tls0"), merged.objects().stream().map(ObjectSpec::id).toList());
        assertEquals(c.objects(), ConfigFile.merge(c, new BridgeConfig(null, List.of(), List.of(), List.of(), -1))
            .objects());
    }

    private static final String TWO_DEVICES = """
        {
          "socket-path": "/run/vsb/a.sock",
          "chardevs": ["null,id=n0", "null,id=n1", "null,id=n2"],
          "devices": [{"driver": "virtconsole", "chardev": "n0"}],
          "device-groups": [
            {"socket-path": "/run/vsb/b.sock", "max-ports": 8,
             "devices": [{"driver": "virtserialport", "chardev": "n1", "name": "org.b.1"},
                         {"driver": "virtserialport", "chardev": "n2", "name": "org.b.2", "nr": 5}]}
          ]
        }
        """;

    @Test
    void deviceGroupsAreTheDevicesAfterTheFirstAsOnTheCommandLine() throws Exception {
        final BridgeConfig file = ConfigFile.load(write(TWO_DEVICES));
        final BridgeConfig cli = CommandLine.parse(new String[] {
            "--socket-path", "/run/vsb/a.sock",
            "--chardev", "null,id=n0", "--chardev", "null,id=n1", "--chardev", "null,id=n2",
            "--device", "virtconsole,chardev=n0",
            "--socket-path", "/run/vsb/b.sock", "--max-ports", "8",
            "--device", "virtserialport,chardev=n1,name=org.b.1",
            "--device", "virtserialport,chardev=n2,name=org.b.2,nr=5"}, true).config();
        assertEquals(cli.deviceGroups(), file.deviceGroups());
        final List<PortPlan> plans = ConfigFile.check(file, false);
        assertEquals(2, plans.size());
        assertEquals(List.of(1, 5), plans.get(1).ports().stream().map(p -> p.nr()).toList());
        assertEquals(8, plans.get(1).maxPorts());

        // Every group is checked, against the chardevs of the whole process.
        final String undefined = TWO_DEVICES.replace("\"chardev\": \"n2\"", "\"chardev\": \"n9\"");
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(ConfigFile.load(write(undefined)), false))
            .getMessage().contains("Property 'virtserialport.chardev' can't find value 'n9'"));
        final String shared = TWO_DEVICES.replace("\"chardev\": \"n2\"", "\"chardev\": \"n0\"");
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(ConfigFile.load(write(shared)), false))
            .getMessage().contains("Property 'virtserialport.chardev' can't take value 'n0', it's in use"));
        final String outOfRange = TWO_DEVICES.replace("\"nr\": 5", "\"nr\": 8");
        assertTrue(assertThrows(UsageException.class, () -> ConfigFile.check(ConfigFile.load(write(outOfRange)),
            false)).getMessage().contains("Out-of-range port id specified, max. allowed: 7"));

        assertTrue(errorOf("{\"device-groups\": [{\"devices\": [{\"driver\": \"virtconsole\", \"chardev\": \"n\"}]}]}")
            .contains("'device-groups[0].socket-path': required"));
        assertTrue(errorOf("{\"device-groups\": [{\"socket-path\": \"/x\"}]}")
            .contains("'device-groups[0].devices': required"));
        assertTrue(errorOf("{\"device-groups\": [{\"socket-path\": \"/x\", \"max_ports\": 2}]}")
            .contains("'device-groups[0].max_ports': unknown key (expected one of devices, max-ports, socket-path)"));
        assertTrue(errorOf("{\"device-groups\": [{\"socket-path\": \"/x\", \"devices\": [{\"driver\": \"x\"}]}]}")
            .contains("'device-groups[0].devices[0].driver': 'x' is not a valid device model name"));

        // Groups given on the command line replace the file's; otherwise the file's stay.
        final BridgeConfig oneMore = CommandLine.parse(new String[] {"--socket-path", "/run/vsb/a.sock",
            "--device", "virtconsole,chardev=n0", "--socket-path", "/run/vsb/c.sock",
            "--device", "virtserialport,chardev=n1"}, true).config();
        assertEquals(List.of(Path.of("/run/vsb/c.sock")),
            ConfigFile.merge(file, oneMore).moreDevices().stream().map(DeviceGroup::socketPath).toList());
        assertEquals(file.moreDevices(), ConfigFile.merge(file, new BridgeConfig(null, List.of(), List.of(), List.of(),
            -1)).moreDevices());
    }

    @Test
    void aSocketFromSystemdKeepsEveryOtherSetting() throws Exception {
        final BridgeConfig file = ConfigFile.load(write(TWO_DEVICES.replace("\"socket-path\": \"/run/vsb/a.sock\",",
            "\"packed-ring\": true, \"objects\": [\"authz-simple,id=a0,identity=CN=x\"],")));
        final BridgeConfig named = file.withSocketPath(Path.of("/run/vsb/inherited.sock"));
        assertEquals(Path.of("/run/vsb/inherited.sock"), named.socketPath());
        assertEquals(new BridgeConfig(file.socketPath(), named.chardevs(), named.devices(), named.qmp(),
            named.maxPorts(), named.objects(), named.vhost(), named.moreDevices(), named.limits()), file);
    }

    @Test
    void theShippedExampleIsValid() throws Exception {
        final Path example = Path.of(System.getProperty("user.dir")).resolveSibling("packaging").resolve("vm1.json");
        final ConfigFile.Settings s = ConfigFile.read(example);
        final PortPlan plan = ConfigFile.check(s.config(), false).get(0);
        assertTrue(plan.ports().size() >= 2);
    }
}
