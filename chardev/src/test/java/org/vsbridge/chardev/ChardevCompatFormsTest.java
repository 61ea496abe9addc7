package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import org.junit.jupiter.api.Test;

/** mux=on's pair of chardevs; QEMU's -chardev has no legacy short forms, and neither has the bridge's. */
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
    }

    @Test
    void legacyShortFormsAreRefusedAsQemusChardevRefusesThem() {
        // QEMU's -chardev has no short forms (they are -serial/-monitor syntax): the first word is the backend.
        assertEquals("chardev: no id specified",
            assertThrows(ChardevException.class, () -> ChardevOptions.parse("tcp:127.0.0.1:4444")).getMessage());
        assertEquals("'tcp:127.0.0.1:4444' is not a valid char driver name", assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("tcp:127.0.0.1:4444,id=t")).getMessage());
        assertEquals("'file:/tmp/x' is not a valid char driver name", assertThrows(ChardevException.class,
            () -> ChardevOptions.parseAll("file:/tmp/x,id=f", null)).getMessage());
        assertEquals("'unix:/tmp/s' is not a valid char driver name", assertThrows(ChardevException.class,
            () -> ChardevOptions.parseAll("unix:/tmp/s,id=u", null)).getMessage());
    }

    @Test
    void reconnectInMillisecondsOnly() throws Exception {
        final ChardevBackend.Socket reconnecting = (ChardevBackend.Socket) ChardevOptions.parse(
            "socket,id=r,host=h,port=1,reconnect-ms=250").backend();
        assertEquals(250, reconnecting.reconnectMs());
        // QEMU 10.2 dropped 'reconnect' (seconds).
        assertEquals("Invalid parameter 'reconnect'", assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("socket,id=r,host=h,port=1,reconnect=2")).getMessage());
        final ChardevException authz = assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("socket,id=r,host=h,port=1,server=on,tls-authz=a"));
        assertEquals("'tls_authz' option requires 'tls_creds' option", authz.getMessage());
    }
}
