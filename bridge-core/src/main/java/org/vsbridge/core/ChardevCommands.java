package org.vsbridge.core;

import static org.vsbridge.core.qmp.QmpCommand.Param.optional;
import static org.vsbridge.core.qmp.QmpCommand.Param.required;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.chardev.Authorizer;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevKind;
import org.vsbridge.chardev.ChardevObjects;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.MuxChardev;
import org.vsbridge.chardev.PtyChardev;
import org.vsbridge.chardev.TlsCredentials;
import org.vsbridge.core.objects.ObjectException;
import org.vsbridge.core.objects.ObjectSpec;
import org.vsbridge.core.port.PortLink;
import org.vsbridge.core.qmp.QmpCommand;
import org.vsbridge.core.qmp.QmpCommand.Type;
import org.vsbridge.core.qmp.QmpException;
import org.vsbridge.core.qmp.QmpServer;

/**
 * Live chardev management over QMP, with QEMU's results and wording: {@code chardev-add}, {@code chardev-change},
 * {@code chardev-remove}, {@code chardev-send-break}, and {@code object-add}/{@code object-del} for the TLS and
 * authz objects chardevs name. Opening a chardev blocks (bind, connect, a server's {@code wait}), so add and
 * change run on the bridge's chardev opener thread and answer asynchronously; the QMP event loop never waits.
 */
final class ChardevCommands {

    private static final Logger LOG = Logger.getLogger(ChardevCommands.class.getName());

    /** The commands registered here, for query-commands. */
    static final String[] NAMES = {"chardev-add", "chardev-change", "chardev-remove", "chardev-send-break",
        "object-add", "object-del"};

    /** Ids being opened by chardev-add right now: a second add of the same id is a duplicate at once. */
    private static final Set<String> OPENING = ConcurrentHashMap.newKeySet();

    private ChardevCommands() {
    }

    /** What the bridge's chardevs look up by id: objects of the registry, other chardevs (mux, hub). */
    static ChardevObjects lookups(final Bridge bridge) {
        return new ChardevObjects() {
            @Override
            public TlsCredentials tlsCreds(final String id) throws ChardevException {
                return bridge.objects().tlsCreds(id);
            }

            @Override
            public Authorizer authz(final String id) throws ChardevException {
                return bridge.objects().authz(id);
            }

            @Override
            public Chardev chardev(final String id) {
                return bridge.chardevs().get(id);
            }

            @Override
            public boolean quit() {
                bridge.quit();
                return true;
            }
        };
    }

    static void register(final QmpServer qmp, final Bridge bridge) {
        final Map<String, QmpCommand.Param> idAndBackend = QmpCommand.ordered("id", required(Type.STRING),
            "backend", required(Type.OBJECT));
        qmp.register(new QmpCommand("chardev-add", idAndBackend,
            (QmpCommand.AsyncHandler) args -> add(bridge, args.get("id").asText(), args.get("backend"))));
        qmp.register(new QmpCommand("chardev-change", idAndBackend,
            (QmpCommand.AsyncHandler) args -> change(bridge, args.get("id").asText(), args.get("backend"))));
        qmp.register(new QmpCommand("chardev-remove", Map.of("id", required(Type.STRING)),
            (QmpCommand.AsyncHandler) args -> remove(bridge, args.get("id").asText())));
        qmp.register(new QmpCommand("chardev-send-break", Map.of("id", required(Type.STRING)), args -> {
            final String id = args.get("id").asText();
            final Chardev c = bridge.chardevs().get(id);
            if (c == null) {
                throw QmpException.generic("Chardev '" + id + "' not found");
            }
            c.eventLoop().execute(c::sendBreak);
            return QmpCommands.json().createObjectNode();
        }));
        // object-add takes the properties of every type it creates; ObjectSpec checks them per type.
        final Map<String, QmpCommand.Param> objectProps = QmpCommand.orderedEntries(
            Map.entry("qom-type", required(Type.STRING)), Map.entry("id", required(Type.STRING)),
            Map.entry("dir", optional(Type.STRING)), Map.entry("endpoint", optional(Type.STRING)),
            Map.entry("verify-peer", optional(Type.BOOL)), Map.entry("sanity-check", optional(Type.BOOL)),
            Map.entry("priority", optional(Type.STRING)), Map.entry("passwordid", optional(Type.STRING)),
            Map.entry("identity", optional(Type.STRING)), Map.entry("policy", optional(Type.STRING)),
            Map.entry("rules", optional(Type.ANY)));
        qmp.register(new QmpCommand("object-add", objectProps, args -> {
                try {
                    bridge.objects().add(ObjectSpec.fromQmp(args));
                } catch (final ObjectException e) {
                    throw QmpException.generic(e.getMessage());
                }
                return QmpCommands.json().createObjectNode();
            }));
        qmp.register(new QmpCommand("object-del", Map.of("id", required(Type.STRING)), args -> {
            try {
                bridge.objects().delete(args.get("id").asText());
            } catch (final ObjectException e) {
                throw QmpException.generic(e.getMessage());
            }
            return QmpCommands.json().createObjectNode();
        }));
    }

