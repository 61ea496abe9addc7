package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import java.util.Objects;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Opens chardevs. Each chardev gets one event loop of the group ({@code group.next()}) and lives on it. Opening
 * may block the caller: a server binds, a client connects, a server with {@code wait} waits for its first
 * client; so {@link #create} must not run on an event loop of this group.
 */
public final class ChardevFactory {

    private static final Logger LOG = Logger.getLogger(ChardevFactory.class.getName());

    private final EventLoopGroup group;
    private final ChardevObjects objects;

    public ChardevFactory(final EventLoopGroup group) {
        this(group, ChardevObjects.NONE);
    }

    /** A factory whose chardevs find TLS credentials, authz objects, other chardevs and named fds in {@code objects}. */
    public ChardevFactory(final EventLoopGroup group, final ChardevObjects objects) {
        this.group = Objects.requireNonNull(group, "group");
        this.objects = Objects.requireNonNull(objects, "objects");
    }

    /** Throws the reason {@code options} cannot be opened by this bridge (kind or option not built), if any. */
    public static void checkSupported(final ChardevOptions options) throws ChardevException {
        options.kind().requireBuilt();
    }

    /**
     * Throws what the options alone say against opening them, without opening anything: a kind this bridge lacks,
     * a port out of range, a unix socket path too long or a server's socket directory missing. What depends on
     * other processes (a port in use, a peer not listening yet) is left to {@link #create}.
     */
    public static void checkOpenable(final ChardevOptions options) throws ChardevException {
        checkSupported(options);
        if (options.backend() instanceof ChardevBackend.Socket socket
            && !(socket.addr() instanceof SocketAddressLegacy.Vsock)) {
            SocketChardev.checkOpenable(socket);
        }
    }

    /** Opens the chardev described by {@code options}: files opened, sockets bound or connected. */
    public Chardev create(final ChardevOptions options) throws ChardevException {
        return create(options, null);
    }

    /**
     * Opens a chardev that is to replace {@code predecessor} (chardev-change): a socket server on the address the
     * predecessor listens on takes over its listening socket.
     */
    public Chardev create(final ChardevOptions options, final Chardev predecessor) throws ChardevException {
        checkSupported(options);
        final EventLoop loop = pickLoop();
        final Logfile logfile = Logfile.open(options.id(), options.logfile(), options.logappend());
        try {
            final Chardev chardev = open(options, loop, logfile, objects, predecessor);
            LOG.log(Level.INFO, "chardev ''{0}'' ({1}) created: {2}",
                new Object[] {options.id(), chardev.kind(), chardev.filename()});
            return chardev;
        } catch (final ChardevException | RuntimeException e) {
            if (logfile != null) {
                logfile.close();
            }
            throw e;
        }
    }

    private static Chardev open(final ChardevOptions options, final EventLoop loop, final Logfile logfile,
                                final ChardevObjects objects, final Chardev predecessor) throws ChardevException {
        final String id = options.id();
        final ChardevBackend b = options.backend();
        if (b instanceof ChardevBackend.Socket socket) {
            // Before anything is bound or connected, as QEMU: the credentials, then the address type.
            SocketRules.tlsCreds(socket, objects);
            if (socket.addr() instanceof SocketAddressLegacy.Vsock) {
                return VsockChardev.open(id, loop, logfile, socket);
            }
            return SocketChardev.open(id, loop, logfile, socket, objects,
                predecessor instanceof SocketChardev s ? s : null);
        }
        if (b instanceof ChardevBackend.File file) {
            return FileChardev.open(id, loop, logfile, file);
        }
        if (b instanceof ChardevBackend.Null) {
            return new NullChardev(id, loop, logfile);
        }
        if (b instanceof ChardevBackend.Stdio stdio) {
            return StdioChardev.open(id, loop, logfile, stdio.signal());
        }
        if (b instanceof ChardevBackend.Ringbuf ring) {
            return new RingbufChardev(id, ChardevKind.RINGBUF, loop, logfile, ring.size());
        }
        if (b instanceof ChardevBackend.Memory ring) {
            return new RingbufChardev(id, ChardevKind.MEMORY, loop, logfile, ring.size());
        }
        if (b instanceof ChardevBackend.Udp udp) {
            return UdpChardev.open(id, loop, logfile, udp);
        }
        if (b instanceof ChardevBackend.Mux mux) {
            if (logfile != null) {
                throw new ChardevException("mux: 'logfile' belongs to the base chardev");
            }
            return MuxChardev.open(id, mux, objects);
        }
        if (b instanceof ChardevBackend.Hub hub) {
            return HubChardev.open(id, logfile, hub, objects);
        }
        if (b instanceof ChardevBackend.Pty pty) {
            return PtyChardev.open(id, loop, logfile, pty);
        }
        if (b instanceof ChardevBackend.Serial serial) {
            return SerialChardev.open(id, loop, logfile, serial);
        }
        if (b instanceof ChardevBackend.Pipe pipe) {
            return PipeChardev.open(id, loop, logfile, pipe);
        }
        // checkSupported() let a kind through that has no implementation: say so rather than guess.
        b.kind().requireBuilt();
        throw new ChardevException("the bridge does not support chardev backend '" + b.kind().qapiName() + "' yet");
    }

    /** The next loop of the group, skipping the caller's own loop when the group has another one. */
    private EventLoop pickLoop() {
        EventLoop loop = group.next();
        for (int i = 0; i < 64 && loop.inEventLoop(); i++) {
            final EventLoop other = group.next();
            if (other == loop) {
                break;
            }
            loop = other;
        }
        return loop;
    }
}
