package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.vsbridge.chardev.ByteBufs.run;
import static org.vsbridge.chardev.ByteBufs.write;

import io.netty.channel.EventLoopGroup;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** pty, pipe and serial against real peers: a pty slave opened by the test, FIFOs, a tty (a pty slave). */
class FdChardevTest {

    private static EventLoopGroup group;
    private static ChardevFactory factory;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        group = Transports.newEventLoopGroup(1, "test-fd");
        assumeTrue(Transports.isEpoll(group), "fd backends need epoll");
        factory = new ChardevFactory(group);
    }

    @AfterAll
    static void stop() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private static Chardev create(final String spec) throws ChardevException {
        return factory.create(ChardevOptions.parse(spec));
    }

    private static RecordingFrontend attach(final Chardev c) throws Exception {
        final RecordingFrontend fe = new RecordingFrontend(c);
        run(c, () -> c.attach(fe));
        return fe;
    }

    static String readN(final InputStream in, final int n) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                final byte[] b = new byte[n];
                int got = 0;
                while (got < n) {
                    final int r = in.read(b, got, n - got);
                    if (r < 0) {
                        throw new java.io.EOFException("after " + got + " bytes");
                    }
                    got += r;
                }
                return new String(b, StandardCharsets.ISO_8859_1);
            } catch (final java.io.IOException e) {
                throw new RuntimeException(e);
            }
        }).get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
    }

    @Test
    void ptyIsConnectedWhileTheSlaveIsOpen() throws Exception {
        final Path link = dir.resolve("console");
        final PtyChardev pty = (PtyChardev) create("pty,id=p0,path=" + link);
        try {
            assertTrue(pty.slavePath().startsWith("/dev/pts/"), pty.slavePath());
            assertEquals("pty:" + pty.slavePath(), pty.filename());
            assertEquals(pty.slavePath(), Files.readSymbolicLink(link).toString());
            assertFalse(pty.isOpen(), "no slave open yet");
            final RecordingFrontend fe = attach(pty);
            assertTrue(write(pty, "dropped while nobody listens"));

            try (RandomAccessFile slave = new RandomAccessFile(link.toFile(), "rw")) {
                fe.expect("opened");
                assertTrue(pty.isOpen());
                slave.write("from the slave\u00ff".getBytes(StandardCharsets.ISO_8859_1));
                assertEquals("from the slave\u00ff", fe.takeInput(15));
                assertTrue(write(pty, "to the slave"));
                final byte[] got = new byte[12];
                slave.readFully(got);
                assertEquals("to the slave", new String(got, StandardCharsets.ISO_8859_1), "raw mode: no echo");
            }
            fe.expect("closed");
            assertFalse(pty.isOpen());

            try (RandomAccessFile again = new RandomAccessFile(pty.slavePath(), "rw")) {
                fe.expect("opened");
                again.write('x');
                assertEquals("x", fe.takeInput(1));
            }
            fe.expect("closed");
        } finally {
            pty.close();
        }
        assertFalse(Files.exists(link, java.nio.file.LinkOption.NOFOLLOW_LINKS), "symlink removed at close");
    }

    @Test
    void pipeUsesInAndOutFifos() throws Exception {
        final Path base = dir.resolve("fifo");
        mkfifo(Path.of(base + ".in"));
        mkfifo(Path.of(base + ".out"));
        final Chardev c = create("pipe,id=pp,path=" + base);
        try {
            assertEquals("pipe", c.filename());
            assertTrue(c.isOpen());
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            try (FileOutputStream in = new FileOutputStream(base + ".in");
                 FileInputStream out = new FileInputStream(base + ".out")) {
                in.write("host to guest".getBytes(StandardCharsets.ISO_8859_1));
                in.flush();
                assertEquals("host to guest", fe.takeInput(13));
                assertTrue(write(c, "guest to host"));
                assertEquals("guest to host", readN(out, 13));
            }
            // The writer left: a FIFO opened read-write has no end of input, the chardev stays open. A task queued
            // now runs after the loop polled its descriptors (a hang-up would have been seen), and the chardev
            // still reads what the next writer sends.
            run(c, () -> { });
            try (FileOutputStream in = new FileOutputStream(base + ".in")) {
                in.write("again".getBytes(StandardCharsets.ISO_8859_1));
                in.flush();
                assertEquals("again", fe.takeInput(5));
            }
            assertTrue(c.isOpen());
            assertEquals("", fe.drainEvents());
        } finally {
            c.close();
        }
    }

    @Test
    void pipeWithOneFifoServesBothWays() throws Exception {
        final Path fifo = dir.resolve("both");
        mkfifo(fifo);
        final Chardev c = factory.create(ChardevOptions.parse("pipe,id=p1,path=" + fifo));
        try {
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            try (FileOutputStream w = new FileOutputStream(fifo.toFile())) {
                w.write("abc".getBytes(StandardCharsets.ISO_8859_1));
            }
            assertEquals("abc", fe.takeInput(3));
        } finally {
            c.close();
        }
    }

    @Test
    void serialOnATtyAndItsBreak() throws Exception {
        final PtyChardev pty = (PtyChardev) create("pty,id=line");
        try {
            final RecordingFrontend ptyFe = attach(pty);
            final Chardev tty = factory.create(ChardevOptions.parse("serial,id=tty0,path=" + pty.slavePath()));
            try {
                assertEquals("serial", tty.kind());
                assertEquals("serial", tty.filename());
                final RecordingFrontend ttyFe = attach(tty);
                ttyFe.expect("opened");
                ptyFe.expect("opened"); // the tty chardev holds the slave open
                assertTrue(write(tty, "over the line"));
                assertEquals("over the line", ptyFe.takeInput(13));
                assertTrue(write(pty, "and back"));
                assertEquals("and back", ttyFe.takeInput(8));
                // chardev-send-break, as QEMU: a break event to the chardev's frontend, nothing on the line.
                run(tty, tty::sendBreak);
                ttyFe.expect("break");
                assertTrue(write(tty, "!"));
                assertEquals("!", ptyFe.takeInput(1));
            } finally {
                tty.close();
            }
            ptyFe.expect("closed");
        } finally {
            pty.close();
        }
    }

    @Test
    void serialThatCannotOpenIsRefusedLikeQemu() {
        final ChardevException missing = assertThrows(ChardevException.class,
            () -> create("serial,id=s,path=" + dir.resolve("nope")));
        assertEquals("Could not open '" + dir.resolve("nope") + "': No such file or directory",
            missing.getMessage());
        final ChardevException directory = assertThrows(ChardevException.class,
            () -> create("serial,id=s,path=" + dir));
        assertEquals("Could not open '" + dir + "': Is a directory", directory.getMessage());
    }

    static void mkfifo(final Path p) throws Exception {
        final Process proc = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
        assertTrue(proc.waitFor(10, TimeUnit.SECONDS) && proc.exitValue() == 0, "mkfifo " + p);
    }
}
