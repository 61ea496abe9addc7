package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.vsbridge.chardev.ByteBufs.write;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Cases where the bridge's chardevs once differed from QEMU 10.2 (answers observed with
 * {@code qemu-system-x86_64 -machine none}), with real files, ptys, FIFOs and sockets.
 */
class QemuParityTest {

    @TempDir
    Path dir;

    private ChardevRig rig;

    @BeforeEach
    void start() {
        rig = new ChardevRig("test-parity");
    }

    @AfterEach
    void stop() {
        rig.close();
    }

    private void epollOnly() {
        assumeTrue(Transports.isEpoll(rig.group), "needs the epoll transport");
    }

    // ------------------------------------------------------------------ pty path

    @Test
    void ptyNeverReplacesWhatIsAtItsPath() throws Exception {
        epollOnly();
        final Path file = dir.resolve("console");
        Files.writeString(file, "the user's file");
        final Path dangling = dir.resolve("dangling");
        Files.createSymbolicLink(dangling, dir.resolve("nowhere"));
        for (final Path p : new Path[] {file, dangling, dir}) {
            final ChardevException e = assertThrows(ChardevException.class,
                () -> rig.create("pty,id=p,path=" + p));
            assertEquals("Failed to create PTY symlink: File exists", e.getMessage(), p.toString());
        }
        assertEquals("the user's file", Files.readString(file));
        assertTrue(Files.isSymbolicLink(dangling));
        assertEquals(dir.resolve("nowhere"), Files.readSymbolicLink(dangling));

        final ChardevException noDir = assertThrows(ChardevException.class,
            () -> rig.create("pty,id=p,path=" + dir.resolve("no/such/link")));
        assertEquals("Failed to create PTY symlink: No such file or directory", noDir.getMessage());

        // A free path gets the link, and the close takes it away again (QEMU unlinks it too).
        final Path link = dir.resolve("link");
        final PtyChardev pty = (PtyChardev) rig.create("pty,id=p,path=" + link);
        assertEquals(pty.slavePath(), Files.readSymbolicLink(link).toString());
        pty.close();
        assertFalse(Files.exists(link, LinkOption.NOFOLLOW_LINKS));

        // Unlike QEMU, which unlinks the path whatever it has become, a file put there meanwhile stays.
        final PtyChardev again = (PtyChardev) rig.create("pty,id=q,path=" + link);
        Files.delete(link);
        Files.writeString(link, "put here by the user");
        again.close();
        assertEquals("put here by the user", Files.readString(link));
    }

    // ------------------------------------------------------------------ telnet roles

