package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;

/** {@code null}: always open, swallows output (the logfile still records it), never has input. */
final class NullChardev extends AbstractChardev {

    NullChardev(final String id, final EventLoop loop, final Logfile logfile) {
        super(id, ChardevKind.NULL, loop, logfile);
    }

    @Override
    public boolean isOpen() {
        return true;
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        data.release();
        return true;
    }

    @Override
    protected void doClose() {
    }
}
