package org.vsbridge.core.qmp;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArraySet;
import java.util.logging.Logger;
import org.vsbridge.chardev.Errno;
import org.vsbridge.chardev.Transports;
import org.vsbridge.chardev.UnixSocketFile;

/**
 * The QMP monitor: a Netty server on a Unix or TCP socket speaking QEMU's Machine Protocol
 * (docs/interop/qmp-spec.rst): greeting, capabilities negotiation, commands, events with timestamps.
 */
public final class QmpServer implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(QmpServer.class.getName());

    private final ObjectMapper json = JsonMapper.builder().enable(JsonWriteFeature.ESCAPE_NON_ASCII).build();
    private final Map<String, QmpCommand> commands = new LinkedHashMap<>();
    private final Set<QmpSession> sessions = new CopyOnWriteArraySet<>();
    private final EventLoopGroup group;
    private final QmpAddress address;
    private final ObjectNode version;
    private final Runnable onQuit;
    private Channel listener;
    private int inheritedFd = -1;
    /** The identity of the unix socket file this monitor bound: removed at close only if it is still there. */
    private Object ownFile;

    public QmpServer(final EventLoopGroup group, final QmpAddress address, final ObjectNode version, final Runnable onQuit) {
        this(group, address, version, onQuit, DEFAULT_MAX_INPUT, DEFAULT_MAX_OUTPUT);
    }

    /**
     * @param maxInput  longest input text a client may send (longer: a parse error, the session goes on)
     * @param maxOutput unread output after which a client is disconnected
     */
    public QmpServer(final EventLoopGroup group, final QmpAddress address, final ObjectNode version, final Runnable onQuit,
                     final int maxInput, final int maxOutput) {
        this.group = group;
        this.address = address;
        this.version = version;
        this.onQuit = onQuit;
        this.maxInput = maxInput;
        this.maxOutput = maxOutput;
    }

    /** See {@link #QmpServer(EventLoopGroup, QmpAddress, ObjectNode, Runnable, int, int)}. */
    public static final int DEFAULT_MAX_INPUT = 10 * 1024 * 1024;
    public static final int DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

    private final int maxInput;
    private final int maxOutput;

    int maxOutput() {
        return maxOutput;
    }

    public ObjectMapper json() {
        return json;
    }

    /** Register a command (before {@link #start()}). */
    public void register(final QmpCommand command) {
        commands.put(command.name(), command);
    }

    Map<String, QmpCommand> commands() {
        return commands;
    }

    private final Map<String, QmpSchema.Type> argumentTypes = new java.util.HashMap<>();
    private final Map<String, QmpSchema.Type> returnTypes = new java.util.HashMap<>();
    private final Map<String, QmpSchema.Type> eventTypes = new LinkedHashMap<>();

    /**
     * The schema of a registered command for query-qmp-schema: its result type, and its argument type when that is
     * not what its declared parameters say (null: the parameters). Commands not described return {}.
     */
    public void describe(final String command, final QmpSchema.Type arguments, final QmpSchema.Type returns) {
        if (arguments != null) {
            argumentTypes.put(command, arguments);
        }
        returnTypes.put(command, returns);
    }

    /** An event this monitor may send, with the type of its data. */
    public void describeEvent(final String event, final QmpSchema.Type data) {
        eventTypes.put(event, data);
    }

    /** query-qmp-schema: qmp_capabilities, the registered commands in order, the described events, their types. */
    public com.fasterxml.jackson.databind.node.ArrayNode schema() {
        final java.util.List<QmpSchema.Entry> entries = new java.util.ArrayList<>();
        entries.add(new QmpSchema.Entry("qmp_capabilities", false,
            QmpSchema.obj("*enable", QmpSchema.arr(QmpSchema.enumOf("oob"))), QmpSchema.EMPTY));
        for (final QmpCommand c : commands.values()) {
            entries.add(new QmpSchema.Entry(c.name(), false,
                argumentTypes.getOrDefault(c.name(), QmpSchema.arguments(c)),
                returnTypes.getOrDefault(c.name(), QmpSchema.EMPTY)));
        }
        for (final Map.Entry<String, QmpSchema.Type> e : eventTypes.entrySet()) {
            entries.add(new QmpSchema.Entry(e.getKey(), true, e.getValue(), null));
        }
        return QmpSchema.build(entries);
    }

    /** The names of the registered commands, in registration order (query-commands). */
    public java.util.List<String> commandNames() {
        return java.util.List.copyOf(commands.keySet());
    }

    public QmpAddress address() {
        return address;
    }

    /**
     * Binds and listens. A unix path that holds a live socket or another kind of file is refused with
     * {@link UnixSocketFile.InUseException}; a stale socket there is replaced. Failures read as one line.
     */
    public void start() throws IOException {
        final ServerBootstrap bootstrap = new ServerBootstrap()
            .group(group)
            .childHandler(new ChannelInitializer<Channel>() {
                @Override
                protected void initChannel(final Channel ch) {
                    ch.pipeline().addLast(new QmpDecoder(maxInput), new QmpSession(QmpServer.this, json));
                }
            });
        if (address.isUnix()) {
            if (!address.uids().isEmpty() && !Transports.isEpoll(group)) {
                throw new IOException("uid= needs SO_PEERCRED from the epoll transport, which is not available");
            }
            final Path path = Path.of(address.path());
            UnixSocketFile.removeIfStale(path);
            try {
                if (address.mode() < 0) {
                    listener = bindUnix(bootstrap, path);
                } else {
                    // Bind under a private name, set the mode, then rename: no client reaches the socket before
                    // its permissions hold.
                    final Path hidden = path.resolveSibling("." + path.getFileName() + ".bind-"
                        + ProcessHandle.current().pid());
                    Files.deleteIfExists(hidden);
                    listener = bindUnix(bootstrap, hidden);
                    Files.setPosixFilePermissions(hidden, permissions(address.mode()));
                    Files.move(hidden, path, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
                }
            } catch (final IOException e) {
                if (listener != null) {
                    listener.close().syncUninterruptibly();
                    listener = null;
                }
                throw new IOException(UnixSocketFile.bindFailure(path, e.getMessage()), e);
            }
            ownFile = UnixSocketFile.identity(path);
        } else {
            bootstrap.channel(Transports.serverSocketChannel(group));
            final io.netty.channel.ChannelFuture bound = bootstrap
                .bind(new java.net.InetSocketAddress(address.host(), address.port())).awaitUninterruptibly();
            if (!bound.isSuccess()) {
                throw new IOException("Failed to find an available port: " + Errno.reason(bound.cause()), bound.cause());
            }
            listener = bound.channel();
        }
        LOG.info("QMP listening on " + address);
    }

    /** Binds {@code bootstrap} to the unix socket {@code file}; a failure's message is its reason alone. */
    private Channel bindUnix(final ServerBootstrap bootstrap, final Path file) throws IOException {
        final io.netty.channel.ChannelFuture bound = Transports.bindUnix(bootstrap, group, file.toString(),
            io.netty.util.NetUtil.SOMAXCONN).awaitUninterruptibly();
        if (!bound.isSuccess()) {
            throw new IOException(Errno.reason(bound.cause()), bound.cause());
        }
        return bound.channel();
    }

    /**
     * Serve on a listening socket inherited from systemd (socket activation, {@code FileDescriptorName=qmp}):
     * AF_UNIX or TCP, already bound and listening. The socket file belongs to systemd and stays at close. Such
     * a monitor may be constructed with a null address. Needs the epoll transport.
     */
    public void startInherited(final int listenFd) throws IOException {
        if (!Transports.isEpoll(group)) {
            throw new IOException("QMP on inherited fd " + listenFd + " needs the epoll transport");
        }
        final boolean unix = org.vsbridge.core.systemd.SocketFds.isUnix(listenFd);
        inheritedFd = listenFd;
        final ServerBootstrap bootstrap = new ServerBootstrap()
            .group(group)
            // active=true: the socket already listens, so no bind() happens; register() starts accepting.
            .channelFactory((io.netty.channel.ChannelFactory<io.netty.channel.ServerChannel>) () -> unix
                ? new io.netty.channel.epoll.EpollServerDomainSocketChannel(listenFd, true)
                : new io.netty.channel.epoll.EpollServerSocketChannel(listenFd))
            .childHandler(new ChannelInitializer<Channel>() {
                @Override
                protected void initChannel(final Channel ch) {
                    ch.pipeline().addLast(new QmpDecoder(maxInput), new QmpSession(QmpServer.this, json));
                }
            });
        try {
            listener = bootstrap.register().sync().channel();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while registering QMP fd " + listenFd, e);
        } catch (final Exception e) {
            throw new IOException("QMP on inherited fd " + listenFd + ": " + e.getMessage(), e);
        }
        LOG.info("QMP listening on inherited fd " + listenFd + (unix ? " (unix)" : " (tcp)"));
    }

    private static java.util.Set<java.nio.file.attribute.PosixFilePermission> permissions(final int mode) {
        final java.util.Set<java.nio.file.attribute.PosixFilePermission> set =
            java.util.EnumSet.noneOf(java.nio.file.attribute.PosixFilePermission.class);
        final java.nio.file.attribute.PosixFilePermission[] bits = java.nio.file.attribute.PosixFilePermission.values();
        for (int i = 0; i < 9; i++) { // OWNER_READ .. OTHERS_EXECUTE, highest bit first
            if ((mode & (0400 >> i)) != 0) {
                set.add(bits[i]);
            }
        }
        return set;
    }

    /** The bound port for a TCP monitor (resolves port 0). */
    public int boundPort() {
        return ((java.net.InetSocketAddress) listener.localAddress()).getPort();
    }

    ObjectNode greeting() {
        final ObjectNode greeting = json.createObjectNode();
        final ObjectNode qmp = greeting.putObject("QMP");
        qmp.set("version", version.deepCopy());
        qmp.putArray("capabilities").add("oob");
        return greeting;
    }

    void sessionOpened(final QmpSession session) {
        sessions.add(session);
    }

    void sessionClosed(final QmpSession session) {
        sessions.remove(session);
    }

    void quitRequested() {
        onQuit.run();
    }

    /** Send an event to every session that finished negotiation. Any thread. */
    public void emit(final String event, final JsonNode data) {
        final ObjectNode message = json.createObjectNode();
        message.put("event", event);
        if (data != null) {
            message.set("data", data);
        }
        final Instant now = Instant.now();
        final ObjectNode timestamp = message.putObject("timestamp");
        timestamp.put("seconds", now.getEpochSecond());
        timestamp.put("microseconds", now.getNano() / 1000);
        for (final QmpSession session : sessions) {
            if (session.isNegotiated()) {
                session.sendEvent(message);
            }
        }
    }

    @Override
    public void close() {
        if (listener != null) {
            if (inheritedFd < 0 && address.isUnix()) {
                try {
                    UnixSocketFile.removeIfOwn(Path.of(address.path()), ownFile);
                } catch (final IOException ignored) {
                    // best effort at shutdown
                }
            }
            listener.close().syncUninterruptibly();
            listener = null;
        }
    }
}
