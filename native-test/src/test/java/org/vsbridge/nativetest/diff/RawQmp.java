package org.vsbridge.nativetest.diff;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.vsbridge.nativetest.kit.Waits;

/**
 * A QMP connection that sends bytes exactly as given (the input-rule cases send broken JSON, invalid UTF-8 and
 * duplicate keys, which a JSON library would refuse to write) and reads one reply line at a time, skipping
 * events. One command at a time: each case waits for its reply before the next is sent.
 */
final class RawQmp implements AutoCloseable {

    private final SocketChannel channel;
    private final java.nio.channels.Selector selector;
    private final ByteBuffer in = ByteBuffer.allocate(1 << 20);
    final String greeting;
    private String broken;

    private RawQmp(final SocketChannel channel) throws IOException {
        this.channel = channel;
        channel.configureBlocking(false);
        selector = java.nio.channels.Selector.open();
        channel.register(selector, java.nio.channels.SelectionKey.OP_READ);
        in.flip();
        greeting = readLine(Duration.ofSeconds(20));
    }

    /** Connects once the socket accepts (the process may still be starting), reads the greeting. */
    static RawQmp connect(final Path socket, final java.util.function.BooleanSupplier alive, final Duration timeout) throws IOException {
        final SocketChannel ch = Waits.upTo(timeout, "QMP at " + socket).until(() -> {
            if (!alive.getAsBoolean()) {
                throw new IOException("the process exited before QMP was up");
            }
            final SocketChannel c = SocketChannel.open(StandardProtocolFamily.UNIX);
            try {
                c.connect(UnixDomainSocketAddress.of(socket));
                return c;
            } catch (final IOException notYet) {
                c.close();
                return null;
            }
        }, java.util.Objects::nonNull);
        return new RawQmp(ch);
    }

    /** Sends {@code bytes} (a line feed is added) and returns the next reply line that is not an event. */
    String send(final byte[] bytes, final Duration timeout) throws IOException {
        if (broken != null) {
            throw new IOException("QMP gave no reply earlier (" + broken + "); the rest of the group cannot run");
        }
        final ByteBuffer b = ByteBuffer.allocate(bytes.length + 1).put(bytes).put((byte) '\n').flip();
        while (b.hasRemaining()) {
            if (channel.write(b) == 0) {
                Thread.onSpinWait();
            }
        }
        while (true) {
            final String line = readLine(timeout);
            if (!line.startsWith("{\"event\"") && !line.startsWith("{\"timestamp\"")) {
                return line;
            }
        }
    }

    /** The next reply line that is not an event, without sending anything. */
    String next(final Duration timeout) throws IOException {
        while (true) {
            final String line = readLine(timeout);
            if (!line.startsWith("{\"event\"") && !line.startsWith("{\"timestamp\"")) {
                return line;
            }
        }
    }

    String send(final String text, final Duration timeout) throws IOException {
        return send(text.getBytes(StandardCharsets.UTF_8), timeout);
    }

    private String readLine(final Duration timeout) throws IOException {
        final long deadline = System.nanoTime() + timeout.toNanos();
        final ByteArrayOutputStream line = new ByteArrayOutputStream();
        while (true) {
            while (in.hasRemaining()) {
                final byte c = in.get();
                if (c == '\n') {
                    final String s = line.toString(StandardCharsets.UTF_8).strip();
                    if (!s.isEmpty()) {
                        return s;
                    }
                    line.reset();
                } else {
                    line.write(c);
                }
            }
            if (System.nanoTime() > deadline) {
                broken = "no reply line within " + timeout;
                throw new IOException("QMP: " + broken);
            }
            in.clear();
            final int n = readWithTimeout(deadline);
            in.flip();
            if (n < 0) {
                throw new IOException("QMP: connection closed");
            }
        }
    }

    private int readWithTimeout(final long deadline) throws IOException {
        final long left = Math.max(1, (deadline - System.nanoTime()) / 1_000_000);
        selector.select(left);
        selector.selectedKeys().clear();
        return channel.read(in);
    }

    @Override
    public void close() throws IOException {
        selector.close();
        channel.close();
    }
}
