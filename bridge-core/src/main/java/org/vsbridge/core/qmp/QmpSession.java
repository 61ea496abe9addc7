package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One QMP client connection: the greeting, capabilities negotiation, then commands. Runs on the
 * connection's event loop. Malformed input gets an error reply (without id, as QEMU) and the session goes on.
 */
final class QmpSession extends SimpleChannelInboundHandler<Object> {

    private static final Logger LOG = Logger.getLogger(QmpSession.class.getName());

    private final QmpServer server;
    private final ObjectMapper json;
    private ChannelHandlerContext ctx;
    private volatile boolean negotiated;
    /** The client enabled capability oob: exec-oob is accepted (no command of the bridge runs out of band). */
    private boolean oobEnabled;

    QmpSession(final QmpServer server, final ObjectMapper json) {
        this.server = server;
        this.json = json;
    }

    boolean isNegotiated() {
        return negotiated;
    }

    @Override
    public void channelActive(final ChannelHandlerContext context) {
        if (!admitted(context)) {
            context.close();
            return;
        }
        // Unread output beyond this makes the channel unwritable: the client is dropped (channelWritabilityChanged).
        context.channel().config().setWriteBufferWaterMark(
            new io.netty.channel.WriteBufferWaterMark(server.maxOutput() / 2, server.maxOutput()));
        this.ctx = context;
        send(server.greeting());
        server.sessionOpened(this);
    }

    /** The uid allow-list of a unix monitor (QmpAddress uid=), checked with SO_PEERCRED. */
    private boolean admitted(final ChannelHandlerContext context) {
        final QmpAddress address = server.address();
        if (address == null || address.uids().isEmpty()) {
            return true;
        }
        if (!(context.channel() instanceof io.netty.channel.epoll.EpollDomainSocketChannel unix)) {
            LOG.warning("QMP client refused: its uid cannot be checked on " + context.channel().getClass().getSimpleName());
            return false;
        }
        try {
            final io.netty.channel.unix.PeerCredentials peer = unix.peerCredentials();
            if (address.admits(peer.uid())) {
                return true;
            }
            LOG.warning("QMP client refused on " + address + ": uid " + Integer.toUnsignedString(peer.uid())
                + " (pid " + peer.pid() + ") is not in the allow-list " + address.uids());
        } catch (final java.io.IOException e) {
            LOG.warning("QMP client refused on " + address + ": SO_PEERCRED failed: " + e.getMessage());
        }
        return false;
    }

    @Override
    public void channelWritabilityChanged(final ChannelHandlerContext context) {
        if (!context.channel().isWritable() && context.channel().isActive()) {
            LOG.warning("QMP client " + context.channel().remoteAddress() + " does not read its output: more than "
                + server.maxOutput() + " bytes wait for it; closing the connection");
            context.close();
        }
        context.fireChannelWritabilityChanged();
    }

    @Override
    public void channelInactive(final ChannelHandlerContext context) {
        server.sessionClosed(this);
    }

    @Override
    protected void channelRead0(final ChannelHandlerContext context, final Object msg) {
        final QmpJson.Message message = (QmpJson.Message) msg;
        if (message.error() != null) {
            sendError(null, QmpException.generic(message.error()));
            return;
        }
        handle(message.value());
    }

    /** Event loop only: an asynchronous command is running; requests wait here so replies stay in order. */
    private final java.util.ArrayDeque<JsonNode> waiting = new java.util.ArrayDeque<>();
    private boolean running;

    private void handle(final JsonNode input) {
        if (running) {
            waiting.add(input);
            return;
        }
        handleNow(input);
    }

