package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.core.cli.UsageException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

class ListenFdsTest {

    private static final Path SOCKET_ACTIVATE = Path.of("/usr/bin/systemd-socket-activate");

    @TempDir
    Path dir;

    private static Map<String, String> env(final String... kv) {
        final Map<String, String> m = new HashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put(kv[i], kv[i + 1]);
        }
        return m;
    }

    @Test
    void namedFdsFromThree() throws UsageException {
        final ListenFds fds = ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "3",
            "LISTEN_FDNAMES", "qmp:vhost-user:qmp"), 7);
        assertEquals(OptionalInt.of(4), fds.vhostUser());
        assertEquals(List.of(3, 5), fds.qmp());
        assertEquals("fd 3=qmp, fd 4=vhost-user, fd 5=qmp", fds.toString());
    }

    @Test
    void aSingleUnnamedFdIsTheVhostUserSocket() throws UsageException {
        assertEquals(OptionalInt.of(3), ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "1"), 7).vhostUser());
        assertEquals(OptionalInt.of(3), ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "1",
            "LISTEN_FDNAMES", "vhost-serial-bridge@vm1.socket"), 7).vhostUser());
        assertEquals(List.of(3), ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "1",
            "LISTEN_FDNAMES", "qmp"), 7).qmp());
    }

    @Test
    void fdsForAnotherProcessAreNotOurs() throws UsageException {
        assertTrue(ListenFds.parse(env("LISTEN_PID", "8", "LISTEN_FDS", "2"), 7).isEmpty());
        assertTrue(ListenFds.parse(env("LISTEN_FDS", "2"), 7).isEmpty());
        assertTrue(ListenFds.parse(env(), 7).isEmpty());
    }

    @Test
    void badVariablesAreErrorsThatSayWhy() {
        assertTrue(assertThrows(UsageException.class, () -> ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "2",
            "LISTEN_FDNAMES", "vhost-user:monitor"), 7)).getMessage().contains("fd 4 is named 'monitor'"));
        assertTrue(assertThrows(UsageException.class, () -> ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "2",
            "LISTEN_FDNAMES", "vhost-user"), 7)).getMessage().contains("names 1 fd(s) but LISTEN_FDS=2"));
        assertTrue(assertThrows(UsageException.class, () -> ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "2",
            "LISTEN_FDNAMES", "vhost-user:vhost-user"), 7)).getMessage().contains("more than one"));
        assertTrue(assertThrows(UsageException.class, () -> ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "x"),
            7)).getMessage().contains("LISTEN_FDS=x"));
        assertTrue(assertThrows(UsageException.class, () -> ListenFds.parse(env("LISTEN_PID", "7", "LISTEN_FDS", "2"),
            7)).getMessage().contains("expected FileDescriptorName="));
    }

    @Test
    void scrubRemovesTheVariablesForChildren() {
        final Map<String, String> e = env("LISTEN_PID", "7", "LISTEN_FDS", "1", "LISTEN_FDNAMES", "qmp", "PATH", "/bin");
        ListenFds.scrub(e);
        assertEquals(Map.of("PATH", "/bin"), e);
    }

    @Test
    void inheritedSocketsAreCheckedBeforeUse() throws IOException {
        final int listening = Sockets.unixListen(dir.resolve("l.sock"), 1);
        final int[] pair = Sockets.socketpair();
        final int event = Sys.eventfd();
        try {
            SocketFds.checkListening(listening, "fd", true);
            final String notListening = assertThrows(IOException.class,
                () -> SocketFds.checkListening(pair[0], "--fd " + pair[0], true)).getMessage();
            assertTrue(notListening.contains("not listening"), notListening);
            assertTrue(assertThrows(IOException.class, () -> SocketFds.checkListening(event, "--fd " + event, true))
                .getMessage().startsWith("--fd " + event + ": "));
            assertThrows(IOException.class, () -> SocketFds.checkListening(1 << 20, "--fd huge", true));
        } finally {
            Sys.closeQuietly(listening);
            Sys.closeQuietly(pair[0]);
            Sys.closeQuietly(pair[1]);
            Sys.closeQuietly(event);
        }
    }

    /**
     * The real tool hands a child JVM two named sockets: the child must tell the vhost-user socket from the QMP
     * socket by name, drop the variables from its C environment, and send READY=1.
     */
    @Test
    void systemdSocketActivateHandsOverNamedSockets() throws Exception {
        assumeTrue(Files.isExecutable(SOCKET_ACTIVATE) || System.getenv("CI") != null,
            "systemd-socket-activate not installed");
        final Path vhost = dir.resolve("vm1.sock");
        final Path qmp = dir.resolve("vm1.qmp");
        final String notifyPath = dir.resolve("notify").toString();
        try (NotifyListener manager = new NotifyListener(notifyPath)) {
            final List<String> cmd = new ArrayList<>(List.of(SOCKET_ACTIVATE.toString(),
                "-l", vhost.toString(), "-l", qmp.toString(), "--fdname=vhost-user:qmp",
                "-E", "NOTIFY_SOCKET=" + notifyPath));
            cmd.addAll(ChildJvm.command(ServiceProbe.class, "activation"));
            final Process p = new ProcessBuilder(cmd).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.txt").toFile()).start();
            try {
                // The first connection makes systemd-socket-activate exec the service; both then get answered.
                assertEquals("vhost-user", ask(vhost));
                assertEquals("qmp", ask(qmp));
                assertEquals("READY=1\nSTATUS=2 sockets", manager.awaitContaining("READY=1", 30_000));
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "probe did not finish");
                final String out = Files.readString(dir.resolve("out.txt"));
                assertEquals(0, p.exitValue(), out);
                assertTrue(out.contains("fds: fd 3=vhost-user, fd 4=qmp"), out);
                assertTrue(out.contains("C env LISTEN_FDS after: null"), out);
            } finally {
                p.destroyForcibly();
            }
        }
    }

    private static String ask(final Path socket) throws IOException, InterruptedException {
        try (SocketChannel ch = ChildJvm.connectWhenListening(socket)) {
            final ByteBuffer buf = ByteBuffer.allocate(64);
            while (ch.read(buf) >= 0 && (buf.position() == 0 || buf.get(buf.position() - 1) != '\n')) {
                // read up to the newline
            }
            return new String(buf.array(), 0, buf.position(), StandardCharsets.US_ASCII).trim();
        }
    }
}
