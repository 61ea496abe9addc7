package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;

/**
 * One QMP command: its name, its parameters as the QAPI schema declares them, and what it does.
 * Arguments are checked against the parameters before {@link Handler#run} is called, with QEMU's messages.
 */
public record QmpCommand(String name, Map<String, Param> params, Handler handler) {

    /** A declared parameter. */
    public record Param(Type type, boolean required) {
        public static Param required(final Type type) {
            return new Param(type, true);
        }

        public static Param optional(final Type type) {
            return new Param(type, false);
        }
    }

    /** QAPI types we check, with the word QEMU prints in "expected: X". */
    public enum Type {
        STRING("string"), INT("integer"), BOOL("boolean"), OBJECT("object"), ANY("any");

        final String word;

        Type(final String word) {
            this.word = word;
        }

        boolean accepts(final JsonNode value) {
            return switch (this) {
                case STRING -> value.isTextual();
                case INT -> value.isIntegralNumber() && value.canConvertToLong(); // QAPI's int is int64
                case BOOL -> value.isBoolean();
                case OBJECT -> value.isObject();
                case ANY -> true;
            };
        }
    }

    /** The command's body; returns the "return" value (an empty object for none). */
    @FunctionalInterface
    public interface Handler {
        JsonNode run(ObjectNode arguments) throws QmpException;

        /**
         * The reply as a stage: by default {@link #run} at once. A command that blocks (opening a chardev) returns
         * a stage completed later from another thread; the session answers then, and keeps later commands of the
         * same client queued so that replies stay in order. A stage failed with a {@link QmpException} is that
         * error reply.
         */
        default java.util.concurrent.CompletionStage<JsonNode> runAsync(final ObjectNode arguments) {
            try {
                return java.util.concurrent.CompletableFuture.completedFuture(run(arguments));
            } catch (final QmpException e) {
                return java.util.concurrent.CompletableFuture.failedFuture(e);
            }
        }
    }

    /** A command whose reply comes later ({@link Handler#runAsync}); {@link Handler#run} is not used. */
    @FunctionalInterface
    public interface AsyncHandler extends Handler {
        @Override
        java.util.concurrent.CompletionStage<JsonNode> runAsync(ObjectNode arguments);

        @Override
        default JsonNode run(final ObjectNode arguments) throws QmpException {
            throw new IllegalStateException("asynchronous command: use runAsync");
        }
    }

    void checkArguments(final ObjectNode arguments) throws QmpException {
        final var names = arguments.fieldNames();
        while (names.hasNext()) {
            final String name = names.next();
            final Param param = params.get(name);
            if (param == null) {
                throw QmpException.generic("Parameter '" + name + "' is unexpected");
            }
            if (!param.type().accepts(arguments.get(name))) {
                throw QmpException.generic("Invalid parameter type for '" + name + "', expected: " + param.type().word);
            }
        }
        for (final Map.Entry<String, Param> e : params.entrySet()) {
            if (e.getValue().required() && !arguments.has(e.getKey())) {
                throw QmpException.generic("Parameter '" + e.getKey() + "' is missing");
            }
        }
    }
}
