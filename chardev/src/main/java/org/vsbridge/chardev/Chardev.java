package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;

/**
 * A QEMU-style character device backend. One frontend (a port) at a time.
 *
 * <p>Threading: every method except {@link #id()}, {@link #kind()}, {@link #filename()}, {@link #isOpen()}
 * and {@link #eventLoop()} must be called on {@link #eventLoop()}; every {@link ChardevFrontend} callback
 * arrives on it.
 */
public interface Chardev extends AutoCloseable {

    String id();

    /** The QAPI backend kind name, e.g. "socket", "file", "ringbuf". */
    String kind();

    /** The {@code filename} shown by query-chardev, exactly as QEMU prints it (changes with connection state). */
    String filename();

    /** The event loop that owns this chardev. */
    EventLoop eventLoop();

    /** True while the host side is connected (socket: a peer is connected; file/null/ringbuf/stdio: always). */
    boolean isOpen();

    /** Attach the frontend; if the chardev is open, {@link ChardevFrontend#opened()} follows at once. */
    void attach(ChardevFrontend frontend);

    /** Detach the frontend; no callbacks afterwards. */
    void detach();

    /**
     * Write guest output. Takes ownership of {@code data} (releases it). Also records it in the logfile.
     * Returns false when the backend cannot take more now: the frontend then waits for
     * {@link ChardevFrontend#writable()} before writing again. Data written while not open is discarded
     * (only the logfile sees it), as QEMU does.
     */
    boolean write(ByteBuf data);

    /** Stop (true) or resume (false) delivering input to {@link ChardevFrontend#received}: backpressure from the guest. */
    void setReadPaused(boolean paused);

    /**
     * chardev-send-break, as QEMU does it: a break event to this chardev's frontend ({@link
     * ChardevFrontend#breakReceived()}), not a break towards the host peer. A virtio-serial port has no break to
     * give the guest and ignores it, as QEMU's ports do; a {@code mux} gives it to its focused view, and a mux's
     * base to every view, as QEMU's do.
     */
    void sendBreak();

    /**
     * Close, and complete once output already accepted has left (or could not): shutdown waits on this so that
     * guest output the bridge took is not lost with the process. Event loop only.
     */
    default java.util.concurrent.CompletableFuture<Void> closeFlushed() {
        close();
        return java.util.concurrent.CompletableFuture.completedFuture(null);
    }

    /**
     * The chardev a new frontend attaches to: this chardev itself, or for a {@code mux} a fresh per-frontend view
     * (each port still sees a one-frontend chardev). Any thread. Throws when no more frontends fit (QEMU's
     * "too many uses of multiplexed chardev").
     */
    default Chardev newFrontendView() throws ChardevException {
        return this;
    }

    /**
     * True while a frontend uses this chardev (a port, or a mux or hub built on it): {@code chardev-remove}
     * refuses it then ("Chardev 'x' is busy"). Any thread.
     */
    default boolean isBusy() {
        return false;
    }

    /**
     * A descriptor through which the frontend may write guest output to the connected peer itself, bypassing
     * {@link #write}: offered only while a peer is connected and nothing stands between the frontend's bytes and
     * the peer (no TLS, telnet, websocket framing or logfile). Null otherwise. The caller owns and closes it, and
     * must not write through it while bytes it gave to {@link #write} are still queued ({@link #outputIdle()}).
     * Event loop only.
     */
    default DirectOutput openDirectOutput() {
        return null;
    }

    /** True when this chardev's kind and options let a connection offer {@link #openDirectOutput()} (a plain socket
     *  on the epoll transport): a frontend that needs direct output waits for a connection instead of buffering. */
    default boolean offersDirectOutput() {
        return false;
    }

    /**
     * The current connection's input, lent to a frontend that reads the socket itself ({@link DirectInput}), or
     * null when this chardev cannot lend it (the same kinds as {@link #openDirectOutput()}) or has lent it already.
     * From now on the chardev stops reading the connection until {@link #directInputReturned} runs. Event loop only.
     */
    default DirectInput openDirectInput() {
        return null;
    }

    /** Event loop: the reader gave {@code input} back ({@link DirectInput#giveBack()}); read the connection again. */
    default void directInputReturned(final DirectInput input) {
    }

    /** True when nothing given to {@link #write} is still queued inside the backend. Event loop only. */
    default boolean outputIdle() {
        return true;
    }

    /**
     * Event loop: run {@code task} on this chardev's event loop once everything given to {@link #write} so far has
     * left the backend (or could not: the connection closed), so that a frontend waiting for {@link #outputIdle()}
     * is told rather than polling. Runs it at once when the output is idle.
     */
    default void whenOutputFlushed(final Runnable task) {
        task.run();
    }

    /** Close all resources (sockets, files, listeners). Idempotent. */
    @Override
    void close();
}
