package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ChardevOptionsParseTest {

    private static ChardevBackend.Socket socket(final String spec) throws ChardevException {
        return assertInstanceOf(ChardevBackend.Socket.class, ChardevOptions.parse(spec).backend());
    }

    private static void fails(final String spec, final String message) {
        final ChardevException e = assertThrows(ChardevException.class, () -> ChardevOptions.parse(spec));
        assertEquals(message, e.getMessage(), spec);
    }

    @Test
    void unixServerWithoutWait() throws ChardevException {
        final ChardevOptions o = ChardevOptions.parse("socket,id=c0,path=/tmp/s,server=on,wait=off");
        assertEquals("c0", o.id());
        assertEquals(ChardevKind.SOCKET, o.kind());
        final ChardevBackend.Socket s = (ChardevBackend.Socket) o.backend();
        assertEquals(new SocketAddressLegacy.Unix("/tmp/s", false, true), s.addr());
        assertTrue(s.server());
        assertFalse(s.waitForClient());
        assertNull(o.logfile());
    }

    @Test
    void cliServerWaitsByDefault() throws ChardevException {
        assertTrue(socket("socket,id=c0,path=/tmp/s,server=on").waitForClient());
        assertTrue(socket("socket,id=c0,path=/tmp/s,server=on,wait=on").waitForClient());
    }

    @Test
    void cliServerDefaultsOff() throws ChardevException {
        final ChardevBackend.Socket s = socket("socket,id=c0,path=/tmp/s");
        assertFalse(s.server());
        assertFalse(s.waitForClient());
    }

    @Test
    void tcpServerWithNodelay() throws ChardevException {
        final ChardevBackend.Socket s = socket("socket,id=c1,host=127.0.0.1,port=4444,server=on,wait=off,nodelay=on");
        assertEquals(new SocketAddressLegacy.Inet("127.0.0.1", "4444"), s.addr());
        assertTrue(s.server());
        assertFalse(s.waitForClient());
        assertTrue(s.nodelay());
        assertFalse(socket("socket,id=c1,host=h,port=1").nodelay());
        assertTrue(socket("socket,id=c1,host=h,port=1,delay=off").nodelay());
    }

    @Test
    void shortFormFlags() throws ChardevException {
        final ChardevBackend.Socket s = socket("socket,id=c0,path=/tmp/s,server,nowait,nodelay");
        assertTrue(s.server());
        assertFalse(s.waitForClient());
        assertTrue(s.nodelay());
    }

    @ParameterizedTest
    @CsvSource({"on,true", "yes,true", "true,true", "y,true", "off,false", "no,false", "false,false", "n,false"})
    void boolSpellings(final String spelling, final boolean value) throws ChardevException {
        assertEquals(value, socket("socket,id=c0,path=/s,server=" + spelling).server());
        assertEquals(value, socket("socket,id=c0,path=/s,nodelay=" + spelling).nodelay());
        final ChardevBackend.File f = (ChardevBackend.File) ChardevOptions.parse("file,id=f,path=/x,append="
            + spelling).backend();
        assertEquals(value, f.append());
    }

    @Test
    void badBool() {
        fails("socket,id=c0,path=/s,server=maybe", "Parameter 'server' expects 'on' or 'off'");
    }

    @Test
    void doubledCommaEscapesAComma() throws ChardevException {
        final ChardevBackend.File f = (ChardevBackend.File) ChardevOptions.parse("file,id=f,path=/tmp/a,,b,append=on")
            .backend();
        assertEquals("/tmp/a,b", f.out());
        assertTrue(f.append());
    }

    @Test
    void socketCombinationErrors() {
        fails("socket,id=c,path=/s,wait=off", "'wait' option is incompatible with socket in client connect mode");
        fails("socket,id=c,path=/s,server=on,reconnect-ms=1",
            "'reconnect-ms' option is incompatible with socket in server listen mode");
        fails("socket,id=c,path=/s,host=h,port=1", "None or one of 'path', 'fd' or 'host' option required.");
        fails("socket,id=c,host=h", "chardev: socket: no port given");
        fails("socket,id=c,host=h,port=1,delay=on,nodelay=on", "'delay' and 'nodelay' are mutually exclusive");
        fails("socket,id=c,host=h,port=1,websocket=on", "Websocket client is not implemented");
    }

    @Test
    void clientReconnectParsesButIsNotBuilt() throws ChardevException {
        assertEquals(250, socket("socket,id=c,path=/s,reconnect-ms=250").reconnectMs());
    }

    @Test
    void commonErrors() {
        fails("socket,id=c0,path=/s,bogus=1", "Invalid parameter 'bogus'");
        fails("socket,path=/s,server=on", "chardev: no id specified");
        fails("null,id=1abc", "Parameter 'id' expects an identifier");
        fails("bogus,id=x", "'bogus' is not a valid char driver name");
        fails("tcp,id=x", "'tcp' is not a valid char driver name");
        fails("id=x,path=/s", "chardev: \"x\" missing backend");
        fails("socket,id=c,host=h,port=1,reconnect-ms=soon", "Parameter 'reconnect-ms' expects a number");
        fails("null,id=n,mux=on", "'mux=on' makes two chardevs ('n-base' and the mux 'n'): parse it with ChardevOptions.parseAll");
    }

    @Test
    void file() throws ChardevException {
        final ChardevOptions o = ChardevOptions.parse("file,id=f,path=/x,input-path=/y");
        assertEquals(new ChardevBackend.File("/x", "/y", false), o.backend());
        assertEquals(new ChardevBackend.File("/x", null, true),
            ChardevOptions.parse("file,id=f,path=/x,append=on").backend());
        fails("file,id=f", "chardev: file: no filename given");
    }

    @Test
    void nullAndStdio() throws ChardevException {
        assertEquals(new ChardevBackend.Null(), ChardevOptions.parse("null,id=n").backend());
        assertEquals(new ChardevBackend.Stdio(true), ChardevOptions.parse("stdio,id=s").backend());
        assertEquals(new ChardevBackend.Stdio(false), ChardevOptions.parse("stdio,id=s,signal=off").backend());
    }

    @Test
    void ringbufSizes() throws ChardevException {
        assertEquals(new ChardevBackend.Ringbuf(65536), ChardevOptions.parse("ringbuf,id=r").backend());
        assertEquals(new ChardevBackend.Ringbuf(65536), ChardevOptions.parse("ringbuf,id=r,size=64K").backend());
        assertEquals(new ChardevBackend.Ringbuf(65536), ChardevOptions.parse("ringbuf,id=r,size=64k").backend());
        assertEquals(new ChardevBackend.Ringbuf(1 << 20), ChardevOptions.parse("ringbuf,id=r,size=1M").backend());
        assertEquals(new ChardevBackend.Ringbuf(1 << 30), ChardevOptions.parse("ringbuf,id=r,size=1G").backend());
        assertEquals(new ChardevBackend.Ringbuf(512), ChardevOptions.parse("ringbuf,id=r,size=0.5K").backend());
        assertEquals(new ChardevBackend.Memory(4096), ChardevOptions.parse("memory,id=m,size=4096").backend());
        assertEquals(ChardevKind.MEMORY, ChardevOptions.parse("memory,id=m").kind());
        fails("ringbuf,id=r,size=1000", "size of ringbuf chardev must be power of two");
        fails("ringbuf,id=r,size=1.5K", "size of ringbuf chardev must be power of two");
        fails("ringbuf,id=r,size=lots", "Parameter 'size' expects a non-negative number below 2^64");
    }

    @Test
    void logfile() throws ChardevException {
        final ChardevOptions o = ChardevOptions.parse("null,id=n,logfile=/tmp/l,,og,logappend=on");
        assertEquals("/tmp/l,og", o.logfile());
        assertTrue(o.logappend());
        assertFalse(ChardevOptions.parse("null,id=n,logfile=/tmp/l").logappend());
    }

    @Test
    void optionsOfOtherDriversAreAcceptedLikeQemu() throws ChardevException {
        // QEMU checks names against the whole chardev option list, not per driver.
        assertEquals(new ChardevBackend.Null(), ChardevOptions.parse("null,id=n,path=/x").backend());
        fails("null,id=n,server=perhaps", "Parameter 'server' expects 'on' or 'off'");
    }

    @Test
    void laterAndDisplayKindsParseIntoTheModel() throws ChardevException {
        assertEquals(new ChardevBackend.Pty(null), ChardevOptions.parse("pty,id=p").backend());
        assertEquals(new ChardevBackend.Serial("/dev/ttyS0"),
            ChardevOptions.parse("serial,id=t,path=/dev/ttyS0").backend());
        assertEquals(new ChardevBackend.Parallel("/dev/parport0"),
            ChardevOptions.parse("parallel,id=p,path=/dev/parport0").backend());
        assertEquals(new ChardevBackend.Pipe("/tmp/p"), ChardevOptions.parse("pipe,id=p,path=/tmp/p").backend());
        assertEquals(new ChardevBackend.Udp(new SocketAddressLegacy.Inet("localhost", "5555"), null),
            ChardevOptions.parse("udp,id=u,port=5555").backend());
        assertEquals(new ChardevBackend.Mux("c0"), ChardevOptions.parse("mux,id=m,chardev=c0").backend());
        assertEquals(new ChardevBackend.Hub(List.of("a", "b")),
            ChardevOptions.parse("hub,id=h,chardevs.1=b,chardevs.0=a").backend());
        assertEquals(new ChardevBackend.Vc(null, null, 80L, 25L),
            ChardevOptions.parse("vc,id=v,cols=80,rows=25").backend());
        assertEquals(new ChardevBackend.Spicevmc("vdagent"),
            ChardevOptions.parse("spicevmc,id=s,name=vdagent").backend());
        assertEquals(new ChardevBackend.Msmouse(), ChardevOptions.parse("msmouse,id=m").backend());
        fails("pipe,id=p", "chardev: pipe: no device path given");
        fails("udp,id=u", "chardev: udp: remote port not specified");
        fails("spiceport,id=s", "chardev: spice port: no name given");
    }

    @Test
    void hubIndexBeyondAnIntIsAnUnknownParameterAsInQemu() {
        // Found by CI fuzzing: the index went to Integer.parseInt unchecked (a NumberFormatException).
        fails("hub,id=h,chardevs.0=a,chardevs.155555555555555555555=b",
            "Invalid parameter 'chardevs.155555555555555555555'");
        fails("hub,id=h,chardevs.0=a,chardevs.2147483648=b", "Invalid parameter 'chardevs.2147483648'");
    }

    @Test
    void toKeepsSixteenBitsAsQemusUint16Field() throws ChardevException {
        // 'to' was once kept up to Integer.MAX_VALUE, and opening walked past port 65535. QEMU stores the number
        // in a uint16_t: 65536 is 0, below any port but 0, so no port is left to try.
        final ChardevBackend.Socket s = socket("socket,id=c,host=h,port=1,server=on,wait=off,to=65535");
        assertEquals(65535, ((SocketAddressLegacy.Inet) s.addr()).to());
        assertEquals(0, ((SocketAddressLegacy.Inet) socket("socket,id=c,host=h,port=0,server=on,wait=off,to=65536")
            .addr()).to());
        fails("socket,id=c,host=h,port=1,server=on,wait=off,to=65536",
            "Failed to create a socket");
    }
}
