package org.vsbridge.core.port;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.EventLoopGroup;
import java.io.ByteArrayOutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevFactory;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.Transports;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortSpec;

/**
 * Host input lent to the device worker (it reads the socket itself, straight into guest buffers) across two
 * frontends, through a real unix-socket chardev and real peers. The test thread plays the worker with a real epoll
 * and eventfd, as the device worker does; when the port's receive queue stops (a frontend goes), the test thread
 * stops serving that epoll, as a worker that is gone. The peer that leaves then must still be seen by the chardev,
 * and the next frontend must get the next peer's bytes through a new loan.
 */
@Timeout(value = 2, unit = TimeUnit.MINUTES) // a safety net for a hang, never a performance bound
class PortLinkInputLoanTest {

    private static final boolean DIRECT_INPUT = !"false".equals(System.getProperty("vsb.directInput"));

    @TempDir
    Path dir;
    private EventLoopGroup group;
    private Chardev chardev;
    private TestWorkerEpoll worker;
    private final UnsafeBuffer guest = new UnsafeBuffer(ByteBuffer.allocateDirect(4096));

    @BeforeEach
    void start() throws Exception {
        assumeTrue(Transports.epollAvailable(), "direct input needs the epoll transport");
        assumeTrue(DIRECT_INPUT, "direct input is off (-Dvsb.directInput=false)");
        group = Transports.newEventLoopGroup(1, "test-io");
        worker = new TestWorkerEpoll(true);
    }

    @AfterEach
    void stop() {
        if (chardev != null) {
            chardev.close();
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        }
        if (worker != null) {
            worker.close();
        }
    }

    @Test
    void aPeerThatLeavesBetweenTwoFrontendsIsSeenAndTheNextPeerIsReadByTheNextFrontend() throws Exception {
        final Path path = dir.resolve("p.sock");
        chardev = new ChardevFactory(group).create(ChardevOptions.parse("socket,id=c1,path=" + path
            + ",server=on,wait=off"));
        final PortSpec spec = new PortSpec(1, "p1", "org.test.1", false);
        final PortLink link = new PortLink(spec, 64 * 1024, 64 * 1024);
        final ConsoleDevice device = new ConsoleDevice("t", 2, List.of(spec), nr -> link, (p, open) -> { });
        device.attach(worker.context());
        link.bind(device, chardev);

        // First frontend: the queue starts, the worker takes the loan and reads the first peer's bytes itself.
        try (SocketChannel first = connect(path)) {
            link.hostInputServed(true);
            awaitLoan(link);
            write(first, "hello");
            assertArrayEquals(bytes("hello"), readAsWorker(link, 5));
            assertEquals(5, link.directInputBytes(), "bytes the worker read from the socket itself");

            // The frontend goes: the queue stops and no worker serves the port until the next one.
            link.hostInputServed(false);
        } // the first peer leaves between the two frontends
        await("the chardev sees the peer that left between two frontends").atMost(Duration.ofSeconds(30))
            .pollInterval(Duration.ofMillis(5)).until(() -> !chardev.isOpen());

        // Second frontend, second peer: a new loan, and only the new peer's bytes.
        try (SocketChannel second = connect(path)) {
            link.hostInputServed(true);
            awaitLoan(link);
            write(second, "again");
            assertArrayEquals(bytes("again"), readAsWorker(link, 5));
            assertEquals(10, link.directInputBytes(), "bytes the worker read from the sockets itself");
            link.hostInputServed(false);
        }
    }

    private SocketChannel connect(final Path path) throws Exception {
        final SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX);
        peer.connect(UnixDomainSocketAddress.of(path));
        await("the chardev sees the peer").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(1))
            .until(chardev::isOpen);
        return peer;
    }

    /** As the worker: the event loop lends the input and wakes us; take the offer (nothing is written yet). */
    private void awaitLoan(final PortLink link) {
        while (!link.hasDataFromHost()) {
            worker.await(link);
        }
    }

    /** As the worker: fill guest buffers until {@code count} bytes came, waiting on the epoll between reads. */
    private byte[] readAsWorker(final PortLink link, final int count) {
        final ByteArrayOutputStream got = new ByteArrayOutputStream();
        while (got.size() < count) {
            final int n = link.hasDataFromHost() ? link.readFromHost(guest.addressOffset(), guest.capacity()) : 0;
            for (int i = 0; i < n; i++) {
                got.write(guest.getByte(i));
            }
            if (n == 0) {
                worker.await(link);
            }
        }
        return got.toByteArray();
    }

    private static void write(final SocketChannel peer, final String text) throws Exception {
        final ByteBuffer b = ByteBuffer.wrap(bytes(text));
        while (b.hasRemaining()) {
            peer.write(b);
        }
    }

    private static byte[] bytes(final String text) {
        return text.getBytes(StandardCharsets.US_ASCII);
    }
}
