package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.BridgeConfig;
import org.vsbridge.core.cli.CommandLine;

/**
 * device_add / device_del / DEVICE_DELETED, query-vserport, vserport-resize and vserport-set-policy against a
 * real Bridge serving two devices (two --socket-path groups), over its QMP socket.
 */
class DeviceCommandsTest {

    @TempDir
    Path dir;

    private QmpTestClient qmp;

    @BeforeEach
    void start() throws Exception {
        final BridgeConfig config = CommandLine.parse(new String[] {
            "--chardev", "ringbuf,id=r0", "--chardev", "ringbuf,id=r1", "--chardev", "null,id=n0",
            "--chardev", "null,id=n1", "--chardev", "null,id=n2",
            "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
            "--limits", "console-buffer-to-host=2097152,port-buffer-from-host=65536",
            "--socket-path", dir.resolve("a.sock").toString(), "--max-ports", "4",
            "--device", "virtconsole,chardev=r0,id=con0,cols=80,rows=25",
            "--device", "virtserialport,chardev=r1,id=p1,name=org.test.1,policy=hold",
            "--socket-path", dir.resolve("b.sock").toString(), "--max-ports", "2",
            "--device", "virtserialport,chardev=n0,id=b1,name=org.test.b1"}).config();
        assertEquals(1, config.moreDevices().size());
        qmp = QmpTestClient.startBridge(config, dir.resolve("qmp.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        qmp.close();
    }

    private JsonNode port(final String id) throws Exception {
        for (final JsonNode p : qmp.call("query-vserport", "{}").get("return")) {
            if (p.has("id") && p.get("id").asText().equals(id)) {
                return p;
            }
        }
        return null;
    }

    @Test
    void twoDevicesEachWithTheirSocketAndPorts() throws Exception {
        assertTrue(Files.exists(dir.resolve("a.sock")));
        assertTrue(Files.exists(dir.resolve("b.sock")));
        assertEquals(2, qmp.bridge().units().size());
        final JsonNode con = port("con0");
        assertEquals("vsb0.0", con.get("bus").asText());
        assertEquals("virtconsole", con.get("driver").asText());
        assertEquals(80, con.get("cols").asInt());
        assertEquals(25, con.get("rows").asInt());
        assertEquals("hold", port("p1").get("policy").asText());
        // --limits sized the buffers between ports and chardevs.
        assertEquals(2 << 20, con.get("buffer-to-host").asInt());
        assertEquals(512 << 10, port("p1").get("buffer-to-host").asInt(), "the default");
        assertEquals(64 << 10, port("p1").get("buffer-from-host").asInt());
        final JsonNode b1 = port("b1");
        assertEquals("vsb1.0", b1.get("bus").asText());
        assertEquals(1, b1.get("nr").asInt());
        assertEquals("drop", b1.get("policy").asText());
        assertEquals(0, b1.get("bytes-dropped").asLong());
        assertFalse(b1.get("guest-open").asBoolean());
    }

    @Test
    void deviceAddAndDelWithQemusErrorsAndEvent() throws Exception {
        assertEquals("'virtio-blk' is not a valid device model name",
            qmp.error("device_add", "{\"driver\":\"virtio-blk\"}", "GenericError"));
        assertEquals("Property 'virtserialport.chardev' can't find value 'nope'",
            qmp.error("device_add", "{\"driver\":\"virtserialport\",\"chardev\":\"nope\"}", "GenericError"));
        assertEquals("Property 'virtserialport.chardev' can't take value 'r1': chardev 'r1' is already in use",
            qmp.error("device_add", "{\"driver\":\"virtserialport\",\"chardev\":\"r1\"}", "GenericError"));
        assertEquals("Duplicate device ID 'p1'",
            qmp.error("device_add", "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"id\":\"p1\"}",
                "GenericError"));
        assertEquals("virtio-serial-bus: A port already exists by name org.test.1", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"name\":\"org.test.1\"}", "GenericError"));
        assertEquals("virtio-serial-bus: A port already exists at id 1", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"nr\":1}", "GenericError"));
        assertEquals("virtio-serial-bus: Out-of-range port id specified, max. allowed: 3", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"nr\":7}", "GenericError"));
        assertEquals("Parameter 'nr' expects uint64", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"nr\":\"7\"}", "GenericError"), "QEMU 10.2 takes no string");
        assertEquals("Bus 'vsb9' not found", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"bus\":\"vsb9\"}", "GenericError"));

        assertEquals("{}", qmp.call("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"id\":\"hot\",\"name\":\"org.hot\"}")
            .get("return").toString());
        assertEquals(2, port("hot").get("nr").asInt(), "lowest free number");
        assertEquals("n1", port("hot").get("chardev").asText());
        // The second device is full after one more port (max_nr_ports 2: port 0 is for a console).
        assertEquals("virtio-serial-bus: Maximum port limit for this device reached", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n2\",\"bus\":\"vsb1.0\"}", "GenericError"));
        assertEquals("{}", qmp.call("device_add",
            "{\"driver\":\"virtconsole\",\"chardev\":\"n2\",\"bus\":\"vsb1\",\"id\":\"bcon\",\"cols\":100,\"rows\":30}")
            .get("return").toString());
        assertEquals(0, port("bcon").get("nr").asInt(), "a console takes port 0 when free");
        assertEquals("vsb1.0", port("bcon").get("bus").asText());

        assertEquals("Device 'ghost' not found", qmp.error("device_del", "{\"id\":\"ghost\"}", "DeviceNotFound"));
        assertEquals("{}", qmp.call("device_del", "{\"id\":\"hot\"}").get("return").toString());
        // The event may have come with a reply already, or come later: read on until it is there (each read
        // fails after its own time bound).
        final JsonNode deleted = qmp.awaitEvent("DEVICE_DELETED");
        assertEquals("hot", deleted.get("data").get("device").asText());
        assertEquals("/machine/peripheral/hot", deleted.get("data").get("path").asText());
        assertTrue(deleted.has("timestamp"));
        assertEquals(null, port("hot"));
        // Its chardev is free again: it can be removed or given to a new port.
        assertEquals("{}", qmp.call("device_add", "{\"driver\":\"virtserialport\",\"chardev\":\"n1\",\"id\":\"again\"}")
            .get("return").toString());
    }

    @Test
    void resizeAndPolicyByDeviceId() throws Exception {
        assertEquals("{}", qmp.call("vserport-resize", "{\"id\":\"con0\",\"cols\":132,\"rows\":43}").get("return")
            .toString());
        assertEquals(132, port("con0").get("cols").asInt());
        assertEquals(43, port("con0").get("rows").asInt());
        assertEquals("port 1 is not a console port (virtconsole)",
            qmp.error("vserport-resize", "{\"id\":\"p1\",\"cols\":1,\"rows\":1}", "GenericError"));
        assertEquals("Device 'x' not found",
            qmp.error("vserport-resize", "{\"id\":\"x\",\"cols\":1,\"rows\":1}", "DeviceNotFound"));
        assertEquals("{}", qmp.call("vserport-set-policy", "{\"id\":\"p1\",\"policy\":\"drop\"}").get("return")
            .toString());
        assertEquals("drop", port("p1").get("policy").asText());
        assertTrue(qmp.error("vserport-set-policy", "{\"id\":\"p1\",\"policy\":\"keep\"}", "GenericError")
            .contains("'drop' or 'hold'"));
        boolean listed = false;
        for (final JsonNode c : qmp.call("query-commands", "{}").get("return")) {
            listed |= c.get("name").asText().equals("device_add");
        }
        assertTrue(listed, "query-commands lists device_add");
    }
}
