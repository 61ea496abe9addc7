package org.vsbridge.core.port;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevFactory;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.Transports;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.console.PortSpec;

/**
 * Guest output through a real unix-socket chardev to a real peer that reads in fits and starts, so that the
 * worker's direct writes, the socket refusing part of a batch, the ring and the event loop's hand-back all take
 * turns many times. The test thread plays the device worker by the {@code PortChannel} contract: batches of
 * "descriptors" of 1000 bytes (or 40,000: above the size written at once) in a few reused slots of native memory, each slot scribbled over as soon as its batch's
 * {@code flushToHost} returns (that is when the guest may reuse it). The peer checks every byte against the
 * stream's pattern: a byte read from a released slot, or bytes overtaking others, fail it.
 */
@Timeout(value = 5, unit = TimeUnit.MINUTES) // a safety net for a hang, never a performance bound
class PortLinkDirectOutputTest {

    /** What DirectWriter reads too: guest buffers of this size or more are written at once, as in exact delivery. */
    private static final int WRITE_NOW_MIN = Integer.getInteger("vsb.writeNowMin", 32 * 1024);
    private static final int SLOTS = 32;
    private static final long TOTAL = 48_000_000L; // whole chunks
    /** What PortLink reads too: {@code -Dvsb.directOutput=false} turns direct output off. */
    private static final boolean DIRECT_OUTPUT = !"false".equals(System.getProperty("vsb.directOutput"));

    @TempDir
    Path dir;
    private EventLoopGroup group;
    private Chardev chardev;
    /** The test thread's epoll, as the device worker's. */
    private TestWorkerEpoll worker;

