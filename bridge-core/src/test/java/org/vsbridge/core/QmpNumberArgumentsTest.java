package org.vsbridge.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
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

    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Bridge bridge;
    private SocketChannel channel;
    private BufferedReader in;
    private OutputStream out;

    @BeforeEach
    void start() throws Exception {
        bridge = new Bridge(CommandLine.parse(new String[] {
            "--chardev", "ringbuf,id=r0", "--chardev", "null,id=n0",
            "--qmp", "unix:" + dir.resolve("qmp.sock") + ",server=on,wait=off",
            "--socket-path", dir.resolve("a.sock").toString(), "--max-ports", "4",
            "--device", "virtconsole,chardev=r0,id=con0,cols=80,rows=25"}).config(), () -> { });
        bridge.start();
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.connect(UnixDomainSocketAddress.of(dir.resolve("qmp.sock")));
        in = new BufferedReader(new InputStreamReader(Channels.newInputStream(channel), StandardCharsets.UTF_8));
        out = Channels.newOutputStream(channel);
        assertTrue(read().has("QMP"));
        assertTrue(call("qmp_capabilities", "{}").has("return"));
    }

    @AfterEach
    void stop() throws IOException {
        channel.close();
        bridge.close();
    }

    private JsonNode read() throws Exception {
        final String line = CompletableFuture.supplyAsync(() -> {
            try {
                return in.readLine();
            } catch (final IOException e) {
                throw new RuntimeException(e);
            }
        }).get(20, TimeUnit.SECONDS);
        assertNotNull(line, "QMP connection closed");
        return JSON.readTree(line);
    }

    private JsonNode call(final String command, final String args) throws Exception {
        out.write(("{\"execute\":\"" + command + "\",\"arguments\":" + args + "}\r\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
        JsonNode reply = read();
        while (reply.has("event")) {
            reply = read();
        }
        return reply;
    }

    private String error(final String command, final String args) throws Exception {
        final JsonNode reply = call(command, args);
        assertTrue(reply.has("error"), reply.toString());
        assertEquals("GenericError", reply.get("error").get("class").asText());
        return reply.get("error").get("desc").asText();
    }

    @Test
    void ringbufReadSizeBeyondInt64IsTheWrongTypeAsInQemu() throws Exception {
        // 2^64 used to wrap to 0 ("size must be greater than zero"), 2^64 + 5 to 5.
        assertEquals("Invalid parameter type for 'size', expected: integer",
            error("ringbuf-read", "{\"device\":\"r0\",\"size\":18446744073709551616}"));
        assertEquals("Invalid parameter type for 'size', expected: integer",
            error("ringbuf-read", "{\"device\":\"r0\",\"size\":18446744073709551621}"));
    }

    @Test
    void deviceAddNrBeyondInt64IsRefusedNotWrapped() throws Exception {
        // 2^64 + 1 used to become port 1.
        assertEquals("Property 'virtserialport.nr' doesn't take value '18446744073709551617'", error("device_add",
            "{\"driver\":\"virtserialport\",\"chardev\":\"n0\",\"id\":\"p\",\"nr\":18446744073709551617}"));
        assertEquals("Property 'virtconsole.cols' doesn't take value '18446744073709551696'", error("device_add",
            "{\"driver\":\"virtconsole\",\"chardev\":\"n0\",\"id\":\"p\",\"cols\":18446744073709551696}"));
    }

    @Test
    void resizeBeyondSixteenBitsIsRefusedNotCut() throws Exception {
        // 2^32 + 132 used to become 132 columns.
        assertEquals("console size 4294967428x43 does not fit 16 bits",
            error("vserport-resize", "{\"id\":\"con0\",\"cols\":4294967428,\"rows\":43}"));
        assertEquals("console size 132x-4294967253 does not fit 16 bits",
            error("vserport-resize", "{\"id\":\"con0\",\"cols\":132,\"rows\":-4294967253}"));
        assertEquals("{}", call("vserport-resize", "{\"id\":\"con0\",\"cols\":132,\"rows\":43}").get("return")
            .toString());
    }
}
