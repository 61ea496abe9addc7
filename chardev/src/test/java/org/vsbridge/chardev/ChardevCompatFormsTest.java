package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** mux=on's pair of chardevs, and the legacy short forms of the kinds built in this version. */
class ChardevCompatFormsTest {

    @Test
    void muxOnMakesABaseAndAMux() throws Exception {
        final List<ChardevOptions> pair = ChardevOptions.parseAll("socket,id=m,path=/tmp/m.sock,server=on,wait=off,"
            + "mux=on,logfile=/tmp/m.log", null);
        assertEquals(2, pair.size());
        assertEquals("m-base", pair.get(0).id());
        assertEquals(ChardevKind.SOCKET, pair.get(0).kind());
        assertEquals("/tmp/m.log", pair.get(0).logfile(), "the log belongs to the backend");
        assertEquals(new ChardevOptions("m", new ChardevBackend.Mux("m-base")), pair.get(1));
        assertEquals(1, ChardevOptions.parseAll("null,id=n,mux=off", null).size());
        // The legacy form stdio with mon: is a monitor: refused by name.
        assertThrows(ChardevException.class, () -> ChardevOptions.parseAll("mon:stdio", "serial0"));
    }

    @Test
    void legacyShortFormsOfTheNewKinds() throws Exception {
        assertEquals(new ChardevBackend.Pty(null), ChardevOptions.parse("pty", "p").backend());
        assertEquals(new ChardevBackend.Pipe("/tmp/fifo"), ChardevOptions.parse("pipe:/tmp/fifo", "p").backend());
        assertEquals(new ChardevBackend.Serial("/dev/ttyS0"), ChardevOptions.parse("/dev/ttyS0", "s").backend());
        assertEquals(new ChardevBackend.Parallel("/dev/parport0"),
            ChardevOptions.parse("/dev/parport0", "l").backend());
        assertEquals(new ChardevBackend.Udp(new SocketAddressLegacy.Inet("10.0.0.1", "4555"),
                new SocketAddressLegacy.Inet("", "4556")),
            ChardevOptions.parse("udp:10.0.0.1:4555@:4556", "u").backend());
        final ChardevBackend.Socket telnet = (ChardevBackend.Socket) ChardevOptions.parse(
            "telnet:127.0.0.1:4444,server=on,wait=off", "t").backend();
        assertEquals(true, telnet.telnet());
        assertEquals(true, telnet.server());
        assertEquals(false, telnet.waitForClient());
        final ChardevBackend.Socket ws = (ChardevBackend.Socket) ChardevOptions.parse(
            "websocket:127.0.0.1:5000,server=on,wait=off", "w").backend();
        assertEquals(true, ws.websocket());
        final ChardevBackend.Socket unix = (ChardevBackend.Socket) ChardevOptions.parse(
            "unix:/tmp/s,server=on,nowait", "u").backend();
        assertEquals(new SocketAddressLegacy.Unix("/tmp/s"), unix.addr());
        assertEquals(false, unix.waitForClient());
        final ChardevBackend.Socket reconnecting = (ChardevBackend.Socket) ChardevOptions.parse(
            "socket,id=r,host=h,port=1,reconnect-ms=250", null).backend();
        assertEquals(250, reconnecting.reconnectMs());
        final ChardevBackend.Socket seconds = (ChardevBackend.Socket) ChardevOptions.parse(
            "socket,id=r,host=h,port=1,reconnect=2", null).backend();
        assertEquals(2000, seconds.reconnectMs());
        final ChardevException both = assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("socket,id=r,host=h,port=1,reconnect=2,reconnect-ms=5"));
        assertEquals("'reconnect' and 'reconnect-ms' are mutually exclusive", both.getMessage());
        final ChardevException authz = assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("socket,id=r,host=h,port=1,server=on,tls-authz=a"));
        assertEquals("'tls_authz' option requires 'tls_creds' option", authz.getMessage());
    }
}
