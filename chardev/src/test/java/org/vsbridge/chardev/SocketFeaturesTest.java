package org.vsbridge.chardev;

import static org.awaitility.Awaitility.await;
import static org.vsbridge.chardev.ChardevRig.attach;
import static org.vsbridge.chardev.ChardevRig.port;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.vsbridge.chardev.ByteBufs.run;
import static org.vsbridge.chardev.ByteBufs.write;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.libc.Sockets;

/**
 * The socket options beyond plain bytes, each against a real peer: telnet and tn3270 negotiation byte for byte,
 * a websocket client (the JDK's), TLS with a CA made by openssl for this run (and a client whose DN is refused),
 * reconnect after the peer restarts, abstract unix sockets, inherited descriptors, vsock; plus udp, mux, hub.
 */
class SocketFeaturesTest {

    @TempDir
    Path dir;

    private ChardevRig rig;

    @BeforeEach
    void setUp() {
        rig = new ChardevRig("test-features");
        assumeTrue(Transports.isEpoll(rig.group), "needs epoll");
    }

    @AfterEach
    void tearDown() {
        rig.close();
    }

    private static SocketChannel tcp(final int port) throws IOException {
        return SocketChannel.open(new InetSocketAddress("127.0.0.1", port));
    }

    private static byte[] read(final SocketChannel ch, final int n) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            final ByteBuffer b = ByteBuffer.allocate(n);
            try {
                while (b.hasRemaining()) {
                    if (ch.read(b) < 0) {
                        throw new IOException("EOF after " + b.position());
                    }
                }
            } catch (final IOException e) {
                throw new RuntimeException(e);
            }
            return b.array();
        }).get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
    }

    private static void send(final SocketChannel ch, final byte... bytes) throws IOException {
        final ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static byte[] b(final int... v) {
        final byte[] out = new byte[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = (byte) v[i];
        }
        return out;
    }

    /** A frontend that also records breaks. */
    private static final class BreakFrontend {
        static RecordingFrontend attach(final Chardev c) throws Exception {
            final RecordingFrontend fe = new RecordingFrontend(c);
            run(c, () -> c.attach(fe));
            return fe;
        }
    }

    @Test
    void telnetNegotiatesAsQemuAndUnescapesInput() throws Exception {
        final Chardev c = rig.create("socket,id=t,host=127.0.0.1,port=0,server=on,wait=off,telnet=on");
        final int port = port(c);
        assertEquals("disconnected:telnet:127.0.0.1:" + port + ",server=on", c.filename());
        final RecordingFrontend fe = BreakFrontend.attach(c);
        try (SocketChannel peer = tcp(port)) {
            assertArrayEquals(b(255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 0), read(peer, 12));
            fe.expect("opened");
            assertTrue(c.filename().startsWith("telnet:127.0.0.1:" + port + ",server=on <-> 127.0.0.1:"),
                c.filename());
            // A client's answers (IAC DO ECHO, IAC WILL BINARY) vanish; IAC IAC is 0xFF; IAC BREAK is a break.
            send(peer, b(255, 253, 1, 'a', 255, 251, 0, 'b', 255, 255, 'c', 255, 243, 'd'));
            assertEquals("ab\u00ffcd", fe.takeInput(5));
            fe.expect("break");
            // An IAC split across two reads still counts.
            send(peer, b(255));
            send(peer, b(255, 'e'));
            assertEquals("\u00ffe", fe.takeInput(2));
            // Output is not escaped, as QEMU sends guest bytes as they are.
            assertTrue(write(c, "\u00ffz"));
            assertArrayEquals(b(255, 'z'), read(peer, 2));
        }
        fe.expect("closed");
    }

    @Test
    void tn3270NegotiatesPerRfc1576() throws Exception {
        final Chardev c = rig.create("socket,id=t3,host=127.0.0.1,port=0,server=on,wait=off,tn3270=on");
        final RecordingFrontend fe = attach(c);
        try (SocketChannel peer = tcp(port(c))) {
            assertArrayEquals(b(255, 253, 25, 255, 251, 25, 255, 253, 0, 255, 251, 0, 255, 253, 24,
                255, 250, 24, 1, 255, 240), read(peer, 21));
            fe.expect("opened");
            send(peer, b('x', 255, 239, 255, 241, 'y'));   // IAC EOR kept, IAC NOP dropped
            assertEquals("x\u00ff\u00efy", fe.takeInput(4));
        }
    }

    @Test
    void websocketServerCarriesBinaryFrames() throws Exception {
        final Chardev c = rig.create("socket,id=ws,host=127.0.0.1,port=0,server=on,wait=off,websocket=on");
        final int port = port(c);
        assertEquals("disconnected:websocket:127.0.0.1:" + port + ",server=on", c.filename());
        final RecordingFrontend fe = attach(c);
        final LinkedBlockingQueue<byte[]> frames = new LinkedBlockingQueue<>();
        final WebSocket ws = HttpClient.newHttpClient().newWebSocketBuilder().subprotocols("binary")
            .buildAsync(URI.create("ws://127.0.0.1:" + port + "/"), new WebSocket.Listener() {
                @Override
                public CompletionStage<?> onBinary(final WebSocket w, final ByteBuffer data, final boolean last) {
                    final byte[] bytes = new byte[data.remaining()];
                    data.get(bytes);
                    frames.add(bytes);
                    w.request(1);
                    return null;
                }
            }).get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
        try {
            assertEquals("binary", ws.getSubprotocol());
            fe.expect("opened");
            assertTrue(c.filename().startsWith("websocket:127.0.0.1:" + port + ",server=on <-> "), c.filename());
            ws.sendBinary(ByteBuffer.wrap(b(0, 1, 2, 255)), true).get(RecordingFrontend.TIMEOUT_S,
                TimeUnit.SECONDS);
            assertEquals("\u0000\u0001\u0002\u00ff", fe.takeInput(4));
            assertTrue(write(c, "to the browser"));
            final byte[] got = frames.poll(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
            assertNotNull(got);
            assertEquals("to the browser", new String(got, StandardCharsets.ISO_8859_1));
        } finally {
            ws.abort();
        }
        fe.expect("closed");
    }

    @Test
    void tlsWithClientCertificatesAndAuthz() throws Exception {
        final Path server = dir.resolve("server");
        final Path good = dir.resolve("good");
        final Path bad = dir.resolve("bad");
        TestCa.make(dir, server, good, bad);
        rig.objects.put("tls0", TlsCredentials.load("tls0", server, "server", true));
        rig.objects.put("good", TlsCredentials.load("good", good, "client", true));
        rig.objects.put("bad", TlsCredentials.load("bad", bad, "client", true));
        rig.objects.put("authz0", (Authorizer) dn -> dn.equals("CN=client1,O=Example"));

        final Chardev s = rig.create("socket,id=s,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=tls0,"
            + "tls-authz=authz0");
        final RecordingFrontend sfe = attach(s);
        final int port = port(s);

        // Refused: a certificate from the same CA whose DN the authz object does not list.
        final Chardev rejected = rig.create("socket,id=r,host=127.0.0.1,port=" + port + ",tls-creds=bad");
        final RecordingFrontend rfe = attach(rejected);
        // TLS 1.3: the client may finish its side before the server checks the DN and hangs up; either way the
        // refused client ends up disconnected and never gets data.
        final StringBuilder seen = new StringBuilder();
        await("the refused client turned away").atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
            .pollInterval(Duration.ofMillis(20)).until(() -> {
                seen.append(rfe.drainEvents()).append(',');
                return seen.toString().contains("closed") || rejectedLogged(rejected);
            });
        rejected.close();
        assertEquals(0, rfe.inputSize());

        final Chardev client = rig.create("socket,id=c,host=127.0.0.1,port=" + port + ",tls-creds=good");
        final RecordingFrontend cfe = attach(client);
        cfe.expect("opened");
        sfe.expect("opened"); // the first OPENED the server frontend ever saw is this client's
        assertTrue(s.filename().endsWith(" <-> " + client.filename().substring(4, client.filename().indexOf(' '))),
            s.filename() + " / " + client.filename());
        assertTrue(write(client, "secret from client"));
        assertEquals("secret from client", sfe.takeInput(18));
        assertTrue(write(s, "secret from server"));
        assertEquals("secret from server", cfe.takeInput(18));
        assertEquals("", sfe.drainEvents(), "the server frontend never saw the refused client come and go");

        final ChardevException wrongEndpoint = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=w,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=good"));
        assertEquals("Expecting TLS credentials with a server endpoint", wrongEndpoint.getMessage());
        final ChardevException missing = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=m,host=127.0.0.1,port=0,server=on,wait=off,tls-creds=nope"));
        assertEquals("No TLS credentials with id 'nope'", missing.getMessage());
        // QEMU's order on a unix socket: the credentials are found and of the right endpoint before the address
        // type is refused.
        final Path unix = dir.resolve("tls.sock");
        final ChardevException unixMissing = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=u1,path=" + unix + ",server=on,wait=off,tls-creds=nope"));
        assertEquals("No TLS credentials with id 'nope'", unixMissing.getMessage());
        final ChardevException unixEndpoint = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=u2,path=" + unix + ",server=on,wait=off,tls-creds=good"));
        assertEquals("Expecting TLS credentials with a server endpoint", unixEndpoint.getMessage());
        final ChardevException unixRefused = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=u3,path=" + unix + ",server=on,wait=off,tls-creds=tls0"));
        assertEquals("'tls_creds' option is incompatible with 'unix' address type", unixRefused.getMessage());
        assertFalse(Files.exists(unix), "nothing was bound");
    }

    @Test
    void inetOptionsToIpv6AndNumeric() throws Exception {
        try (ServerSocketChannel taken = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            final int busy = ((InetSocketAddress) taken.getLocalAddress()).getPort();
            final Chardev c = rig.create("socket,id=to,host=127.0.0.1,port=" + busy + ",to=" + (busy + 20)
                + ",server=on,wait=off");
            final int got = port(c);
            assertTrue(got > busy && got <= busy + 20, "took the next free port: " + got);
            assertEquals("disconnected:tcp:127.0.0.1:" + got + ",server=on", c.filename());
            final ChardevException none = assertThrows(ChardevException.class, () -> rig.create(
                "socket,id=to2,host=127.0.0.1,port=" + busy + ",server=on,wait=off"));
            assertTrue(none.getMessage().startsWith("Failed to find an available port: Address already in use"),
                none.getMessage());
        }
        final Chardev v6 = rig.create("socket,id=v6,host=,port=0,ipv6=on,server=on,wait=off");
        assertTrue(v6.filename().startsWith("disconnected:tcp:::"), v6.filename());
        final ChardevException numeric = assertThrows(ChardevException.class, () -> rig.factory.create(
            ChardevOptions.fromQapi("n", json("{\"type\":\"socket\",\"data\":{\"addr\":{\"type\":\"inet\","
                + "\"data\":{\"host\":\"localhost\",\"port\":\"0\",\"numeric\":true}},\"wait\":false}}"))));
        assertEquals("address resolution failed for localhost:0: Name or service not known", numeric.getMessage());
    }

    @Test
    void logfileRecordsOutputOfTheNewKinds() throws Exception {
        final Path log = dir.resolve("udp.log");
        java.nio.file.Files.writeString(log, "old;");
        final Chardev c = rig.create("udp,id=lu,host=127.0.0.1,port=9,logfile=" + log + ",logappend=on");
        assertTrue(write(c, "logged"));
        c.close();
        assertEquals("old;logged", java.nio.file.Files.readString(log));
    }

    @Test
    void reconnectingClientComesBackAfterThePeerRestarts() throws Exception {
        final int port;
        try (ServerSocketChannel probe = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0))) {
            port = ((InetSocketAddress) probe.getLocalAddress()).getPort();
        }
        final Chardev c = rig.create("socket,id=rc,host=127.0.0.1,port=" + port + ",reconnect-ms=100");
        assertFalse(c.isOpen(), "nobody listens yet, and creation did not fail");
        assertEquals("disconnected:tcp:127.0.0.1:" + port, c.filename());
        final RecordingFrontend fe = attach(c);
        for (int round = 0; round < 2; round++) {
            try (ServerSocketChannel server = ServerSocketChannel.open()) {
                server.setOption(java.net.StandardSocketOptions.SO_REUSEADDR, true);
                server.bind(new InetSocketAddress("127.0.0.1", port));
                try (SocketChannel peer = server.accept()) {
                    fe.expect("opened");
                    assertTrue(c.filename().startsWith("tcp:127.0.0.1:"), c.filename());
                    assertTrue(c.filename().endsWith(" <-> 127.0.0.1:" + port), c.filename());
                    assertTrue(write(c, "round" + round));
                    assertEquals("round" + round, new String(read(peer, 6), StandardCharsets.ISO_8859_1));
                }
                fe.expect("closed");
            }
        }
    }

    @Test
    void abstractUnixServerAndClient() throws Exception {
        final String name = "vsb-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        final Chardev server = rig.create("socket,id=as,path=" + name + ",abstract=on,server=on,wait=off");
        assertEquals("disconnected:unix:" + name + ",abstract=on,tight=on,server=on", server.filename());
        final RecordingFrontend sfe = attach(server);
        final Chardev client = rig.create("socket,id=ac,path=" + name + ",abstract=on");
        final RecordingFrontend cfe = attach(client);
        cfe.expect("opened");
        sfe.expect("opened");
        assertEquals("unix:,server=on", server.filename(), "QEMU prints the NUL-led name as empty");
        assertTrue(write(client, "abstract"));
        assertEquals("abstract", sfe.takeInput(8));
    }

    @Test
    void abstractUnixWithTightOffPadsTheWholeSunPath() throws Exception {
        final String name = "vsb-loose-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        final Chardev server = rig.create("socket,id=ls,path=" + name + ",abstract=on,tight=off,server=on,wait=off");
        assertEquals("disconnected:unix:" + name + ",abstract=on,server=on", server.filename());
        final RecordingFrontend sfe = attach(server);
        // The kernel's own view: the padded name is 107 bytes after the NUL, in /proc/net/unix as '@' + name + '@'s.
        final String padded = "@" + name + "@".repeat(107 - name.length());
        assertTrue(java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/net/unix")).stream()
            .anyMatch(l -> l.endsWith(" " + padded)), "the listening socket is bound to the padded name");
        // A tight client names another address: nobody listens there.
        final Chardev tight = rig.create("socket,id=lt,path=" + name + ",abstract=on,reconnect-ms=60000");
        final RecordingFrontend tfe = attach(tight);
        final Chardev loose = rig.create("socket,id=lc,path=" + name + ",abstract=on,tight=off");
        final RecordingFrontend lfe = attach(loose);
        lfe.expect("opened");
        sfe.expect("opened");
        assertTrue(write(loose, "padded"));
        assertEquals("padded", sfe.takeInput(6));
        assertFalse(tight.isOpen(), "a tight=on client does not reach a tight=off server");
        assertTrue(tfe.events.isEmpty(), "a tight=on client does not reach a tight=off server: " + tfe.events);
        final ChardevException refused = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=ln,path=" + name + "-none,abstract=on,tight=off"));
        assertTrue(refused.getMessage().contains("Failed to connect to '" + name + "-none': Connection refused"),
            refused.getMessage());
    }

    @Test
    void inheritedListeningDescriptor() throws Exception {
        final int fd = Sockets.socket(Sockets.AF_INET, Sockets.SOCK_STREAM | Sockets.SOCK_CLOEXEC, 0);
        final byte[] sin = new byte[16];
        sin[0] = (byte) Sockets.AF_INET;
        sin[4] = 127;
        sin[7] = 1;
        Sockets.bind(fd, sin, sin.length);
        Sockets.listen(fd, 1);
        final byte[] bound = new byte[16];
        Sockets.getsockname(fd, bound);
        final int port = ((bound[2] & 0xFF) << 8) | (bound[3] & 0xFF);
        final Chardev c = rig.create("socket,id=fd,fd=" + fd + ",server=on,wait=off");
        assertEquals("disconnected:fd:" + fd + ",server=on", c.filename());
        final RecordingFrontend fe = attach(c);
        try (SocketChannel peer = tcp(port)) {
            fe.expect("opened");
            assertEquals("tcp:127.0.0.1:" + port + ",server=on <-> 127.0.0.1:"
                + ((InetSocketAddress) peer.getLocalAddress()).getPort(), c.filename());
            send(peer, "via fd".getBytes(StandardCharsets.ISO_8859_1));
            assertEquals("via fd", fe.takeInput(6));
        }
        final ChardevException notSocket = assertThrows(ChardevException.class,
            () -> rig.create("socket,id=fd2,fd=0,server=on,wait=off"));
        assertTrue(notSocket.getMessage().startsWith("File descriptor '0' is not"), notSocket.getMessage());
    }

    @Test
    void inheritedListeningUnixDescriptor() throws Exception {
        final java.nio.file.Path path = java.nio.file.Files.createTempDirectory("vsb-fd").resolve("l.sock");
        final int fd = Sockets.socket(Sockets.AF_UNIX, Sockets.SOCK_STREAM | Sockets.SOCK_CLOEXEC, 0);
        final byte[] sun = new byte[110];
        sun[0] = (byte) Sockets.AF_UNIX;
        final byte[] name = path.toString().getBytes(StandardCharsets.UTF_8);
        System.arraycopy(name, 0, sun, 2, name.length);
        Sockets.bind(fd, sun, sun.length);
        Sockets.listen(fd, 1);
        final Chardev c = rig.create("socket,id=ufd,fd=" + fd + ",server=on,wait=off");
        final RecordingFrontend fe = attach(c);
        try (SocketChannel peer = SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            peer.connect(java.net.UnixDomainSocketAddress.of(path));
            fe.expect("opened");
            send(peer, "unix fd".getBytes(StandardCharsets.ISO_8859_1));
            assertEquals("unix fd", fe.takeInput(7));
        }
    }

    @Test
    void vsockIsRefusedClearlyWithoutALoopbackTransport() {
        final ChardevException server = assertThrows(ChardevException.class,
            () -> rig.factory.create(ChardevOptions.fromQapi("v", json("{\"type\":\"socket\",\"data\":{\"addr\":"
                + "{\"type\":\"vsock\",\"data\":{\"cid\":\"1\",\"port\":\"5555\"}}}}"))));
        assertTrue(server.getMessage().contains("vsock server"), server.getMessage());
        // This machine has no vsock loopback (CID 1): the connect fails with the kernel's reason.
        final ChardevException client = assertThrows(ChardevException.class,
            () -> rig.factory.create(ChardevOptions.fromQapi("v", json("{\"type\":\"socket\",\"data\":{\"addr\":"
                + "{\"type\":\"vsock\",\"data\":{\"cid\":\"1\",\"port\":\"5555\"}},\"server\":false}}"))));
        assertTrue(client.getMessage().startsWith("Failed to connect to 'vsock:1:5555': "), client.getMessage());
    }

    @Test
    void udpSendsAndReceivesDatagrams() throws Exception {
        try (java.nio.channels.DatagramChannel peer = java.nio.channels.DatagramChannel.open()
            .bind(new InetSocketAddress("127.0.0.1", 0))) {
            final int peerPort = ((InetSocketAddress) peer.getLocalAddress()).getPort();
            final Chardev c = rig.create("udp,id=u,host=127.0.0.1,port=" + peerPort + ",localaddr=127.0.0.1,localport=0");
            assertEquals("udp", c.filename());
            assertTrue(c.isOpen());
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            assertTrue(write(c, "datagram out"));
            final ByteBuffer in = ByteBuffer.allocate(64);
            peer.configureBlocking(true);
            peer.receive(in);
            in.flip();
            assertEquals("datagram out", StandardCharsets.ISO_8859_1.decode(in).toString());
            peer.send(ByteBuffer.wrap("datagram in".getBytes(StandardCharsets.ISO_8859_1)),
                ((UdpChardev) c).localAddress());
            assertEquals("datagram in", fe.takeInput(11));
        }
    }

    /** Linux {@code SO_PROTOCOL}: the protocol a socket was made with. */
    private static final int SO_PROTOCOL = 38;

    private static int protocol(final io.netty.channel.Channel ch) throws Exception {
        return Sockets.intOption(((io.netty.channel.unix.UnixChannel) ch).fd().intValue(), SO_PROTOCOL);
    }

    /**
     * {@code mptcp=on}, as QEMU: the listening socket and a client's connection are made with protocol
     * IPPROTO_MPTCP (the kernel says so), and bytes flow both ways with plain TCP peers (MPTCP falls back to TCP
     * with a peer that does not speak it).
     */
    @Test
    void mptcpSocketsAreMultipathTcpAndCarryBytesBothWays() throws Exception {
        try {
            Mptcp.probe(java.net.InetAddress.getByName("127.0.0.1"));
        } catch (final ChardevException e) {
            assumeTrue(false, "this kernel has no MPTCP: " + e.getMessage());
        }
        // QMP only: QEMU's -chardev has no mptcp option ("Invalid parameter 'mptcp'"), and neither has --chardev.
        final SocketChardev server = (SocketChardev) rig.createQapi("ms", "{\"type\":\"socket\",\"data\":{"
            + "\"addr\":{\"type\":\"inet\",\"data\":{\"host\":\"127.0.0.1\",\"port\":\"0\","
            + "\"mptcp\":true}},\"server\":true,\"wait\":false}}");
        final int port = port(server);
        assertEquals("disconnected:tcp:127.0.0.1:" + port + ",server=on", server.filename());
        assertEquals(Mptcp.IPPROTO_MPTCP, protocol(server.listener), "the listening socket's protocol");
        final RecordingFrontend sfe = attach(server);
        try (SocketChannel peer = tcp(port)) {
            sfe.expect("opened");
            // (A connection the MPTCP listener accepts from a plain TCP peer is a TCP socket: the kernel's fallback.)
            send(peer, "up".getBytes(StandardCharsets.US_ASCII));
            assertEquals("up", sfe.takeInput(2));
            assertTrue(write(server, "down"));
            assertEquals("down", new String(read(peer, 4), StandardCharsets.US_ASCII));
        }

        try (ServerSocketChannel listener = ServerSocketChannel.open()) {
            listener.bind(new InetSocketAddress("127.0.0.1", 0));
            final int to = ((InetSocketAddress) listener.getLocalAddress()).getPort();
            final SocketChardev client = (SocketChardev) rig.createQapi("mc", "{\"type\":\"socket\",\"data\":{"
                + "\"addr\":{\"type\":\"inet\",\"data\":{\"host\":\"127.0.0.1\",\"port\":\"" + to
                + "\",\"mptcp\":true}},\"server\":false}}");
            final RecordingFrontend cfe = attach(client);
            try (SocketChannel peer = listener.accept()) {
                cfe.expect("opened");
                assertEquals(Mptcp.IPPROTO_MPTCP, ByteBufs.on(client, () -> protocol(client.connection)),
                    "the client connection's protocol");
                send(peer, "in".getBytes(StandardCharsets.US_ASCII));
                assertEquals("in", cfe.takeInput(2));
                assertTrue(write(client, "out"));
                assertEquals("out", new String(read(peer, 3), StandardCharsets.US_ASCII));
            }
        }
    }

    @Test
    void muxSharesOneBackendWithCtrlAKeys() throws Exception {
        final Path path = dir.resolve("mux.sock");
        for (final ChardevOptions o : ChardevOptions.parseAll("socket,id=m,path=" + path + ",server=on,wait=off,"
            + "mux=on", null)) {
            rig.objects.put(o.id(), rig.factory.create(o));
        }
        final MuxChardev mux = (MuxChardev) rig.objects.get("m");
        assertEquals("mux", mux.filename());
        assertTrue(((Chardev) rig.objects.get("m-base")).isBusy(), "the mux is the base's frontend");
        final Chardev v0 = mux.newFrontendView();
        final Chardev v1 = mux.newFrontendView();
        final RecordingFrontend f0 = BreakFrontend.attach(v0);
        final RecordingFrontend f1 = BreakFrontend.attach(v1);
        try (SocketChannel peer = SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            peer.connect(java.net.UnixDomainSocketAddress.of(path));
            f0.expect("opened");
            f1.expect("opened");
            send(peer, "to0".getBytes(StandardCharsets.ISO_8859_1));
            assertEquals("to0", f0.takeInput(3));
            send(peer, b(1, 'c', 't', 'o', '1', 1, 1));        // C-a c: focus to view 1; C-a C-a: a literal C-a
            assertEquals("to1\u0001", f1.takeInput(4));
            send(peer, b(1, 'b'));                                  // C-a b: break to the focused frontend
            f1.expect("break");
            // chardev-send-break, as QEMU: on the mux, a break to the focused view (1); on its base, a break to
            // every view. Both run on the one event loop, and run() waits for each, so the counts are exact.
            run(mux, mux::sendBreak);
            final Chardev base = (Chardev) rig.objects.get("m-base");
            run(base, base::sendBreak);
            assertEquals("break", f0.drainEvents());
            assertEquals("break,break", f1.drainEvents());
            send(peer, b(1, 'x', 'y'));                             // C-a x: logged and ignored
            assertEquals("y", f1.takeInput(1));
            send(peer, b(1, 'h'));
            final String help = new String(read(peer, 8), StandardCharsets.ISO_8859_1);
            assertEquals("\r\nC-a h ", help);
            assertEquals(0, f0.inputSize(), "view 0 lost the focus");
            assertTrue(write(v0, "A"));
            assertTrue(write(v1, "B"));
        }
        mux.newFrontendView();
        mux.newFrontendView();
        final ChardevException full = assertThrows(ChardevException.class, mux::newFrontendView);
        assertEquals("too many uses of multiplexed chardev 'm'", full.getMessage());
    }

    @Test
    void hubWritesToAllAndMergesInput() throws Exception {
        final Path a = dir.resolve("a.sock");
        final Path bPath = dir.resolve("b.sock");
        rig.create("socket,id=ha,path=" + a + ",server=on,wait=off");
        rig.create("socket,id=hb,path=" + bPath + ",server=on,wait=off");
        final Chardev hub = rig.create("hub,id=h,chardevs.0=ha,chardevs.1=hb");
        assertEquals("hub", hub.filename());
        assertFalse(hub.isOpen());
        final RecordingFrontend fe = attach(hub);
        try (SocketChannel pa = SocketChannel.open(java.net.StandardProtocolFamily.UNIX);
             SocketChannel pb = SocketChannel.open(java.net.StandardProtocolFamily.UNIX)) {
            pa.connect(java.net.UnixDomainSocketAddress.of(a));
            fe.expect("opened");
            pb.connect(java.net.UnixDomainSocketAddress.of(bPath));
            // Wait until both are connected before writing: the hub writes only to open backends.
            send(pb, "B".getBytes(StandardCharsets.ISO_8859_1));
            send(pa, "A".getBytes(StandardCharsets.ISO_8859_1));
            final String merged = fe.takeInput(2);
            assertTrue(merged.equals("AB") || merged.equals("BA"), merged);
            assertTrue(write(hub, "both"));
            assertEquals("both", new String(read(pa, 4), StandardCharsets.ISO_8859_1));
            assertEquals("both", new String(read(pb, 4), StandardCharsets.ISO_8859_1));
        }
        final ChardevException busy = assertThrows(ChardevException.class,
            () -> rig.create("hub,id=h2,chardevs.0=ha"));
        assertEquals("chardev 'ha' is already in use", busy.getMessage());
    }

    /** The refused client has been through its handshake and is gone (it was never connected, or no longer). */
    private static boolean rejectedLogged(final Chardev rejected) {
        return !rejected.isOpen() && rejected.filename().startsWith("disconnected:")
            && ((SocketChardev) rejected).handshakeAttempts() > 0;
    }

    private static com.fasterxml.jackson.databind.JsonNode json(final String s) {
        try {
            return new com.fasterxml.jackson.databind.ObjectMapper().readTree(s);
        } catch (final IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