    @Test
    void aTelnetClientSpeaksNoTelnetAsInQemu() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            final Chardev c = rig.create("socket,id=t,host=127.0.0.1,port=" + server.getLocalPort() + ",telnet=on");
            final RecordingFrontend fe = ChardevRig.attach(c);
            try (Socket peer = server.accept()) {
                fe.expect("opened");
                assertTrue(c.filename().startsWith("telnet:127.0.0.1:"), c.filename());
                // QEMU's client sends no options: the first byte the server sees is the guest's.
                assertTrue(write(c, "x"));
                final InputStream in = peer.getInputStream();
                assertEquals('x', in.read());
                // ... and takes IAC sequences as data.
                final byte[] raw = {(byte) 255, (byte) 251, 1, 'a', (byte) 255, (byte) 255, (byte) 255, (byte) 243};
                final OutputStream out = peer.getOutputStream();
                out.write(raw);
                out.flush();
                assertArrayEquals(raw, fe.takeInput(raw.length).getBytes(StandardCharsets.ISO_8859_1));
                assertEquals("", fe.drainEvents(), "no break from IAC BREAK on a client");
            }
        }
    }

    // ------------------------------------------------------------------ serial and pipe on files

    @Test
    void serialTakesWhatIsNotATtyAsQemuDoes() throws Exception {
        epollOnly();
        final Chardev devNull = rig.create("serial,id=n,path=/dev/null");
        final RecordingFrontend nullFe = ChardevRig.attach(devNull);
        nullFe.expect("opened");
        nullFe.expect("closed"); // /dev/null: end of input at once, as QEMU's fd chardev reports it
        assertEquals("serial", devNull.filename());

        final Path file = dir.resolve("serial-in");
        Files.writeString(file, "from the file");
        final Chardev regular = rig.create("serial,id=f,path=" + file);
        final RecordingFrontend fe = ChardevRig.attach(regular);
        fe.expect("opened");
        assertEquals("from the file", fe.takeInput(13));
        fe.expect("closed");
    }

    @Test
    void pipeOnRegularFilesReadsAndWritesThemInPlace() throws Exception {
        epollOnly();
        // path.in a regular file: its bytes are input, then the end of input.
        final Path a = dir.resolve("a");
        Files.writeString(dir.resolve("a.in"), "input bytes");
        Files.writeString(dir.resolve("a.out"), "");
        final Chardev in = rig.create("pipe,id=a,path=" + a);
        final RecordingFrontend fe = ChardevRig.attach(in);
        fe.expect("opened");
        assertEquals("input bytes", fe.takeInput(11));
        fe.expect("closed");

        // path.out a regular file: written from its start, neither created nor truncated (QEMU opens it O_RDWR).
        final Path b = dir.resolve("b");
        FdChardevTest.mkfifo(dir.resolve("b.in"));
        Files.writeString(dir.resolve("b.out"), "0123456789");
        final Chardev out = rig.create("pipe,id=b,path=" + b);
        ChardevRig.attach(out);
        assertTrue(write(out, "xyz"));
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
            .until(() -> Files.readString(dir.resolve("b.out")).equals("xyz3456789"));

        // One regular file for both ways, and /dev/null, open as in QEMU.
        final Path single = dir.resolve("single");
        Files.writeString(single, "");
        assertEquals("pipe", rig.create("pipe,id=c,path=" + single).filename());
        assertEquals("pipe", rig.create("pipe,id=d,path=/dev/null").filename());
        final ChardevException missing = assertThrows(ChardevException.class,
            () -> rig.create("pipe,id=e,path=" + dir.resolve("missing")));
        assertEquals("Could not open '" + dir.resolve("missing") + "': No such file or directory",
            missing.getMessage());
    }

    // ------------------------------------------------------------------ hub and mux stacking

    @Test
    void hubsDoNotStackButAMuxMaySitOnAMux() throws Exception {
        rig.create("null,id=a");
        rig.create("hub,id=h1,chardevs.0=a");
        final ChardevException hubOfHub = assertThrows(ChardevException.class,
            () -> rig.create("hub,id=h2,chardevs.0=h1"));
        assertEquals("hub: multiplexers and hub devices can't be stacked, check chardev 'h1', chardev should not "
            + "be a hub device or have 'mux=on' enabled", hubOfHub.getMessage());

        final RingbufChardev ring = (RingbufChardev) rig.create("ringbuf,id=b");
        final MuxChardev m1 = (MuxChardev) rig.create("mux,id=m1,chardev=b");
        final MuxChardev m2 = (MuxChardev) rig.create("mux,id=m2,chardev=m1");
        assertTrue(m1.isBusy(), "the outer mux uses a frontend slot of the inner one");
        final Chardev view = m2.newFrontendView();
        ChardevRig.attach(view);
        assertTrue(write(view, "through two muxes"));
        assertEquals("through two muxes", new String(ring.read(100), StandardCharsets.ISO_8859_1));

        // A mux on a hub is fine; a hub on a mux is not; a base already in use is named as QEMU names it.
        rig.create("null,id=c");
        rig.create("hub,id=h3,chardevs.0=c");
        rig.create("mux,id=m3,chardev=h3");
        assertThrows(ChardevException.class, () -> rig.create("hub,id=h4,chardevs.0=m1"));
        rig.create("null,id=d");
        final ChardevException twice = assertThrows(ChardevException.class,
            () -> rig.create("hub,id=h5,chardevs.0=d,chardevs.1=d"));
        assertEquals("chardev 'd' is already in use", twice.getMessage());
        final ChardevException used = assertThrows(ChardevException.class, () -> rig.create("mux,id=m4,chardev=a"));
        assertEquals("chardev 'a' is already in use", used.getMessage());
        // Member by member, as QEMU: an unknown id among five members is named before the count is refused.
        for (int i = 1; i <= 5; i++) {
            rig.create("null,id=e" + i);
        }
        final ChardevException unknown = assertThrows(ChardevException.class, () -> rig.factory.create(
            ChardevOptions.fromQapi("h6", hub("e1", "zz", "e2", "e3", "e4"))));
        assertEquals("hub: chardev can't be found by id 'zz'", unknown.getMessage());
        final ChardevException five = assertThrows(ChardevException.class, () -> rig.factory.create(
            ChardevOptions.fromQapi("h7", hub("e1", "e2", "e3", "e4", "e5"))));
        assertEquals("hub: too many uses of chardevs 'h7' (maximum is 4)", five.getMessage());

        // Closing the outer mux gives its slot back.
        m2.close();
        org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
            .until(() -> !m1.isBusy());
    }

    @Test
    void udpRefusesAUnixAddressInQemusWords() throws Exception {
        final ObjectNode b = JsonNodeFactory.instance.objectNode().put("type", "udp");
        b.putObject("data").putObject("remote").put("type", "unix").putObject("data")
            .put("path", dir.resolve("u.sock").toString());
        final ChardevException e = assertThrows(ChardevException.class,
            () -> rig.factory.create(ChardevOptions.fromQapi("u", b)));
        assertEquals("socket type unsupported for datagram", e.getMessage());
    }

    /** A QMP hub backend with these members (QMP takes five; the -chardev form stops at four). */
    private static JsonNode hub(final String... members) {
        final ObjectNode b =
            JsonNodeFactory.instance.objectNode().put("type", "hub");
        final ArrayNode list = b.putObject("data").putArray("chardevs");
        for (final String m : members) {
            list.add(m);
        }
        return b;
    }

    // ------------------------------------------------------------------ empty host

    @Test
    void anEmptyHostListensOnBothFamiliesNamedAsQemuNamesItAndAClientRefusesIt() throws Exception {
        final Chardev server = rig.create("socket,id=s,host=,port=0,server=on,wait=off");
        final int port = ChardevRig.port(server);
        assertEquals("disconnected:tcp:0.0.0.0:" + port + ",server=on", server.filename());
        // QEMU listens on 0.0.0.0 and on :: for it.
        final RecordingFrontend fe = ChardevRig.attach(server);
        try (Socket v4 = new Socket("127.0.0.1", port)) {
            fe.expect("opened");
        }
        fe.expect("closed");
        if (ipv6Loopback()) {
            try (Socket v6 = new Socket("::1", port)) {
                fe.expect("opened");
            }
            fe.expect("closed");
        }
        // An IPv4 address, 0.0.0.0 included, is IPv4 only, as in QEMU.
        final Chardev v4only = rig.create("socket,id=v4,host=0.0.0.0,port=0,server=on,wait=off");
        assertEquals("disconnected:tcp:0.0.0.0:" + ChardevRig.port(v4only) + ",server=on", v4only.filename());
        if (ipv6Loopback()) {
            assertThrows(java.io.IOException.class, () -> new Socket("::1", ChardevRig.port(v4only)).close());
        }
        final ChardevException client = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=c,host=,port=" + port));
        assertEquals("address resolution failed for :" + port + ": Name or service not known", client.getMessage());
    }

    private static boolean ipv6Loopback() {
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getByName("::1"))) {
            return true;
        } catch (final java.io.IOException e) {
            return false;
        }
    }

    // ------------------------------------------------------------------ chardev-change on the same address

    @Test
    void aReplacementTakesOverTheTcpListenerOfItsPredecessor() throws Exception {
        epollOnly();
        final int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        final String where = "host=127.0.0.1,port=" + port + ",server=on,wait=off";
        final Chardev old = rig.create("socket,id=s," + where);
        final Chardev next = rig.factory.create(ChardevOptions.parse("socket,id=s," + where + ",telnet=on"), old);
        rig.objects.put("s-next", next);
        assertEquals("disconnected:telnet:127.0.0.1:" + port + ",server=on", next.filename());
        old.close();
        final RecordingFrontend fe = ChardevRig.attach(next);
        try (Socket peer = new Socket(InetAddress.getLoopbackAddress(), port)) {
            fe.expect("opened");
            final byte[] init = peer.getInputStream().readNBytes(TelnetDecoder.TELNET_INIT.length);
            assertArrayEquals(TelnetDecoder.TELNET_INIT, init, "the new (telnet) chardev took the client");
        }
        fe.expect("closed");
    }

    @Test
    void aReplacementTakesOverTheUnixListenerAndItsFile() throws Exception {
        epollOnly();
        final Path path = dir.resolve("s.sock");
        final String where = "path=" + path + ",server=on,wait=off";
        final Chardev old = rig.create("socket,id=s," + where);

        // A replacement that is closed before it took over (a change rolled back): the old one serves on.
        final Chardev undone = rig.factory.create(ChardevOptions.parse("socket,id=s," + where + ",telnet=on"), old);
        undone.close();
        assertTrue(Files.exists(path), "the rolled-back replacement left the file alone");
        final RecordingFrontend oldFe = ChardevRig.attach(old);
        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(path));
            oldFe.expect("opened");
        }
        oldFe.expect("closed");

        final Chardev next = rig.factory.create(ChardevOptions.parse("socket,id=s," + where + ",telnet=on"), old);
        rig.objects.put("s-next", next);
        old.close();
        assertTrue(Files.exists(path), "the file is the replacement's now");
        final RecordingFrontend fe = ChardevRig.attach(next);
        try (SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            peer.connect(UnixDomainSocketAddress.of(path));
            fe.expect("opened");
            final ByteBuffer init = ByteBuffer.allocate(TelnetDecoder.TELNET_INIT.length);
            while (init.hasRemaining() && peer.read(init) >= 0) {
                // reads until the options are in
            }
            assertArrayEquals(TelnetDecoder.TELNET_INIT, init.array());
        }
        next.close();
        assertFalse(Files.exists(path, LinkOption.NOFOLLOW_LINKS), "the replacement removes its file at close");
    }

    @Test
    void withoutATakeOverTheSameAddressIsInUse() throws Exception {
        final Chardev old = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off");
        final int port = ((InetSocketAddress) ((SocketChardev) old).localAddress()).getPort();
        final ChardevException e = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=t,host=127.0.0.1,port=" + port + ",server=on,wait=off"));
        assertTrue(e.getMessage().contains("Address already in use"), e.getMessage());
    }
}
