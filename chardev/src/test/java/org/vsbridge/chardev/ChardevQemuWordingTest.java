package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The parser differences QemuDifferentialTest found against QEMU 10.2, each as QEMU answers it. */
class ChardevQemuWordingTest {

    private static String cliError(final String spec) {
        return assertThrows(ChardevException.class, () -> ChardevOptions.parseAll(spec, null)).getMessage();
    }

    private static ChardevBackend.Socket socket(final String spec) throws ChardevException {
        return (ChardevBackend.Socket) ChardevOptions.parse(spec).backend();
    }

    private static long ringSize(final String spec) throws ChardevException {
        return ((ChardevBackend.Ringbuf) ChardevOptions.parse(spec).backend()).size();
    }

    @Test
    void noIdIsQemusWords() {
        assertEquals("chardev: no id specified", cliError("null"));
        assertEquals("chardev: no id specified", cliError("null,mux=on"));
        assertEquals("chardev: \"x\" missing backend", cliError("id=x"));
    }

    @Test
    void sizesAsQemuStrtosz() throws ChardevException {
        assertEquals(1024, ringSize("ringbuf,id=r,size=0x400"));
        assertEquals(512, ringSize("ringbuf,id=r,size=.5k"));
        assertEquals("Parameter 'size' expects a non-negative number below 2^64", cliError("ringbuf,id=r,size=0x1k"));
        assertEquals("Parameter 'size' expects a non-negative number below 2^64", cliError("ringbuf,id=r,size=0x"));
        assertEquals("Value '-1' is out of range for parameter 'size'", cliError("ringbuf,id=r,size=-1"));
        assertEquals("Value '-0' is out of range for parameter 'size'", cliError("ringbuf,id=r,size=-0"));
        assertEquals("Value '16E' is out of range for parameter 'size'", cliError("ringbuf,id=r,size=16E"));
        assertEquals("Value '18446744073709551616' is out of range for parameter 'size'",
            cliError("ringbuf,id=r,size=18446744073709551616"));
        // 2^63 .. 2^64-1 are sizes; the ring then says what is wrong with them.
        assertEquals("size of ringbuf chardev must be power of two",
            cliError("ringbuf,id=r,size=18446744073709551615"));
        assertTrue(cliError("ringbuf,id=r,size=8E").startsWith("size of ringbuf chardev must be at most "));
    }

    @Test
    void numbersAsQemuStrtou64() throws ChardevException {
        assertEquals(Integer.valueOf(70000 & 0xFFFF), ((SocketAddressLegacy.Inet) socket(
            "socket,id=s,host=h,port=0,server=on,wait=off,to=70000").addr()).to());
        assertEquals(Integer.valueOf(0xFFFF), ((SocketAddressLegacy.Inet) socket(
            "socket,id=s,host=h,port=0,server=on,wait=off,to=-1").addr()).to());
        assertEquals(Integer.valueOf(16), ((SocketAddressLegacy.Inet) socket(
            "socket,id=s,host=h,port=0,server=on,wait=off,to=0x10").addr()).to());
        assertEquals("Parameter 'to' expects a number", cliError("socket,id=s,host=h,port=0,server=on,to=1.5"));
        assertEquals("Value '18446744073709551616' is too large for parameter 'reconnect-ms'",
            cliError("socket,id=s,host=h,port=1,reconnect-ms=18446744073709551616"));
        // 2^63 is a number: what is wrong with it is a server's reconnect.
        assertEquals("'reconnect-ms' option is incompatible with socket in server listen mode",
            cliError("socket,id=s,host=h,port=0,server=on,wait=off,reconnect-ms=9223372036854775808"));
    }

    @Test
    void theFirstIdCounts() throws ChardevException {
        assertEquals("a", ChardevOptions.parse("null,id=a,id=b").id());
    }

