package org.vsbridge.chardev;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.vsbridge.chardev.ByteBufs.run;
import static org.vsbridge.chardev.ByteBufs.write;

import io.netty.channel.EventLoopGroup;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** file, null, ringbuf/memory, stdio, and what the factory refuses. Real files in a temp dir. */
class LocalChardevTest {

    private static EventLoopGroup group;
    private static ChardevFactory factory;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() {
        group = Transports.newEventLoopGroup(1, "test-local");
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

    private static void refused(final String spec, final String message) {
        final ChardevException e = assertThrows(ChardevException.class, () -> create(spec));
        assertEquals(message, e.getMessage(), spec);
    }

    @Test
    void fileOutputTruncatesOrAppends() throws Exception {
        final Path out = dir.resolve("out");
        Files.writeString(out, "previous run");
        final Chardev c = create("file,id=f,path=" + out);
        try {
            assertEquals("file", c.filename());
            assertTrue(c.isOpen());
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            assertTrue(write(c, "first"));
        } finally {
            c.close();
        }
        assertEquals("first", Files.readString(out));

        final Chardev appending = create("file,id=f,path=" + out + ",append=on");
        try {
            assertTrue(write(appending, "+second"));
        } finally {
            appending.close();
        }
        assertEquals("first+second", Files.readString(out));
    }

    @Test
    void fileInputIsDeliveredThenClosesLikeQemu() throws Exception {
        final Path out = dir.resolve("out");
        final Path in = Files.writeString(dir.resolve("in"), "typed input");
        final Chardev c = create("file,id=f,path=" + out + ",input-path=" + in);
        try {
            // Paused before attaching: nothing is read yet. The input is read on a thread of the chardev's own,
            // which hands each chunk to the loop and then blocks until the chunk is delivered: once no such thread
            // is running, a chunk read against the pause has been handed over, and the loop has delivered it
            // before a task queued now.
            run(c, () -> c.setReadPaused(true));
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            await("the input thread of 'f' idle").atMost(Duration.ofSeconds(RecordingFrontend.TIMEOUT_S))
                .pollInterval(Duration.ofMillis(5)).until(() -> Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("chardev-f-input"))
                    .allMatch(t -> t.getState() == Thread.State.WAITING || t.getState() == Thread.State.TERMINATED));
            run(c, () -> { });
            assertEquals(0, fe.inputSize());
            run(c, () -> c.setReadPaused(false));
            assertEquals("typed input", fe.takeInput(11));
            fe.expect("closed"); // end of input = CHR_EVENT_CLOSED, as QEMU's fd chardev does
            assertFalse(c.isOpen());
        } finally {
            c.close();
        }
    }

    @Test
    void fileErrorsAreWordedLikeQemu() {
        final Path missingDir = dir.resolve("no/such/dir/out");
        refused("file,id=f,path=" + missingDir, "Could not open '" + missingDir + "': No such file or directory");
        final Path missingIn = dir.resolve("absent");
        refused("file,id=f,path=" + dir.resolve("o") + ",input-path=" + missingIn,
            "Could not open '" + missingIn + "': No such file or directory");
        // QEMU 10.2 opens a file chardev's output but creates a logfile, and says so.
        refused("null,id=l,logfile=" + missingDir, "Could not create '" + missingDir + "': No such file or directory");
    }

    @Test
    void nullDiscardsButTheLogfileRecords() throws Exception {
        final Path log = dir.resolve("null.log");
        final Chardev c = create("null,id=n,logfile=" + log);
        try {
            assertEquals("null", c.kind());
            assertEquals("null", c.filename());
            assertTrue(c.isOpen());
            final RecordingFrontend fe = attach(c);
            fe.expect("opened");
            assertTrue(write(c, "into the void"));
            run(c, c::sendBreak); // chardev-send-break: a break event to the frontend, as QEMU's
            assertEquals("break", fe.drainEvents());
        } finally {
            c.close();
        }
        assertEquals("into the void", Files.readString(log));
    }