    // ------------------------------------------------------------------ chardev-add

    private static CompletionStage<JsonNode> add(final Bridge bridge, final String id, final JsonNode backend) {
        final ChardevOptions options;
        try {
            options = ChardevOptions.fromQapi(id, backend);
        } catch (final ChardevException e) {
            return failed(e.isInput() ? e.getMessage() : "Failed to add chardev '" + id + "': " + e.getMessage());
        }
        if (bridge.chardevs().containsKey(id) || !OPENING.add(id)) {
            return failed("Chardev with id '" + id + "' already exists");
        }
        return open(bridge, options, "Failed to add chardev '" + id + "': ", null).handle((chardev, failure) -> {
            try {
                if (failure != null) {
                    throw new java.util.concurrent.CompletionException(unwrap(failure));
                }
                if (bridge.chardevs().putIfAbsent(id, chardev) != null) {
                    chardev.close();
                    throw new java.util.concurrent.CompletionException(
                        QmpException.generic("Chardev with id '" + id + "' already exists"));
                }
                LOG.info(() -> "chardev-add '" + id + "': " + chardev.filename());
                return result(chardev);
            } finally {
                OPENING.remove(id);
            }
        });
    }

    /** {@code {}} or, for a pty, {@code {"pty": "/dev/pts/N"}}. */
    private static JsonNode result(final Chardev chardev) {
        final ObjectNode ret = QmpCommands.json().createObjectNode();
        if (chardev instanceof PtyChardev pty) {
            ret.put("pty", pty.slavePath());
        }
        return ret;
    }

    /**
     * Opens on the opener thread; a failure is a GenericError with {@code prefix} before the reason. A socket server
     * that replaces {@code predecessor} (or null) on the same address takes over its listening socket.
     */
    private static CompletableFuture<Chardev> open(final Bridge bridge, final ChardevOptions options,
                                                   final String prefix, final Chardev predecessor) {
        final CompletableFuture<Chardev> f = new CompletableFuture<>();
        try {
            bridge.chardevOpener().execute(() -> {
                try {
                    f.complete(bridge.factory().create(options, predecessor));
                } catch (final ChardevException e) {
                    f.completeExceptionally(QmpException.generic(prefix + e.getMessage()));
                } catch (final RuntimeException e) {
                    LOG.log(Level.WARNING, "opening chardev '" + options.id() + "' failed", e);
                    f.completeExceptionally(QmpException.generic(prefix + e));
                }
            });
        } catch (final RejectedExecutionException e) {
            f.completeExceptionally(QmpException.generic(prefix + "the bridge is shutting down"));
        }
        return f;
    }

    // ------------------------------------------------------------------ chardev-change

    private static CompletionStage<JsonNode> change(final Bridge bridge, final String id, final JsonNode backend) {
        final Chardev old = bridge.chardevs().get(id);
        if (old == null) {
            return failed("Chardev '" + id + "' does not exist");
        }
        ChardevOptions options = null;
        ChardevException invalid = null;
        try {
            options = ChardevOptions.fromQapi(id, backend);
        } catch (final ChardevException e) {
            if (e.isInput()) {
                return failed(e.getMessage()); // QEMU's QAPI input check, before the command runs
            }
            // Any other check of the new backend is part of opening it: in QEMU it comes after the checks below.
            invalid = e;
        }
        // As QEMU: a mux or hub cannot be swapped; any chardev may become one.
        if (old instanceof MuxChardev || old.kind().equals(ChardevKind.HUB.qapiName())) {
            return failed("For mux or hub device hotswap is not supported yet");
        }
        final PortLink link = bridge.linkOf(id);
        if (link == null && old.isBusy()) {
            // Its user is a mux or hub built on it, which cannot follow a swap.
            return failed("Chardev user does not support chardev hotswap");
        }
        if (link == null) {
            return replaceUnused(bridge, id, old, options, invalid);
        }
        if (invalid != null) {
            return failed(invalid.getMessage()); // the port keeps its chardev
        }
        return open(bridge, options, "", old).thenApplyAsync(next -> {
            try {
                // A mux hands the port one of its frontend views.
                link.rebind(next.newFrontendView());
            } catch (final ChardevException | RuntimeException e) {
                LOG.log(Level.WARNING, "chardev-change ''{0}'': rolled back: {1}", new Object[] {id, e.getMessage()});
                next.close();
                throw new java.util.concurrent.CompletionException(
                    QmpException.generic("Chardev '" + id + "' change failed"));
            }
            bridge.chardevs().put(id, next);
            old.close();
            LOG.info(() -> "chardev-change '" + id + "': now " + next.filename());
            return result(next);
        }, bridge.chardevOpener());
    }