    @Test
    void hubTakesChardevsZeroToThreeUpToTheFirstGap() throws ChardevException {
        assertEquals(List.of("a"),
            ((ChardevBackend.Hub) ChardevOptions.parse("hub,id=h,chardevs.0=a,chardevs.2=b").backend()).chardevs());
        assertEquals("Invalid parameter 'chardevs.4'", cliError("hub,id=h,chardevs.4=a"));
        assertEquals("Invalid parameter 'chardevs.00'", cliError("hub,id=h,chardevs.00=a"));
        assertEquals("hub: 'chardevs' list is not defined", cliError("hub,id=h,chardevs.1=a"));
        assertEquals("hub: 'chardevs' list is not defined", cliError("hub,id=h"));
    }

    @Test
    void qemu102DriverNamesOnly() {
        assertEquals("'tty' is not a valid char driver name", cliError("tty,id=t,path=/dev/ttyS0"));
        assertEquals("'parport' is not a valid char driver name", cliError("parport,id=p,path=/dev/parport0"));
        assertEquals("Invalid parameter 'reconnect'", cliError("socket,id=s,host=h,port=1,reconnect=1"));
    }

    @Test
    void socketAddresses() throws ChardevException {
        assertEquals("File descriptor named '' has not been found", cliError("socket,id=s"));
        assertEquals(new SocketAddressLegacy.Inet("127.0.0.1", "5432"),
            socket("socket,id=s,host=127.0.0.1,port=postgresql,server=on,wait=off").addr());
        assertEquals("address resolution failed for 127.0.0.1:nosuchservice: Servname not supported for ai_socktype",
            cliError("socket,id=s,host=127.0.0.1,port=nosuchservice,server=on,wait=off"));
        // A udp chardev looks the name up among UDP services (postgresql is TCP only in /etc/services).
        assertEquals("address resolution failed for 127.0.0.1:postgresql: Servname not supported for ai_socktype",
            cliError("udp,id=u,host=127.0.0.1,port=postgresql"));
        assertEquals("Failed to create a socket", cliError("socket,id=s,host=h,port=5000,to=4000,server=on,wait=off"));
        // A negative reconnect-ms (-1, or 2^64-1 wrapped) is QEMU's "do not reconnect", as 0 is.
        assertEquals(0, socket("socket,id=s,host=h,port=1,reconnect-ms=-1").reconnectMs());
    }

    @Test
    void qapiInputErrorsNameTheMemberAsQemusVisitorDoes() throws Exception {
        final ObjectMapper json = new ObjectMapper();
        final JsonNode badType = json.readTree("{\"type\":\"nosuch\",\"data\":{}}");
        final ChardevException type = assertThrows(ChardevException.class, () -> ChardevOptions.fromQapi("x", badType));
        assertEquals("Parameter 'type' does not accept value 'nosuch'", type.getMessage());
        assertTrue(type.isInput());
        final JsonNode to = json.readTree(
            "{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"inet\",\"data\":{\"host\":\"h\",\"port\":\"0\",\"to\":70000}}}}");
        assertEquals("Parameter 'to' expects uint16_t",
            assertThrows(ChardevException.class, () -> ChardevOptions.fromQapi("x", to)).getMessage());
        final JsonNode reconnect = json.readTree(
            "{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"unix\",\"data\":{\"path\":\"/x\"}},\"reconnect\":1}}");
        assertEquals("Parameter 'backend.data.reconnect' is unexpected",
            assertThrows(ChardevException.class, () -> ChardevOptions.fromQapi("x", reconnect)).getMessage());
        // Errors of creation are no input errors: chardev-add puts "Failed to add chardev 'x': " before them.
        final JsonNode ring = json.readTree("{\"type\":\"ringbuf\",\"data\":{\"size\":1000}}");
        final ChardevException size = assertThrows(ChardevException.class, () -> ChardevOptions.fromQapi("x", ring));
        assertFalse(size.isInput());
        // ... but an unexpected member is reported before them, as QEMU reads every argument first.
        final JsonNode both = json.readTree("{\"type\":\"ringbuf\",\"data\":{\"size\":1000,\"extra\":1}}");
        final ChardevException first = assertThrows(ChardevException.class, () -> ChardevOptions.fromQapi("x", both));
        assertEquals("Parameter 'backend.data.extra' is unexpected", first.getMessage());
        assertTrue(first.isInput());
    }
}
