package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * {@code stdio}: input from the process's stdin (fd 0), output to its stdout (fd 1) written directly, bypassing
 * {@code System.out} so log lines and guest bytes never interleave inside a buffer. One per process, as in QEMU.
 * {@code signal} is accepted; the bridge never puts the terminal in raw mode, so ^C always reaches the process.
 */
final class StdioChardev extends FileChardev {

    private static final AtomicBoolean IN_USE = new AtomicBoolean();

    private StdioChardev(final String id, final EventLoop loop, final Logfile logfile) {
        super(id, ChardevKind.STDIO, loop, logfile, "stdout", new FileOutputStream(FileDescriptor.out).getChannel(),
            false, new FileInputStream(FileDescriptor.in), false);
    }

    static StdioChardev open(final String id, final EventLoop loop, final Logfile logfile)
        throws ChardevException {
        if (!IN_USE.compareAndSet(false, true)) {
            throw new ChardevException("cannot use stdio by multiple character devices");
        }
        return new StdioChardev(id, loop, logfile);
    }

    @Override
    protected void doClose() {
        super.doClose();
        IN_USE.set(false);
    }
}