    private void handleNow(final JsonNode input) {
        if (!(input instanceof ObjectNode request)) {
            sendError(null, QmpException.generic("QMP input must be a JSON object"));
            return;
        }
        final JsonNode id = request.get("id");
        // QEMU's checks of the request's members, met in QEMU's order (QmpOrder): exec-oob is a member only once
        // the client enabled the oob capability.
        String execKey = null;
        final java.util.List<String> keys = new java.util.ArrayList<>();
        request.fieldNames().forEachRemaining(keys::add);
        for (final String key : QmpOrder.qdict(keys)) {
            final JsonNode value = request.get(key);
            if (key.equals("execute") || key.equals("exec-oob") && oobEnabled) {
                if (!value.isTextual()) {
                    sendError(id, QmpException.generic("QMP input member '" + key + "' must be a string"));
                    return;
                }
                if (execKey != null) {
                    sendError(id, QmpException.generic("QMP input member '" + key + "' clashes with '" + execKey
                        + "'"));
                    return;
                }
                execKey = key;
            } else if (key.equals("arguments")) {
                if (!value.isObject()) {
                    sendError(id, QmpException.generic("QMP input member 'arguments' must be an object"));
                    return;
                }
            } else if (!key.equals("id")) {
                sendError(id, QmpException.generic("QMP input member '" + key + "' is unexpected"));
                return;
            }
        }
        if (execKey == null) {
            sendError(id, QmpException.generic("QMP input lacks member 'execute'"));
            return;
        }
        final String command = request.get(execKey).asText();
        final boolean oob = execKey.equals("exec-oob");
        ObjectNode arguments = (ObjectNode) request.get("arguments");
        if (arguments == null) {
            arguments = json.createObjectNode();
        }
        final QmpCommand async = negotiated && !oob ? server.commands().get(command) : null;
        if (async != null && async.handler() instanceof QmpCommand.AsyncHandler) {
            try {
                async.checkArguments(arguments);
            } catch (final QmpException e) {
                sendError(id, e);
                return;
            }
            running = true;
            final String name = command;
            async.handler().runAsync(arguments).whenComplete((result, failure) ->
                ctx.executor().execute(() -> asyncDone(name, id, result, failure)));
            return;
        }
        try {
            final JsonNode result = dispatch(command, oob, arguments);
            final ObjectNode reply = json.createObjectNode();
            reply.set("return", result);
            if (id != null) {
                reply.set("id", id);
            }
            send(reply);
            if (command.equals("quit")) {
                server.quitRequested();
            }
        } catch (final QmpException e) {
            sendError(id, e);
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, "QMP command " + command + " failed", e);
            sendError(id, QmpException.generic("Internal error: " + e));
        }
    }

    /** Event loop: the reply of an asynchronous command, then the requests that waited for it. */
    private void asyncDone(final String name, final JsonNode id, final JsonNode result, final Throwable failure) {
        running = false;
        Throwable cause = failure;
        while (cause instanceof java.util.concurrent.CompletionException && cause.getCause() != null) {
            cause = cause.getCause();
        }
        if (cause == null) {
            final ObjectNode reply = json.createObjectNode();
            reply.set("return", result);
            if (id != null) {
                reply.set("id", id);
            }
            send(reply);
        } else if (cause instanceof QmpException e) {
            sendError(id, e);
        } else {
            LOG.log(Level.WARNING, "QMP command " + name + " failed", cause);
            sendError(id, QmpException.generic("Internal error: " + cause));
        }
        while (!running && !waiting.isEmpty()) {
            handleNow(waiting.poll());
        }
    }

    private JsonNode dispatch(final String name, final boolean oob, final ObjectNode arguments) throws QmpException {
        if (name.equals("qmp_capabilities")) {
            if (negotiated) {
                throw new QmpException("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
            }
            if (oob) {
                throw QmpException.generic("The command " + name + " does not support OOB");
            }
            final JsonNode enable = arguments.get("enable");
            boolean withOob = false;
            if (enable != null) {
                if (!enable.isArray()) {
                    throw QmpException.generic("Invalid parameter type for 'enable', expected: array");
                }
                for (int i = 0; i < enable.size(); i++) {
                    final JsonNode capability = enable.get(i);
                    // QEMU's words: the element as 'enable[i]' for its type, but as 'null' for its value.
                    if (!capability.isTextual()) {
                        throw QmpException.generic("Invalid parameter type for 'enable[" + i + "]', expected: string");
                    }
                    if (!capability.asText().equals("oob")) {
                        throw QmpException.generic("Parameter 'null' does not accept value '" + capability.asText()
                            + "'");
                    }
                    withOob = true;
                }
            }
            final String extra = QmpCommand.firstUnexpected(arguments, java.util.Set.of("enable"));
            if (extra != null) {
                throw QmpException.generic("Parameter '" + extra + "' is unexpected");
            }
            oobEnabled = withOob;
            negotiated = true;
            return json.createObjectNode();
        }
        if (!negotiated) {
            throw new QmpException("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
        }
        final QmpCommand command = server.commands().get(name);
        if (command == null) {
            throw new QmpException("CommandNotFound", "The command " + name + " has not been found");
        }
        if (oob) {
            throw QmpException.generic("The command " + name + " does not support OOB");
        }
        command.checkArguments(arguments);
        return command.handler().run(arguments);
    }

    private void sendError(final JsonNode id, final QmpException e) {
        final ObjectNode reply = json.createObjectNode();
        final ObjectNode error = reply.putObject("error");
        error.put("class", e.errorClass());
        error.put("desc", e.getMessage());
        if (id != null) {
            reply.set("id", id);
        }
        send(reply);
    }

    /**
     * Write one event on the connection's event loop, after what it is doing now: an event raised while a command
     * runs (DEVICE_DELETED of a port with no guest) follows that command's reply, as in QEMU.
     */
    void sendEvent(final JsonNode message) {
        final ChannelHandlerContext c = ctx;
        if (c != null && c.executor().inEventLoop()) {
            c.executor().execute(() -> send(message));
        } else {
            send(message);
        }
    }

    /** Write one JSON object and CRLF. Safe from any thread. */
    void send(final JsonNode message) {
        final ChannelHandlerContext c = ctx;
        if (c == null) {
            return;
        }
        final String text = QmpJson.write(message) + "\r\n";
        c.writeAndFlush(c.alloc().buffer(text.length()).writeBytes(text.getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
    }

    @Override
    public void exceptionCaught(final ChannelHandlerContext context, final Throwable cause) {
        LOG.fine(() -> "QMP connection error: " + cause);
        context.close();
    }
}
