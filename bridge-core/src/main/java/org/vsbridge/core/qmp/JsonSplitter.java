package org.vsbridge.core.qmp;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.ByteToMessageDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * Splits a QMP input stream into JSON texts by bracket depth (strings and escapes honoured), as QEMU's
 * JSON streamer does: clients may or may not end a command with a newline, and a command may span reads.
 * Anything outside a bracketed text is passed on up to the next whitespace so that the session can answer
 * it with a parse error and keep going.
 */
final class JsonSplitter extends ByteToMessageDecoder {

    /** Longest text (QmpServer.DEFAULT_MAX_INPUT: QEMU refuses larger tokens; python's qemu.qmp reads 10 MB lines). */
    private final int maxText;

    private int scanned;
    private int depth;
    private boolean inString;
    private boolean escaped;
    private boolean bareToken;

    JsonSplitter(final int maxText) {
        this.maxText = maxText;
    }

    JsonSplitter() {
        this(QmpServer.DEFAULT_MAX_INPUT);
    }

    @Override
    protected void decode(final ChannelHandlerContext ctx, final ByteBuf in, final List<Object> out) {
        final int start = in.readerIndex();
        final int end = in.writerIndex();
        int i = start + scanned;
        while (i < end) {
            final byte b = in.getByte(i++);
            if (depth == 0 && !bareToken) {
                if (b == ' ' || b == '\t' || b == '\r' || b == '\n') {
                    if (i - 1 == in.readerIndex()) {
                        in.readerIndex(i);
                    }
                    continue;
                }
                if (b == '{' || b == '[') {
                    depth = 1;
                    continue;
                }
                bareToken = true;
                continue;
            }
            if (bareToken) {
                if (b == ' ' || b == '\t' || b == '\r' || b == '\n' || b == '{' || b == '[') {
                    emit(in, i - 1, out);
                    i = in.readerIndex();
                }
                continue;
            }
            if (inString) {
                if (escaped) {
                    escaped = false;
                } else if (b == '\\') {
                    escaped = true;
                } else if (b == '"') {
                    inString = false;
                }
            } else if (b == '"') {
                inString = true;
            } else if (b == '{' || b == '[') {
                depth++;
            } else if (b == '}' || b == ']') {
                if (--depth == 0) {
                    emit(in, i, out);
                    i = in.readerIndex();
                }
            }
        }
        scanned = i - in.readerIndex();
        if (scanned > maxText) {
            in.skipBytes(in.readableBytes());
            resetState();
            out.add(new TooLarge());
        }
    }

    private void emit(final ByteBuf in, final int endExclusive, final List<Object> out) {
        final int length = endExclusive - in.readerIndex();
        // A text that arrived whole in one read is held to the same bound as one that arrives in pieces.
        out.add(length > maxText ? new TooLarge() : in.toString(in.readerIndex(), length, StandardCharsets.UTF_8));
        in.readerIndex(endExclusive);
        resetState();
    }

    private void resetState() {
        scanned = 0;
        depth = 0;
        inString = false;
        escaped = false;
        bareToken = false;
    }

    /** Marker for an input text over the limit. */
    record TooLarge() {
    }
}
