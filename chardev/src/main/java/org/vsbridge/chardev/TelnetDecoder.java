package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;

/**
 * Telnet input as QEMU's {@code tcp_chr_process_IAC_bytes} handles it: every {@code IAC x y} command is dropped
 * (3 bytes, no subnegotiation parsing), {@code IAC IAC} is a data byte 0xFF, {@code IAC BREAK} is a break event
 * (fired as {@link #BREAK}). With tn3270, {@code IAC EOR/SB/SE} pass through as data and {@code IAC IP/NOP}
 * are dropped as 2-byte commands. Output is not escaped: QEMU sends guest bytes as they are.
 */
final class TelnetDecoder extends ChannelInboundHandlerAdapter {

    /** The user event for IAC BREAK. */
    static final Object BREAK = new Object() {
        @Override
        public String toString() {
            return "IAC BREAK";
        }
    };

    static final int IAC = 255;
    static final int BREAK_CMD = 243;
    private static final int EOR = 239;
    private static final int SE = 240;
    private static final int NOP = 241;
    private static final int IP = 244;
    private static final int SB = 250;

    /** What QEMU sends at connect (telnet): WILL ECHO, WILL SUPPRESS-GO-AHEAD, WILL BINARY, DO BINARY. */
    static final byte[] TELNET_INIT = bytes(255, 251, 1, 255, 251, 3, 255, 251, 0, 255, 253, 0);
    /** What QEMU sends at connect (tn3270, RFC 1576): EOR, BINARY, TERMINAL-TYPE and a request for it. */
    static final byte[] TN3270_INIT = bytes(255, 253, 25, 255, 251, 25, 255, 253, 0, 255, 251, 0, 255, 253, 24,
        255, 250, 24, 1, 255, 240);

    private final boolean tn3270;
    /** QEMU's do_telnetopt: 1 data, 2 after IAC, 3 skipping the option byte. */
    private int state = 1;

    TelnetDecoder(final boolean tn3270) {
        this.tn3270 = tn3270;
    }

    static ByteBuf init(final boolean tn3270) {
        return Unpooled.wrappedBuffer(tn3270 ? TN3270_INIT : TELNET_INIT);
    }

    @Override
    public void channelRead(final ChannelHandlerContext ctx, final Object msg) {
        if (!(msg instanceof ByteBuf in)) {
            ctx.fireChannelRead(msg);
            return;
        }
        // Filter in place: telnet output never outgrows its input. tn3270 can (an IAC EOR split across two
        // reads gives two bytes for one), so it filters into a copy with one byte to spare.
        final ByteBuf out = tn3270 ? ctx.alloc().buffer(in.readableBytes() + 1) : in;
        int w = tn3270 ? 0 : in.readerIndex();
        final int end = in.writerIndex();
        boolean sawBreak = false;
        for (int r = in.readerIndex(); r < end; r++) {
            final int b = in.getByte(r) & 0xFF;
            if (state > 1) {
                if (b == IAC && state == 2) {
                    out.setByte(w++, IAC);
                    state = 1;
                    continue;
                }
                if (b == BREAK_CMD && state == 2) {
                    sawBreak = true;
                    state++;
                } else if (tn3270 && state == 2 && (b == EOR || b == SB || b == SE)) {
                    out.setByte(w++, IAC);
                    out.setByte(w++, b);
                    state++;
                } else if (tn3270 && state == 2 && (b == IP || b == NOP)) {
                    state++;
                }
                state++;
                if (state >= 4) {
                    state = 1;
                }
            } else if (b == IAC) {
                state = 2;
            } else {
                out.setByte(w++, b);
            }
        }
        out.writerIndex(w);
        if (out != in) {
            in.release();
        }
        // QEMU raises the break while it filters, before it hands over the bytes of the same read.
        if (sawBreak) {
            ctx.fireUserEventTriggered(BREAK);
        }
        if (out.isReadable()) {
            ctx.fireChannelRead(out);
        } else {
            out.release();
        }
    }

    private static byte[] bytes(final int... values) {
        final byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }
}