    /**
     * QEMU's change of a chardev no frontend uses: it is removed, then the new one is added as by chardev-add, so
     * the new one may take what the old one held (a port, a socket file, a pty link). If the new one fails, the id
     * is gone, as in QEMU, also when the new backend's options are invalid ({@code invalid}, else null).
     */
    private static CompletionStage<JsonNode> replaceUnused(final Bridge bridge, final String id, final Chardev old,
                                                           final ChardevOptions options,
                                                           final ChardevException invalid) {
        if (!OPENING.add(id)) {
            return failed("Chardev with id '" + id + "' already exists");
        }
        bridge.chardevs().remove(id, old);
        final String prefix = "Failed to add chardev '" + id + "': ";
        return closeOnItsLoop(old).thenCompose(closed -> invalid != null
                ? CompletableFuture.<Chardev>failedFuture(QmpException.generic(prefix + invalid.getMessage()))
                : open(bridge, options, prefix, null))
            .handle((next, failure) -> {
                try {
                    if (failure != null) {
                        LOG.info(() -> "chardev-change '" + id + "': removed, the new backend failed");
                        throw new java.util.concurrent.CompletionException(unwrap(failure));
                    }
                    if (bridge.chardevs().putIfAbsent(id, next) != null) {
                        next.close();
                        throw new java.util.concurrent.CompletionException(
                            QmpException.generic("Chardev with id '" + id + "' already exists"));
                    }
                    LOG.info(() -> "chardev-change '" + id + "': now " + next.filename());
                    return result(next);
                } finally {
                    OPENING.remove(id);
                }
            });
    }

    // ------------------------------------------------------------------ chardev-remove

    /**
     * Answers once the chardev is closed: what it held (its base's use by a mux or hub, a socket file, a listening
     * port) is free when the reply arrives, as in QEMU, where the removal is done before the reply.
     */
    private static CompletionStage<JsonNode> remove(final Bridge bridge, final String id) {
        final Chardev c = bridge.chardevs().get(id);
        if (c == null) {
            return failed("Chardev '" + id + "' not found");
        }
        if (bridge.linkOf(id) != null || c.isBusy()) {
            return failed("Chardev '" + id + "' is busy");
        }
        bridge.chardevs().remove(id, c);
        LOG.info(() -> "chardev-remove '" + id + "'");
        return closeOnItsLoop(c).thenApply(done -> QmpCommands.json().createObjectNode());
    }

    /**
     * Closes {@code c} on its own event loop (which may be the caller's: nothing here waits for it) and completes
     * when the close is done.
     */
    private static CompletableFuture<Void> closeOnItsLoop(final Chardev c) {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        final Runnable close = () -> {
            try {
                c.close();
            } catch (final RuntimeException e) {
                LOG.log(Level.WARNING, "closing chardev '" + c.id() + "' failed", e);
            } finally {
                done.complete(null);
            }
        };
        try {
            c.eventLoop().execute(close);
        } catch (final RejectedExecutionException e) {
            close.run(); // the loop is gone: close() runs here
        }
        return done;
    }

    private static CompletionStage<JsonNode> failed(final String message) {
        return CompletableFuture.failedFuture(QmpException.generic(message));
    }

    private static Throwable unwrap(final Throwable t) {
        Throwable c = t;
        while (c instanceof java.util.concurrent.CompletionException && c.getCause() != null) {
            c = c.getCause();
        }
        return c;
    }
}
