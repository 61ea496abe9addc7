package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertFalse;

import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A peer that goes away while its input is paused (the guest is not reading) must still be seen as gone,
 * so that the next peer is served and guest output is not written into a dead connection.
 */
class PausedPeerHangupTest {

    private EventLoopGroup group;

    @BeforeEach
    void setUp() {
        group = Transports.newEventLoopGroup(1, "hangup-test");
    }

    @AfterEach
    void tearDown() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }

    private Chardev pausedServer() throws Exception {
        final Chardev chardev = new ChardevFactory(group).create(
            ChardevOptions.parse("socket,id=t,host=127.0.0.1,port=0,server=on,wait=off"));
        return chardev;
    }

    private static int port(final Chardev chardev) {
        return ((InetSocketAddress) ((SocketChardev) chardev).localAddress()).getPort();
    }

    private static RecordingFrontend attachPaused(final Chardev chardev) throws Exception {
        final RecordingFrontend frontend = new RecordingFrontend(chardev);
        chardev.eventLoop().submit(() -> {
            chardev.attach(frontend);
            chardev.setReadPaused(true);
        }).sync();
        return frontend;
    }

    @Test
    void peerThatClosesWhileInputIsPausedIsSeenAsClosed() throws Exception {
        final Chardev chardev = pausedServer();
        final RecordingFrontend frontend = attachPaused(chardev);
        try (SocketChannel peer = SocketChannel.open(new InetSocketAddress("127.0.0.1", port(chardev)))) {
            frontend.expect("opened");
            final ByteBuffer data = ByteBuffer.allocate(4096);
            while (data.hasRemaining()) {
                peer.write(data);
            }
        }
        frontend.expect("closed");
        assertFalse(chardev.isOpen());
        chardev.eventLoop().submit(chardev::close).sync();
    }

    @Test
    void peerThatResetsWithDataQueuedWhileInputIsPausedIsSeenAsClosed() throws Exception {
        final Chardev chardev = pausedServer();
        final RecordingFrontend frontend = attachPaused(chardev);
        final SocketChannel peer = SocketChannel.open(new InetSocketAddress("127.0.0.1", port(chardev)));
        frontend.expect("opened");
        peer.configureBlocking(false);
        final ByteBuffer data = ByteBuffer.allocate(1 << 20);
        // Fill both socket buffers: the chardev reads nothing.
        for (int idle = 0; idle < 50; ) {
            data.clear();
            idle = peer.write(data) == 0 ? idle + 1 : 0;
        }
        peer.setOption(StandardSocketOptions.SO_LINGER, 0);
        peer.close();
        frontend.expect("closed");
        assertFalse(chardev.isOpen());
        chardev.eventLoop().submit(chardev::close).sync();
    }
}
