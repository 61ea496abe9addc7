package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.CommandLine;

/**
 * Numbers in QMP arguments beyond what the command takes: an error in the command's words, never a number wrapped
 * or cut to fit (a JSON integer beyond a long arrives as a BigInteger, whose asLong/asInt keep the low bits).
 */
class QmpNumberArgumentsTest {

    @TempDir
    Path dir;

    private QmpTestClient qmp;

    @BeforeEach
    void start() throws Exception {
        qmp = QmpTestClient.startBridge(CommandLine.parse(new String[] {
            "--chardev", "ringbuf,id=r0", "--chardev", "null,id=n0",
            "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
            "--socket-path", dir.resolve("a.sock").toString(), "--max-ports", "4",
            "--device", "virtconsole,chardev=r0,id=con0,cols=80,rows=25"}).config(), dir.resolve("qmp.sock"));
    }

    @AfterEach
    void stop() throws IOException {
        qmp.close();
    }

    @Test
    void ringbufReadSizeBeyondInt64IsTheWrongTypeAsInQemu() throws Exception {
        // 2^64 used to wrap to 0 ("size must be greater than zero"), 2^64 + 5 to 5.
        assertEquals("Invalid parameter type for 'size', expected: integer",
            qmp.error("ringbuf-read", "{\"device\":\"r0\",\"size\":18446744073709551616}"));
        assertEquals("Invalid parameter type for 'size', expected: integer",
            qmp.error("ringbuf-read", "{\"device\":\"r0\",\"size\":18446744073709551621}"));
    }

    @Test
    void deviceAddNrBeyondInt64IsRefusedNotWrapped() throws Exception {
        // 2^64 + 1 used to become port 1.
        // QEMU 10.2: beyond uint64 the number is a double, which a uint32 property refuses as not a uint64.
        assertEquals("Parameter 'nr' expects uint64", qmp.error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n0\",\"id\":\"p\",\"nr\":18446744073709551617}"));
        assertEquals("Parameter 'cols' expects uint64", qmp.error("device_add",
            "{\"driver\":\"virtconsole\",\"chardev\":\"n0\",\"id\":\"p\",\"cols\":18446744073709551696}"));
    }

    @Test
    void resizeBeyondSixteenBitsIsRefusedNotCut() throws Exception {
        // 2^32 + 132 used to become 132 columns.
        assertEquals("console size 4294967428x43 does not fit 16 bits",
            qmp.error("vserport-resize", "{\"id\":\"con0\",\"cols\":4294967428,\"rows\":43}"));
        assertEquals("console size 132x-4294967253 does not fit 16 bits",
            qmp.error("vserport-resize", "{\"id\":\"con0\",\"cols\":132,\"rows\":-4294967253}"));
        assertEquals("{}", qmp.call("vserport-resize", "{\"id\":\"con0\",\"cols\":132,\"rows\":43}").get("return")
            .toString());
    }
}