    @BeforeEach
    void start() {
        assumeTrue(Transports.epollAvailable(), "direct output needs the epoll transport");
        group = Transports.newEventLoopGroup(1, "test-io");
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

    private static byte pattern(final long offset) {
        final int h = (int) (offset >>> 3) * 0x9E3779B1;
        return (byte) ((h >>> 24) ^ offset);
    }

    /**
     * {@code exact}: the INFLIGHT_SHMFD mode, where a write counts only once the socket took it. Then nothing may
     * wait in the ring behind the worker's back: after the connection's first direct write, every byte the link
     * reports taken is a byte the socket took. {@code watch}: the engine watches a full socket for the worker (as
     * the device worker's epoll does); without it, the link leaves direct output for the ring path at the first
     * full socket, and every byte still arrives in order.
     */
    @ParameterizedTest(name = "exact delivery {0}, engine watches sockets {1}")
    @CsvSource({"false,true,1000", "false,false,1000", "true,true,1000", "true,false,1000", "false,true,40000",
        "false,false,40000"})
    void everyByteInOrderThroughDirectWritesAndTheRing(final boolean exact, final boolean watch, final int chunk)
        throws Exception {
        final Path path = dir.resolve("p.sock");
        chardev = new ChardevFactory(group).create(ChardevOptions.parse("socket,id=c1,path=" + path
            + ",server=on,wait=off"));
        final PortSpec spec = new PortSpec(1, "p1", "org.test.1", false);
        final PortLink link = new PortLink(spec, 64 * 1024, 64 * 1024);
        final ConsoleDevice device = new ConsoleDevice("t", 2, List.of(spec), nr -> link, (p, open) -> { });
        // The engine's part, as the device worker's: an epoll with the wake-up eventfd (hostSpaceAvailable among
        // others) and, when allowed, a one-shot watch of the full socket.
        worker = new TestWorkerEpoll(watch);
        device.attach(worker.context());
        link.bind(device, chardev);

        final SocketChannel peer = SocketChannel.open(StandardProtocolFamily.UNIX);
        peer.connect(UnixDomainSocketAddress.of(path));
        final CompletableFuture<Long> checked = CompletableFuture.supplyAsync(() -> readAndCheck(peer));
        // The chardev reports the connection on its event loop; direct output starts from then on.
        await("the chardev sees the peer").atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(1))
            .until(chardev::isOpen);

        link.setExactDelivery(exact);
        long ringPrefix = -1; // exact: bytes that went through the ring before direct output started
        final UnsafeBuffer slots = new UnsafeBuffer(ByteBuffer.allocateDirect(SLOTS * chunk));
        final SplittableRandom random = new SplittableRandom(7);
        long next = 0; // stream offset of the next byte to hand over
        int slot = 0;
        int heldOffset = -1; // a slot the ring could not finish: resume it, do not refill it
        long fullRing = 0;
        while (next < TOTAL) {
            final int chains = 1 + random.nextInt(SLOTS);
            final int first = slot;
            int used = 0;
            boolean blocked = false;
            for (int c = 0; c < chains && next < TOTAL; c++) {
                final int s = (first + c) % SLOTS;
                final long base = s * (long) chunk;
                int offset = 0;
                if (c == 0 && heldOffset >= 0) {
                    offset = heldOffset;
                } else {
                    for (int i = 0; i < chunk; i++) {
                        slots.putByte((int) base + i, pattern(next + i));
                    }
                }
                final int want = chunk - offset;
                final int taken = link.writeToHost(slots.addressOffset() + base + offset, want);
                next += taken;
                if (exact && watch && link.directBytes() > 0) {
                    if (ringPrefix < 0) {
                        ringPrefix = next - link.directBytes();
                    }
                    assertEquals(ringPrefix, next - link.directBytes(), "bytes taken but not in the socket");
                }
                if (taken < want) {
                    heldOffset = offset + taken;
                    blocked = true;
                    break;
                }
                heldOffset = -1;
                used++;
            }
            link.flushToHost();
            // The batch's used entries are published now: the guest may reuse those slots at once.
            for (int c = 0; c < used; c++) {
                final int s = (first + c) % SLOTS;
                slots.setMemory(s * chunk, chunk, (byte) 0xEE);
            }
            slot = (first + used) % SLOTS;
            if (blocked) {
                fullRing++;
                // As the device worker: wait for a wake-up (hostSpaceAvailable; one that came since the short write
                // counts) or for the watched socket to take bytes again.
                worker.await(link);
            }
        }
        assertEquals(TOTAL, checked.get(2, TimeUnit.MINUTES), "bytes the peer checked");
        final long direct = link.directBytes();
        // Exact delivery and large buffers write at once and need a watch of the full socket; without one,
        // direct output stops at the first full socket and the ring carries the rest.
        final boolean writesAtOnce = exact || chunk >= WRITE_NOW_MIN;
        if (!DIRECT_OUTPUT) {
            // -Dvsb.directOutput=false: every byte went through the ring, exact delivery included.
            assertEquals(0, direct, "bytes that went directly with direct output off");
        } else if (writesAtOnce && !watch) {
            assertTrue(direct > 0, "no byte went directly to the socket");
            assertTrue(direct < TOTAL / 2, "direct output went on without a watch: " + direct + " bytes");
        } else if (writesAtOnce) {
            assertTrue(direct > 0, "no byte went directly to the socket");
            assertTrue(worker.watches() > 0, "the socket was never full, so its watch was never tested");
            if (exact) {
                assertEquals(TOTAL - ringPrefix, direct, "bytes that went directly");
            } else {
                assertTrue(direct > TOTAL / 2, "large buffers went through the ring: " + direct + " direct");
            }
        } else {
            // Both paths must have carried bytes, or this test proved nothing about their hand-over.
            assertTrue(direct > 0, "no byte went directly to the socket");
            assertTrue(direct < TOTAL, "every byte went directly; the ring path was never taken");
        }
        assertTrue(fullRing > 0, "the host side never pushed back");
    }

    /** The peer: reads in random sizes with random pauses, checks each byte; returns the bytes checked. */
    private static long readAndCheck(final SocketChannel peer) {
        final SplittableRandom random = new SplittableRandom(11);
        final ByteBuffer buffer = ByteBuffer.allocateDirect(256 * 1024);
        long offset = 0;
        try (peer) {
            while (offset < TOTAL) {
                buffer.clear().limit(1 + random.nextInt(buffer.capacity()));
                final int n = peer.read(buffer);
                if (n < 0) {
                    throw new IOException("EOF after " + offset + " bytes");
                }
                for (int i = 0; i < n; i++) {
                    final byte b = buffer.get(i);
                    if (b != pattern(offset + i)) {
                        throw new IOException(String.format("byte %d is 0x%02x, the pattern says 0x%02x",
                            offset + i, b & 0xff, pattern(offset + i) & 0xff));
                    }
                }
                offset += n;
                if (random.nextInt(8) == 0) {
                    LockSupport.parkNanos(random.nextInt(2_000_000));
                }
            }
            return offset;
        } catch (final IOException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }
}
