package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/** Test helpers: buffers and running code on a chardev's event loop. */
final class ByteBufs {

    private ByteBufs() {
    }

    static ByteBuf of(final String s) {
        return Unpooled.copiedBuffer(s, StandardCharsets.ISO_8859_1);
    }

    static byte[] bytes(final ByteBuf b) {
        final byte[] out = new byte[b.readableBytes()];
        b.getBytes(b.readerIndex(), out);
        return out;
    }

    static <T> T on(final Chardev c, final Callable<T> task) throws Exception {
        return c.eventLoop().submit(task).get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
    }

    static void run(final Chardev c, final Runnable task) throws Exception {
        c.eventLoop().submit(task).get(RecordingFrontend.TIMEOUT_S, TimeUnit.SECONDS);
    }

    static boolean write(final Chardev c, final String s) throws Exception {
        return on(c, () -> c.write(of(s)));
    }
}
