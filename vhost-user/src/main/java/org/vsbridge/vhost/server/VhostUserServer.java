package org.vsbridge.vhost.server;

import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.device.WorkerProxy;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.memory.MemoryRegion;
import org.vsbridge.vhost.queue.QueueCounters;

import java.io.IOException;
import java.net.ConnectException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

/**
 * The backend end of a vhost-user socket for one device. Listens on a Unix socket path (or an inherited
 * listening fd), serves one frontend connection at a time on a control thread ({@code vsb-vhost-<name>}), and
 * runs the device's queues on its worker thread ({@code vsb-worker-<name>}).
 *
 * <p>One listener for the process lifetime: after a disconnect every per-connection state (mappings, fds,
 * rings, features) is dropped and the next connection is accepted on the same listener (rust-vmm/vhost#321).
 */
public final class VhostUserServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(VhostUserServer.class.getName());
    private static final int S_IFMT = 0170000;
    private static final int S_IFSOCK = 0140000;

    private final String name;
    private final Path socketPath;
    private final VirtioDevice device;
    private final AtomicInteger connections = new AtomicInteger();
    /** Client mode ({@code --socket-mode client}): connect to a listening frontend instead of listening. */
    private final boolean client;
    /** Client mode: wait between connection attempts and after a disconnect; 0 = one attempt only. */
    private final long reconnectMs;
    private int listenFd;
    /** The identity of the socket file this server bound, or null. */
    private Object ownFile;
    private int stopFd = -1;
    private WorkerProxy worker;
    private Thread control;
    private volatile boolean closed;

    /**
     * Listen on {@code socketPath}; a stale socket file there (nobody listening) is removed at {@link #start()}, a
     * live one is refused with {@link SocketInUseException}.
     */
    public VhostUserServer(final String name, final Path socketPath, final VirtioDevice device) {
        this(name, socketPath, device, false, 0);
    }

    private VhostUserServer(final String name, final Path socketPath, final VirtioDevice device,
                            final boolean client, final long reconnectMs) {
        this.name = name;
        this.socketPath = socketPath;
        this.listenFd = -1;
        this.device = device;
        this.client = client;
        this.reconnectMs = reconnectMs;
    }

    /**
     * Client mode, for frontends that listen (rust-vmm frontends, {@code -chardev socket,server=on} in QEMU):
     * connect to {@code socketPath}; after a failed attempt or a disconnect, try again every {@code reconnectMs}
     * (0: a single attempt, then the server stays idle until closed).
     */
    public static VhostUserServer connecting(final String name, final Path socketPath, final long reconnectMs,
                                             final VirtioDevice device) {
        if (reconnectMs < 0) {
            throw new IllegalArgumentException("reconnect interval must be >= 0 ms, got " + reconnectMs);
        }
        return new VhostUserServer(name, socketPath, device, true, reconnectMs);
    }

    /** Serve on an inherited listening socket (systemd socket activation, {@code --fd}). */
    public VhostUserServer(final String name, final int listenFd, final VirtioDevice device) {
        this.name = name;
        this.socketPath = null;
        this.listenFd = listenFd;
        this.device = device;
        this.client = false;
        this.reconnectMs = 0;
    }

    public String name() {
        return name;
    }

    /** Bind and listen (unless given a listening fd), start the worker and the control thread. */
    public synchronized void start() throws IOException {
        if (control != null || closed) {
            throw new IllegalStateException("vhost-user server " + name + " already started or closed");
        }
        if (socketPath != null && !client) {
            removeStaleSocket(socketPath);
            listenFd = Sockets.unixListen(socketPath, 1);
            ownFile = fileIdentity(socketPath);
        }
        try {
            stopFd = Sys.eventfd();
            worker = new WorkerProxy(name, device);
        } catch (final IOException e) {
            closeListener();
            Sys.closeQuietly(stopFd);
            throw e;
        }
        control = new Thread(this::acceptLoop, "vsb-vhost-" + name);
        control.setDaemon(true);
        control.start();
        LOG.info(() -> name + ": vhost-user backend " + (client ? "connecting to " : "listening on ")
            + (socketPath != null ? socketPath.toString() : "fd " + listenFd) + " (" + device.queueCount()
            + " queues, device id " + device.deviceId() + ")");
    }

    /**
     * The socket path holds a live socket or a file of another kind: refused, never deleted, and retrying will not
     * change it.
     */
    public static final class SocketInUseException extends IOException {

        private static final long serialVersionUID = 1L;

        SocketInUseException(final Path path, final String why) {
            super("Failed to bind socket to " + path + ": Address already in use (" + why + ")");
        }
    }

    /**
     * A socket file nobody listens on (connect refused) is stale and removed; a socket somebody listens on, or any
     * other kind of file, is refused. The same rule as the chardev module's {@code UnixSocketFile}.
     */
    private static void removeStaleSocket(final Path path) throws IOException {
        final int mode;
        try {
            mode = (Integer) Files.getAttribute(path, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        } catch (final NoSuchFileException e) {
            return;
        }
        if ((mode & S_IFMT) != S_IFSOCK) {
            throw new SocketInUseException(path, "a file that is not a socket is there");
        }
        // Non-blocking: a full backlog answers "try again" instead of blocking; only a refusal means nobody listens.
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            probe.configureBlocking(false);
            probe.connect(UnixDomainSocketAddress.of(path));
        } catch (final ConnectException e) {
            Sockets.unlink(path);
            LOG.info(() -> "removed stale socket " + path);
            return;
        } catch (final IOException | RuntimeException e) {
            if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
                return;
            }
        }
        throw new SocketInUseException(path, "another process is listening on it");
    }

    /** The identity (device, inode) of the file at {@code path}, or null. */
    private static Object fileIdentity(final Path path) {
        try {
            return List.of(Files.getAttribute(path, "unix:dev", LinkOption.NOFOLLOW_LINKS),
                Files.getAttribute(path, "unix:ino", LinkOption.NOFOLLOW_LINKS));
        } catch (final IOException | RuntimeException e) {
            return null;
        }
    }

    /** Connections accepted so far (tests wait on it). */
    public int connectionCount() {
        return connections.get();
    }

    /** Kick and call counters per queue. */
    public QueueCounters counters() {
        return worker.counters();
    }

    /** Diagnostics: the worker's view of queue {@code index}. */
    public String describeQueue(final int index) throws IOException {
        return worker.describeQueue(index);
    }

    /** Diagnostics: did queue {@code index} break on a bad guest number. */
    public boolean isQueueBroken(final int index) throws IOException {
        return worker.isBroken(index);
    }

    /** Client mode: connect, retrying every {@link #reconnectMs}; -1 when closed or out of attempts. */
    private int connectLoop(final boolean afterDisconnect) {
        boolean failing = false;
        boolean first = !afterDisconnect;
        while (!closed) {
            if (!first) {
                if (reconnectMs == 0) {
                    LOG.warning(() -> name + ": no reconnect interval set: not connecting to " + socketPath
                        + " again");
                    return -1;
                }
                try {
                    if ((Sys.pollReadable(new int[] {stopFd}, (int) Math.min(reconnectMs, Integer.MAX_VALUE)) & 1)
                        != 0) {
                        return -1;
                    }
                } catch (final IOException e) {
                    pause();
                }
            }
            first = false;
            try {
                return Sockets.unixConnect(socketPath);
            } catch (final IOException e) {
                if (!failing) {
                    LOG.warning(() -> name + ": cannot connect to the frontend (retrying every " + reconnectMs
                        + " ms, logged once): " + e.getMessage());
                }
                failing = true;
            }
        }
        return -1;
    }

    private void acceptLoop() {
        boolean failing = false;
        boolean connectedBefore = false;
        while (!closed) {
            final int conn;
            if (client) {
                conn = connectLoop(connectedBefore);
                if (conn < 0) {
                    break;
                }
                connectedBefore = true;
            } else {
                try {
                    final int ready = Sys.pollReadable(new int[] {listenFd, stopFd}, -1);
                    if ((ready & 2) != 0 || closed) {
                        break;
                    }
                    if ((ready & 1) == 0) {
                        continue;
                    }
                    conn = Sockets.accept(listenFd);
                    failing = false;
                } catch (final IOException e) {
                    if (!failing) {
                        LOG.warning(() -> name + ": accept failed (retrying every 100 ms, logged once): "
                            + e.getMessage());
                    }
                    failing = true;
                    if (closed) {
                        break;
                    }
                    pause();
                    continue;
                }
            }
            connections.incrementAndGet();
            LOG.info(() -> name + ": frontend connected");
            final FrontendConnection connection = new FrontendConnection(name, conn, stopFd, device, worker);
            try {
                connection.serve();
            } catch (final RuntimeException e) {
                LOG.log(java.util.logging.Level.SEVERE, name + ": connection handler failed", e);
            } finally {
                Sys.closeQuietly(conn);
                dropConnectionState(connection.memory());
            }
            LOG.info(() -> name + ": frontend disconnected; waiting for the next one");
        }
    }

    /** Disconnect: stop and reset everything on the worker, then unmap what the connection mapped. */
    private void dropConnectionState(final GuestMemory memory) {
        try {
            worker.reset(true);
        } catch (final IOException e) {
            LOG.severe(() -> name + ": worker did not reset after disconnect (" + e.getMessage()
                + "); keeping guest memory mapped");
            return;
        }
        for (final MemoryRegion r : memory.regions()) {
            try {
                r.unmap();
            } catch (final IOException e) {
                LOG.warning(() -> name + ": " + e.getMessage());
            }
        }
    }

    private static void pause() {
        try {
            Thread.sleep(100); // e.g. EMFILE: do not spin on a listener that stays readable
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void closeListener() {
        if (listenFd >= 0) {
            // Only the file this server bound: another process may have put its own socket there since. Checked
            // while the listener is open: it holds its file's inode, so that number cannot name another file.
            if (socketPath != null && ownFile != null && ownFile.equals(fileIdentity(socketPath))) {
                try {
                    Files.deleteIfExists(socketPath);
                } catch (final IOException e) {
                    LOG.warning(() -> name + ": could not remove " + socketPath + ": " + e.getMessage());
                }
            }
            Sys.closeQuietly(listenFd);
            listenFd = -1;
        }
    }

    /** Stops accepting (the listener closes first, so no frontend connects to a dying backend), ends the
     *  connection, resets the device and stops the worker. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (stopFd >= 0) {
            Sys.eventfdSignal(stopFd);
        }
        if (control != null) {
            // The listener closes only after the control thread left poll(): closing an fd another thread
            // is polling could hand its number to someone else first.
            try {
                control.join(WorkerProxy.COMMAND_TIMEOUT_MS + 1000);
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        closeListener();
        if (worker != null) {
            worker.close();
        }
        Sys.closeQuietly(stopFd);
        stopFd = -1;
        LOG.info(() -> name + ": vhost-user backend closed");
    }
}
