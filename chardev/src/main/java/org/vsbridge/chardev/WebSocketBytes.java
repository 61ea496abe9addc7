package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.websocketx.BinaryWebSocketFrame;
import io.netty.handler.codec.http.websocketx.ContinuationWebSocketFrame;
import io.netty.handler.codec.http.websocketx.TextWebSocketFrame;
import io.netty.util.ReferenceCountUtil;

/**
 * Between the websocket codec and the chardev: the payload of binary (and text, and continuation) frames in,
 * bytes out as binary frames, as QEMU's websocket channel does.
 */
final class WebSocketBytes extends ChannelDuplexHandler {

    @Override
    public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
        if (msg instanceof BinaryWebSocketFrame || msg instanceof TextWebSocketFrame
            || msg instanceof ContinuationWebSocketFrame) {
            final ByteBuf content = ((io.netty.buffer.ByteBufHolder) msg).content().retain();
            ReferenceCountUtil.release(msg);
            if (content.isReadable()) {
                ctx.fireChannelRead(content);
            } else {
                content.release();
            }
            return;
        }
        ctx.fireChannelRead(msg);
    }

    @Override
    public void write(final ChannelHandlerContext ctx, final Object msg, final ChannelPromise promise) {
        if (msg instanceof ByteBuf b) {
            ctx.write(new BinaryWebSocketFrame(b), promise);
            return;
        }
        ctx.write(msg, promise);
    }
}
