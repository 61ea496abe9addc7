package org.vsbridge.vhost.fuzz;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.server.VhostUserServer;
import org.vsbridge.vhost.testing.LoopbackDevice;
import org.vsbridge.vhost.testing.TestGuestMemory;
import org.vsbridge.vhost.testing.VhostUserClient;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The vhost-user message decoder and state machine, fed whole sessions of fuzzed messages over a real Unix
 * socket (with real eventfds and a real memfd attached where the input says so). After each session the server
 * must still serve the next frontend.
 */
class MessageFuzzTest {

    private static final int QUEUES = 4;
    private static VhostUserServer server;
    private static Path socket;
    private static TestGuestMemory mem;

    private static synchronized void setUp() {
        if (server == null) {
            try {
                final Path dir = Files.createTempDirectory("vhost-fuzz");
                socket = dir.resolve("b.sock");
                server = new VhostUserServer("fuzz", socket, new LoopbackDevice(QUEUES, 256,
                    VhostUserClient.F_VERSION_1 | VhostUserClient.F_INDIRECT_DESC | VhostUserClient.F_EVENT_IDX, 12));
                server.start();
                mem = new TestGuestMemory(1 << 20);
                Runtime.getRuntime().addShutdownHook(new Thread(server::close));
            } catch (final IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @FuzzTest(maxDuration = "60s")
    void session(final FuzzedDataProvider data) throws IOException {
        setUp();
        try (VhostUserClient c = VhostUserClient.connect(socket)) {
            for (int m = 0; m < 24 && data.remainingBytes() > 0; m++) {
                final int request = data.consumeBoolean() ? data.consumeInt(0, 45) : data.consumeInt();
                final int flags = data.consumeInt(0, 7) == 0 ? data.consumeInt() : VhostUserClient.FLAGS
                    | (data.consumeBoolean() ? VhostUserClient.NEED_REPLY : 0);
                final int size = data.consumeInt(0, 80);
                final byte[] payload = data.consumeBytes(size);
                final boolean lie = data.consumeInt(0, 15) == 0; // header size that disagrees with the bytes sent
                final ByteBuffer msg = ByteBuffer.allocate(12 + payload.length).order(ByteOrder.LITTLE_ENDIAN);
                msg.putInt(request).putInt(flags).putInt(lie ? data.consumeInt() : payload.length).put(payload);
                final int fdKind = data.consumeInt(0, 3);
                final int efd = fdKind == 1 || fdKind == 3 ? Sys.eventfd() : -1;
                try {
                    final int[] fds = switch (fdKind) {
                        case 1 -> new int[] {efd};
                        case 2 -> new int[] {mem.fd()};
                        case 3 -> new int[] {efd, mem.fd(), efd};
                        default -> new int[0];
                    };
                    Sockets.sendMsg(c.fd(), msg.array(), 0, msg.capacity(), fds);
                } catch (final IOException e) {
                    break; // the backend hung up on a stream it could no longer trust: allowed
                } finally {
                    if (efd >= 0) {
                        Sys.close(efd);
                    }
                }
            }
        }
        // Whatever that was, the next frontend is served.
        try (VhostUserClient next = VhostUserClient.connect(socket)) {
            assertEquals(QUEUES, next.getQueueNum());
        }
    }
}