    @Test
    void ringbufOverwritesTheOldest() throws Exception {
        final RingbufChardev r = assertInstanceOf(RingbufChardev.class, create("ringbuf,id=r,size=8"));
        try {
            assertEquals("ringbuf", r.filename());
            assertEquals(8, r.size());
            assertEquals(0, r.count());
            final RecordingFrontend fe = attach(r);
            fe.expect("opened");

            assertTrue(write(r, "0123456789")); // guest output: the ring keeps the last 8 bytes
            assertEquals(8, r.count());
            assertEquals("23456", text(r.read(5)));
            assertEquals(3, r.count());

            assertEquals(3, r.write("abc".getBytes(StandardCharsets.US_ASCII))); // ringbuf-write: same ring
            assertEquals("789abc", text(r.read(100)));
            assertEquals(0, r.count());
            assertArrayEquals(new byte[0], r.read(10));

            assertTrue(write(r, "wrap-")); // crosses the end of the array
            r.write("around".getBytes(StandardCharsets.US_ASCII));
            assertEquals("p-around", text(r.read(8)));

            final IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.read(0));
            assertEquals("size must be greater than zero", e.getMessage());
            assertEquals(0, fe.inputSize(), "a ringbuf never sends input to the guest");
        } finally {
            r.close();
        }
    }

    @Test
    void memoryIsTheOldNameOfRingbuf() throws Exception {
        final Chardev m = create("memory,id=m");
        try {
            assertEquals("memory", m.kind());
            assertEquals("memory", m.filename());
            assertEquals(65536, ((RingbufChardev) m).size());
        } finally {
            m.close();
        }
    }

    @Test
    void ringSizeMustBeAPowerOfTwo() {
        final ChardevException e = assertThrows(ChardevException.class,
            () -> factory.create(new ChardevOptions("r", new ChardevBackend.Ringbuf(1000))));
        assertEquals("size of ringbuf chardev must be power of two", e.getMessage());
    }

    @Test
    void stdioIsOnePerProcess() throws Exception {
        // Never attached here: stdin belongs to the test runner, so nothing may read it.
        final Chardev s = create("stdio,id=s,signal=off");
        try {
            assertEquals("stdio", s.filename());
            assertTrue(s.isOpen());
            refused("stdio,id=s2", "cannot use stdio by multiple character devices");
        } finally {
            s.close();
        }
        final Chardev again = create("stdio,id=s3");
        again.close();
    }

    @Test
    void kindsNotBuiltAreRefusedWithTheirReason() {
        refused("parallel,id=p,path=/dev/parport0", "the bridge does not support chardev backend 'parallel': "
            + "on Linux, QEMU's parallel chardev moves data only through the ppdev ioctls of an emulated "
            + "parallel-port device; it discards what a virtio port writes and never gives it input, so a port on it "
            + "would lose every byte");
        refused("testdev,id=t", "the bridge does not support chardev backend 'testdev': it is a QEMU test helper "
            + "that answers commands of QEMU's own test suite");
        refused("vc,id=v", "chardev backend 'vc' needs a display or GUI, which the bridge does not have: "
            + "it is a text console drawn on a graphical display");
        refused("spicevmc,id=s,name=vdagent", "chardev backend 'spicevmc' needs a display or GUI, which the "
            + "bridge does not have: it is a channel of a SPICE display server");
        refused("msmouse,id=m", "chardev backend 'msmouse' needs a display or GUI, which the bridge does not "
            + "have: it emulates a serial mouse fed by a graphical display");
    }

    @Test
    void closeIsIdempotentAndStopsOutput() throws Exception {
        final Path out = dir.resolve("o");
        final Chardev c = create("file,id=f,path=" + out);
        c.close();
        c.close();
        assertTrue(write(c, "after close"));
        assertEquals("", Files.readString(out));
    }

    private static String text(final byte[] b) {
        return new String(b, StandardCharsets.US_ASCII);
    }
}
