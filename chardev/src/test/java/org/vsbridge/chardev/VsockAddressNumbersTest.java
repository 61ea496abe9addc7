package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.channel.EventLoopGroup;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The cid and port of a vsock address (chardev-add strings) are unsigned 32-bit numbers: anything else is QEMU's
 * "Failed to parse cid/port", never a number cut to 32 bits and connected to.
 */
class VsockAddressNumbersTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private EventLoopGroup group;

    @BeforeEach
    void setUp() {
        group = Transports.newEventLoopGroup(1, "vsock-numbers-test");
    }

    @AfterEach
    void tearDown() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private String error(final String cid, final String port) {
        return assertThrows(ChardevException.class, () -> new ChardevFactory(group).create(ChardevOptions.fromQapi(
            "v", JSON.readTree("{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"vsock\",\"data\":{\"cid\":\""
                + cid + "\",\"port\":\"" + port + "\"}},\"server\":false}}")))).getMessage();
    }

    @Test
    void numbersBeyond32BitsAreRefusedNotWrapped() {
        // 4294967297 used to become cid 1 (and a connect to it).
        assertEquals("Failed to parse cid '4294967297'", error("4294967297", "5555"));
        assertEquals("Failed to parse cid '-1'", error("-1", "5555"));
        assertEquals("Failed to parse cid 'host'", error("host", "5555"));
        assertEquals("Failed to parse port '4294967296'", error("1", "4294967296"));
    }
}
