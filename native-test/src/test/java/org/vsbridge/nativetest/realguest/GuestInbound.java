package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.atomic.AtomicLong;
import org.vsbridge.nativetest.kit.HostPeer;

/** What a real guest sends on a port, as expectations of the kit's {@link HostPeer}. */
final class GuestInbound {

    private GuestInbound() {
    }

    /** Guest-to-host bulk data, checked against the pattern (a wrong byte is recorded, reading goes on). */
    record Sink(GuestPattern.Sink sink) implements HostPeer.Inbound {
        @Override
        public int accept(final byte[] buf, final int off, final int len, final SocketChannel ch) {
            return sink.accept(buf, off, len);
        }

        @Override
        public boolean isComplete() {
            return sink.isComplete();
        }
    }

    /** Round trips: everything received goes straight back until {@code total} bytes were echoed. */
    static final class Echo implements HostPeer.Inbound {
        private final long total;
        private final AtomicLong echoed = new AtomicLong();

        Echo(final long total) {
            this.total = total;
        }

        @Override
        public int accept(final byte[] buf, final int off, final int len, final SocketChannel ch) throws IOException {
            final int n = (int) Math.min(len, total - echoed.get());
            final ByteBuffer b = ByteBuffer.wrap(buf, off, n);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            echoed.addAndGet(n);
            return n;
        }

        @Override
        public boolean isComplete() {
            return echoed.get() >= total;
        }

        long echoed() {
            return echoed.get();
        }

        long total() {
            return total;
        }
    }
}
