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

    @Override
    protected void decode(final ChannelHandlerContext ctx, final ByteBuf in, final List<Object> out) {
        while (in.isReadable()) {
            json.feed(in.readUnsignedByte());
            if (!pending.isEmpty()) {
                out.addAll(pending);
                pending.clear();
                return; // one message per call keeps the session's order with its queue of waiting commands
            }
        }
    }
}
