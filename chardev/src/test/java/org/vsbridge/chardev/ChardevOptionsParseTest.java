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
        fails("socket,id=c,path=/s,server=on,reconnect=1",
            "'reconnect' option is incompatible with socket in server listen mode");
        fails("socket,id=c,path=/s,reconnect=1,reconnect-ms=5",
            "'reconnect' and 'reconnect-ms' are mutually exclusive");
        fails("socket,id=c,path=/s,host=h,port=1", "None or one of 'path', 'fd' or 'host' option required.");
        fails("socket,id=c,host=h", "chardev: socket: no port given");
        fails("socket,id=c,host=h,port=1,delay=on,nodelay=on", "'delay' and 'nodelay' are mutually exclusive");
        fails("socket,id=c,host=h,port=1,websocket=on", "Websocket client is not implemented");
    }

    @Test
    void clientReconnectParsesButIsNotBuilt() throws ChardevException {
        assertEquals(2000, socket("socket,id=c,path=/s,reconnect=2").reconnectMs());
        assertEquals(250, socket("socket,id=c,path=/s,reconnect-ms=250").reconnectMs());
    }

    @Test
    void commonErrors() {
        fails("socket,id=c0,path=/s,bogus=1", "Invalid parameter 'bogus'");
        fails("socket,path=/s,server=on", "Parameter 'id' is missing");
        fails("null,id=1abc", "Parameter 'id' expects an identifier");
        fails("bogus,id=x", "'bogus' is not a valid char driver name");
        fails("tcp,id=x", "'tcp' is not a valid char driver name");
        fails("id=x,path=/s", "chardev: \"x\" missing backend");
        fails("socket,id=c,host=h,port=1,reconnect=soon", "Parameter 'reconnect' expects a number");
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
        assertEquals(new ChardevBackend.Serial("/dev/ttyS0"), ChardevOptions.parse("tty,id=t,path=/dev/ttyS0").backend());
        assertEquals(new ChardevBackend.Parallel("/dev/parport0"),
            ChardevOptions.parse("parport,id=p,path=/dev/parport0").backend());
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
    void legacyShortForms() throws ChardevException {
        final ChardevOptions tcp = ChardevOptions.parse("tcp:127.0.0.1:4444,server=on,wait=off", "serial0");
        assertEquals("serial0", tcp.id());
        final ChardevBackend.Socket s = (ChardevBackend.Socket) tcp.backend();
        assertEquals(new SocketAddressLegacy.Inet("127.0.0.1", "4444"), s.addr());
        assertTrue(s.server());
        assertFalse(s.waitForClient());

        final ChardevBackend.Socket anyHost = (ChardevBackend.Socket) ChardevOptions.parse("tcp::4444,server,nowait",
            "s").backend();
        assertEquals(new SocketAddressLegacy.Inet("", "4444"), anyHost.addr());
        assertTrue(anyHost.server());

        final ChardevBackend.Socket unix = (ChardevBackend.Socket) ChardevOptions.parse(
            "unix:/tmp/s,server=on,wait=off", "u").backend();
        assertEquals(new SocketAddressLegacy.Unix("/tmp/s"), unix.addr());
        assertTrue(unix.server());
        assertFalse(unix.waitForClient());
        assertFalse(((ChardevBackend.Socket) ChardevOptions.parse("unix:/tmp/s", "u").backend()).server());

        assertEquals(new ChardevBackend.File("/tmp/out,x", null, false),
            ChardevOptions.parse("file:/tmp/out,x", "f").backend());
        assertEquals(new ChardevBackend.Null(), ChardevOptions.parse("null", "n").backend());
        assertEquals(new ChardevBackend.Stdio(true), ChardevOptions.parse("stdio", "s").backend());
        assertEquals(new ChardevBackend.Serial("/dev/ttyS1"), ChardevOptions.parse("/dev/ttyS1", "t").backend());
        assertTrue(((ChardevBackend.Socket) ChardevOptions.parse("telnet::23,server=on,wait=off", "t").backend())
            .telnet());

        // With a default id the -chardev syntax still works, and its own id wins.
        assertEquals("mine", ChardevOptions.parse("null,id=mine", "n").id());
        assertEquals("n", ChardevOptions.parse("null,logfile=/x", "n").id());

        // Without one, a short form has no id.
        fails("null", "Parameter 'id' is missing");
        final ChardevException e = assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("tcp:nohostport", "x"));
        assertEquals("'tcp:nohostport' is not a valid char driver", e.getMessage());
        final ChardevException wait = assertThrows(ChardevException.class,
            () -> ChardevOptions.parse("tcp:localhost:4444,wait=off", "x"));
        assertEquals("'wait' option is incompatible with socket in client connect mode", wait.getMessage());
    }

    @Test
    void hubIndexBeyondAnIntIsAnUnknownParameterAsInQemu() {
        // Found by CI fuzzing: the index went to Integer.parseInt unchecked (a NumberFormatException).
        fails("hub,id=h,chardevs.0=a,chardevs.155555555555555555555=b",
            "Invalid parameter 'chardevs.155555555555555555555'");
        fails("hub,id=h,chardevs.0=a,chardevs.2147483648=b", "Invalid parameter 'chardevs.2147483648'");
    }

    @Test
    void reconnectSecondsThatOverflowMillisecondsAreRefused() throws ChardevException {
        // reconnect * 1000 used to throw an ArithmeticException (QEMU 10.2 has no 'reconnect' any more).
        assertEquals(9223372036854775000L,
            socket("socket,id=c,host=h,port=1,reconnect=9223372036854775").reconnectMs());
        fails("socket,id=c,host=h,port=1,reconnect=9223372036854776",
            "'reconnect' must be at most 9223372036854775 seconds");
        fails("socket,id=c,host=h,port=1,reconnect=9223372036854775807",
            "'reconnect' must be at most 9223372036854775 seconds");
    }

    @Test
    void toBeyondTheLastPortIsRefused() throws ChardevException {
        // 'to' was kept up to Integer.MAX_VALUE; opening then walked past port 65535 into an
        // IllegalArgumentException from InetSocketAddress when no port in between would bind.
        final ChardevBackend.Socket s = socket("socket,id=c,host=h,port=1,server=on,wait=off,to=65535");
        assertEquals(65535, ((SocketAddressLegacy.Inet) s.addr()).to());
        fails("socket,id=c,host=h,port=1,server=on,wait=off,to=65536", "Parameter 'to' expects uint16_t");
        fails("socket,id=c,host=h,port=1,server=on,wait=off,to=99999999999", "Parameter 'to' expects uint16_t");
    }
}
