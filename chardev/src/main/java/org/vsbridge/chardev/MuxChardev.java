package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoop;
import java.nio.charset.StandardCharsets;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code mux}: up to {@link #MAX_FRONTENDS} frontends share one backend chardev, as QEMU's char-mux. Each
 * frontend gets its own {@link View} from {@link #newFrontendView()}, a one-frontend {@link Chardev}. Output of
 * every view goes to the backend; input goes to the focused view only, and QEMU's escape keys (Ctrl-A, then)
 * act on the mux: {@code c} moves the focus to the next view, {@code b} is a break to the focused frontend,
 * {@code h} or {@code ?} prints the keys, Ctrl-A sends a literal Ctrl-A. {@code x} (QEMU: quit the emulator)
 * stops the bridge when the backend is {@code stdio}, the terminal the bridge was started from (QEMU's
 * {@code -nographic} console; {@link ChardevObjects#quit()}); on any other backend it is logged and ignored: a key
 * typed by a peer of a socket must not stop the bridge and every other port. {@code s} and {@code t} (disk commit,
 * timestamps) have no meaning here and are ignored, as any other key after Ctrl-A. The backend's OPENED/CLOSED go
 * to every view. The first view has the focus.
 *
 * <p>Everything runs on the backend's event loop; the mux is the backend's one frontend.
 */
public final class MuxChardev implements Chardev, ChardevFrontend {

    private static final Logger LOG = Logger.getLogger(MuxChardev.class.getName());

    /** QEMU's MAX_MUX. */
    public static final int MAX_FRONTENDS = 4;
    /** Ctrl-A, QEMU's default escape character. */
    static final int ESCAPE = 0x01;

    private static byte[] help(final boolean canQuit) {
        return ("\r\n"
            + "C-a h    print this help\r\n"
            + (canQuit ? "C-a x    stop vhost-serial-bridge\r\n" : "C-a x    exit emulator (ignored here)\r\n")
            + "C-a b    send break\r\n"
            + "C-a c    switch the input focus to the next port\r\n"
            + "C-a C-a  sends C-a\r\n").getBytes(StandardCharsets.US_ASCII);
    }

    private final String id;
    private final Chardev backend;
    /** C-a x: stops the process ({@code stdio} backends only), or null when the key is ignored. */
    private final ChardevObjects quit;
    private final byte[] help;
    private final View[] views = new View[MAX_FRONTENDS];
    /** Event loop only. */
    private int focus;
    private boolean gotEscape;
    private volatile boolean closed;

    private MuxChardev(final String id, final Chardev backend, final ChardevObjects quit) {
        this.id = id;
        this.backend = backend;
        this.quit = quit;
        this.help = help(quit != null);
    }

    static MuxChardev open(final String id, final ChardevBackend.Mux options, final ChardevObjects objects)
        throws ChardevException {
        final Chardev base = objects.chardev(options.chardev());
        if (base == null) {
            throw new ChardevException("mux: base chardev " + options.chardev() + " not found");
        }
        // A mux on a mux (QEMU accepts it) takes one of the base mux's frontend slots.
        final Chardev backend = base instanceof MuxChardev inner ? inner.newFrontendView() : base;
        if (backend.isBusy()) {
            throw new ChardevException("chardev '" + options.chardev() + "' is already in use");
        }
        final boolean console = ChardevKind.STDIO.qapiName().equals(backend.kind());
        final MuxChardev mux = new MuxChardev(id, backend, console ? objects : null);
        final EventLoop loop = backend.eventLoop();
        try {
            loop.submit(() -> backend.attach(mux)).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChardevException("interrupted while opening mux '" + id + "'");
        } catch (final java.util.concurrent.ExecutionException e) {
            if (backend != base) {
                loop.execute(backend::detach); // the view taken from the base mux goes back
            }
            throw new ChardevException("chardev '" + options.chardev() + "' is already in use");
        }
        return mux;
    }

    /** The chardev every view writes to. */
    public Chardev backend() {
        return backend;
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public String kind() {
        return ChardevKind.MUX.qapiName();
    }

    @Override
    public String filename() {
        return "mux";
    }

    @Override
    public EventLoop eventLoop() {
        return backend.eventLoop();
    }

    @Override
    public boolean isOpen() {
        return backend.isOpen() && !closed;
    }

    @Override
    public synchronized Chardev newFrontendView() throws ChardevException {
        for (int i = 0; i < views.length; i++) {
            if (views[i] == null) {
                views[i] = new View(i);
                return views[i];
            }
        }
        throw new ChardevException("too many uses of multiplexed chardev '" + id + "'");
    }

    @Override
    public synchronized boolean isBusy() {
        for (final View v : views) {
            if (v != null) {
                return true;
            }
        }
        return false;
    }

    private synchronized void release(final View view) {
        if (views[view.index] == view) {
            views[view.index] = null;
        }
    }

    // The mux itself takes no frontend: each frontend has its own view.

    @Override
    public void attach(final ChardevFrontend frontend) {
        throw new IllegalStateException("mux '" + id + "': attach through newFrontendView()");
    }

    @Override
    public void detach() {
    }

    @Override
    public boolean write(final ByteBuf data) {
        return backend.write(data);
    }

    @Override
    public void setReadPaused(final boolean paused) {
    }

    /** chardev-send-break on the mux itself: to the focused view, as QEMU's mux does with an event raised on it
     *  (a break on its base goes to every view, see {@link #breakReceived()}). */
    @Override
    public void sendBreak() {
        breakToFocused();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (eventLoop().inEventLoop()) {
            backend.detach();
            return;
        }
        try {
            eventLoop().submit(backend::detach).await(5, java.util.concurrent.TimeUnit.SECONDS);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (final java.util.concurrent.RejectedExecutionException e) {
            // the loop is gone: nothing left to detach from
        }
    }

    // ------------------------------------------------------------------ from the backend (ChardevFrontend)

    @Override
    public void opened() {
        for (final View v : attachedViews()) {
            v.frontend.opened();
        }
    }

    @Override
    public void closed() {
        for (final View v : attachedViews()) {
            v.frontend.closed();
        }
    }

    @Override
    public void writable() {
        for (final View v : attachedViews()) {
            if (v.blocked) {
                v.blocked = false;
                v.frontend.writable();
            }
        }
    }

    /** A break from the base (chardev-send-break on it, telnet IAC BREAK): every view gets it, as in QEMU. */
    @Override
    public void breakReceived() {
        for (final View v : attachedViews()) {
            v.frontend.breakReceived();
        }
    }

    /** {@code C-a b}: a break to the focused view only. */
    private void breakToFocused() {
        final View v = focused();
        if (v != null) {
            v.frontend.breakReceived();
        }
    }

    /** Input: plain bytes to the focused view in runs; escape sequences act on the mux. */
    @Override
    public void received(final ByteBuf data) {
        try {
            int runStart = data.readerIndex();
            final int end = data.writerIndex();
            for (int i = runStart; i < end; i++) {
                final int b = data.getByte(i) & 0xFF;
                if (!gotEscape && b != ESCAPE) {
                    continue;
                }
                deliver(data, runStart, i - runStart);
                runStart = i + 1;
                if (!gotEscape) {
                    gotEscape = true;
                    continue;
                }
                gotEscape = false;
                escape(b);
            }
            deliver(data, runStart, end - runStart);
        } finally {
            data.release();
        }
    }

    private void escape(final int key) {
        switch (key) {
            case ESCAPE -> deliver(Unpooled.wrappedBuffer(new byte[] {ESCAPE}), 0, 1);
            case 'h', '?' -> backend.write(Unpooled.wrappedBuffer(help));
            case 'b' -> breakToFocused();
            case 'c' -> switchFocus();
            case 'x' -> quitKey();
            default -> LOG.log(Level.FINE, "mux ''{0}'': C-a {1} ignored", new Object[] {id, key});
        }
    }

    private void quitKey() {
        if (quit != null && quit.quit()) {
            LOG.log(Level.INFO, "mux ''{0}'': C-a x typed on the terminal: stopping", id);
            backend.write(Unpooled.copiedBuffer("\r\nvhost-serial-bridge: stopped by C-a x\r\n",
                StandardCharsets.US_ASCII));
            return;
        }
        LOG.log(Level.WARNING, "mux ''{0}'': C-a x (quit) typed on the console, ignored: only a mux on stdio "
            + "stops the bridge", id);
    }

    private void switchFocus() {
        for (int step = 1; step <= MAX_FRONTENDS; step++) {
            final int next = (focus + step) % MAX_FRONTENDS;
            final View v = views[next];
            if (v != null && v.frontend != null) {
                focus = next;
                LOG.log(Level.INFO, "mux ''{0}'': input focus on frontend {1}", new Object[] {id, next});
                updatePause();
                return;
            }
        }
    }

    private void deliver(final ByteBuf source, final int from, final int length) {
        if (length <= 0) {
            return;
        }
        final View v = focused();
        if (v == null) {
            return; // QEMU drops input that no frontend can take
        }
        v.frontend.received(source.retainedSlice(from, length));
    }

    private View focused() {
        final View v = views[focus];
        return v != null && v.frontend != null ? v : null;
    }

    private java.util.List<View> attachedViews() {
        final java.util.List<View> out = new java.util.ArrayList<>(MAX_FRONTENDS);
        for (final View v : views) {
            if (v != null && v.frontend != null) {
                out.add(v);
            }
        }
        return out;
    }

    /** The backend reads only while the focused frontend wants input. */
    private void updatePause() {
        final View v = focused();
        backend.setReadPaused(v == null || v.paused);
    }

    /** One frontend's view of the mux. */
    private final class View implements Chardev {
        final int index;
        ChardevFrontend frontend;
        boolean paused;
        boolean blocked;

        View(final int index) {
            this.index = index;
        }

        @Override
        public String id() {
            return id;
        }

        @Override
        public String kind() {
            return MuxChardev.this.kind();
        }

        @Override
        public String filename() {
            return MuxChardev.this.filename();
        }

        @Override
        public EventLoop eventLoop() {
            return MuxChardev.this.eventLoop();
        }

        @Override
        public boolean isOpen() {
            return MuxChardev.this.isOpen();
        }

        @Override
        public boolean isBusy() {
            return frontend != null;
        }

        @Override
        public void attach(final ChardevFrontend f) {
            if (frontend != null && frontend != f) {
                throw new IllegalStateException("mux '" + id + "' view " + index + " already has a frontend");
            }
            frontend = f;
            if (focused() == null) {
                focus = index;
            }
            if (isOpen()) {
                f.opened();
            }
            updatePause();
        }

        @Override
        public void detach() {
            frontend = null;
            release(this);
            updatePause();
        }

        @Override
        public boolean write(final ByteBuf data) {
            if (closed) {
                data.release();
                return true;
            }
            final boolean ok = backend.write(data);
            if (!ok) {
                blocked = true;
            }
            return ok;
        }

        @Override
        public void setReadPaused(final boolean p) {
            paused = p;
            if (focus == index) {
                updatePause();
            }
        }

        @Override
        public void sendBreak() {
            if (frontend != null) {
                frontend.breakReceived();
            }
        }

        @Override
        public void close() {
            // A view ends with its frontend (detach); the mux and its backend live on.
        }
    }
}
