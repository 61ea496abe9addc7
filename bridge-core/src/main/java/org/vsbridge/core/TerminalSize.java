package org.vsbridge.core;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.chardev.ChardevBackend;
import org.vsbridge.chardev.ChardevKind;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.console.ConsoleDevice;
import org.vsbridge.libc.Tty;

/**
 * The size of the terminal the bridge runs in, as the console size ({@code VIRTIO_CONSOLE_F_SIZE}) of the console
 * ports on {@code stdio} (directly or through a {@code mux}) that have no {@code cols}/{@code rows} of their own:
 * read at start, and again on every SIGWINCH, which sends the guest a RESIZE (QEMU reads no size; here the guest
 * can follow the window).
 */
final class TerminalSize {

    private static final Logger LOG = Logger.getLogger(TerminalSize.class.getName());
    /** The guest's output goes to stdout: its window is the size that counts. */
    private static final int FD = 1;

    private record Target(ConsoleDevice device, int nr) {
    }

    private final Executor loop;
    private final List<Target> targets = new ArrayList<>();
    private volatile boolean closed;

    /** Resizes run on {@code loop}, where QMP's {@code vserport-resize} runs too. */
    TerminalSize(final Executor loop) {
        this.loop = loop;
    }

    /** True when {@code chardevId} is {@code stdio} or a {@code mux} on it, and stdout is a terminal. */
    static boolean onTerminal(final String chardevId, final List<ChardevOptions> chardevs) {
        final ChardevOptions o = find(chardevId, chardevs);
        if (o == null) {
            return false;
        }
        final ChardevOptions base = o.backend() instanceof ChardevBackend.Mux mux ? find(mux.chardev(), chardevs) : o;
        return base != null && base.kind() == ChardevKind.STDIO && Tty.isTerminal(FD);
    }

    private static ChardevOptions find(final String id, final List<ChardevOptions> chardevs) {
        for (final ChardevOptions o : chardevs) {
            if (o.id().equals(id)) {
                return o;
            }
        }
        return null;
    }

    /** Console port {@code nr} of {@code device} takes the terminal's size, now and after each SIGWINCH. */
    void follow(final ConsoleDevice device, final int nr) {
        targets.add(new Target(device, nr));
        final int[] size = Tty.windowSize(FD);
        if (size != null) {
            device.resize(nr, size[0], size[1]);
            LOG.info("console port " + nr + ": terminal size " + size[0] + "x" + size[1]);
        }
    }

    /** Starts listening to SIGWINCH when a port follows the terminal. */
    void start() {
        if (targets.isEmpty()) {
            return;
        }
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("WINCH"), sig -> onSignal());
        } catch (final IllegalArgumentException e) {
            LOG.log(Level.WARNING, "SIGWINCH cannot be handled here: the console size stays as it is", e);
        }
    }

    /** After close no resize is sent (the handler stays installed: the JVM has no way to restore the default). */
    void close() {
        closed = true;
    }

    private void onSignal() {
        if (closed) {
            return;
        }
        try {
            loop.execute(this::resize);
        } catch (final java.util.concurrent.RejectedExecutionException e) {
            // the bridge is closing: no more resizes
        }
    }

    private void resize() {
        final int[] size = Tty.windowSize(FD);
        if (closed || size == null) {
            return;
        }
        for (final Target t : targets) {
            try {
                final int[] now = t.device.size(t.nr);
                if (now[0] != size[0] || now[1] != size[1]) {
                    t.device.resize(t.nr, size[0], size[1]);
                    LOG.fine(() -> "console port " + t.nr + ": terminal resized to " + size[0] + "x" + size[1]);
                }
            } catch (final IllegalArgumentException e) {
                LOG.fine(() -> "console port " + t.nr + " is gone: " + e.getMessage());
            }
        }
    }
}
