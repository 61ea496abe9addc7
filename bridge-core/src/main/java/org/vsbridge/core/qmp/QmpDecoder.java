package org.vsbridge.core.qmp;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.util.List;

/**
 * Turns a QMP input stream into {@link QmpJson.Message}s, as QEMU's JSON streamer does: clients may or may not end
 * a command with a newline, a command may span reads, and after bad input the stream resynchronises by itself.
 * No input is buffered here beyond the token being read (bounded by the input limit).
 */
final class QmpDecoder extends ByteToMessageDecoder {

    private final List<Object> pending = new java.util.ArrayList<>();
    private final QmpJson json;

    /** @param maxText the longest message (QmpServer.DEFAULT_MAX_INPUT): longer is QEMU's size-limit error */
    QmpDecoder(final int maxText) {
        this.json = new QmpJson(maxText, pending::add);
    }

    QmpDecoder() {
        this(QmpServer.DEFAULT_MAX_INPUT);
    }

    private final byte[] chunk = new byte[1 << 16];

    @Override
    protected void decode(final ChannelHandlerContext ctx, final ByteBuf in, final List<Object> out) {
        // In chunks: a ByteBuf read per byte is slow, and very slow under Netty's paranoid leak detection.
        while (in.isReadable()) {
            final int n = Math.min(in.readableBytes(), chunk.length);
            in.readBytes(chunk, 0, n);
            json.feed(chunk, 0, n);
            out.addAll(pending);
            pending.clear();
        }
    }
}
