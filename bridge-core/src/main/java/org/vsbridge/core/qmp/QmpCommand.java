package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;

/**
 * One QMP command: its name, its parameters as the QAPI schema declares them, and what it does.
 * Arguments are checked against the parameters before {@link Handler#run} is called, with QEMU's messages.
 */
public record QmpCommand(String name, Map<String, Param> params, Handler handler) {

    /**
     * @param params the parameters in schema order (QEMU reads them in that order, so the first missing or mistyped
     *               one is named): a map of one entry, or an ordered map such as {@link #ordered}
     */
    public QmpCommand {
        if (params.size() > 1 && !(params instanceof java.util.LinkedHashMap) && !(params instanceof java.util.SortedMap)) {
            throw new IllegalArgumentException(name + ": parameters need their schema order (QmpCommand.ordered)");
        }
        params = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(params));
    }

    /**
     * A parameter map holding this key takes any arguments and the handler checks them itself (QEMU's commands
     * with {@code 'gen': false}, such as device_add, whose arguments are a device's properties).
     */
    public static final String ANY_ARGUMENTS = "*";

    /** Parameters in the order given: name, Param, name, Param, ... */
    public static Map<String, Param> ordered(final Object... nameThenParam) {
        final Map<String, Param> map = new java.util.LinkedHashMap<>();
        for (int i = 0; i < nameThenParam.length; i += 2) {
            map.put((String) nameThenParam[i], (Param) nameThenParam[i + 1]);
        }
        return map;
    }

    /** Parameters in the order given. */
    @SafeVarargs
    public static Map<String, Param> orderedEntries(final Map.Entry<String, Param>... entries) {
        final Map<String, Param> map = new java.util.LinkedHashMap<>();
        for (final Map.Entry<String, Param> e : entries) {
            map.put(e.getKey(), e.getValue());
        }
        return map;
    }

    /** A declared parameter; {@code values} lists an enum's members (type STRING), empty for any string. */
    public record Param(Type type, boolean required, java.util.List<String> values) {
        public Param(final Type type, final boolean required) {
            this(type, required, java.util.List.of());
        }

        public static Param required(final Type type) {
            return new Param(type, true);
        }

        public static Param optional(final Type type) {
            return new Param(type, false);
        }

        /** An optional member of an enum type, such as DataFormat. */
        public static Param optionalEnum(final String... values) {
            return new Param(Type.STRING, false, java.util.List.of(values));
        }
    }

    /** QAPI types we check, with the word QEMU prints in "expected: X". */
    public enum Type {
        STRING("string"), INT("integer"), BOOL("boolean"), OBJECT("object"), ARRAY("array"), ANY("any");

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
                case ARRAY -> value.isArray();
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

    /**
     * QEMU's checks, in QEMU's order: each parameter in schema order (missing, wrong type, not a member of its
     * enum), then the first left-over argument in QEMU's hash-table order is unexpected.
     */
    void checkArguments(final ObjectNode arguments) throws QmpException {
        if (params.containsKey(ANY_ARGUMENTS)) {
            return;
        }
        for (final Map.Entry<String, Param> e : params.entrySet()) {
            final String name = e.getKey();
            final Param param = e.getValue();
            final JsonNode value = arguments.get(name);
            if (value == null) {
                if (param.required()) {
                    throw QmpException.generic("Parameter '" + name + "' is missing");
                }
                continue;
            }
            if (!param.type().accepts(value)) {
                throw QmpException.generic("Invalid parameter type for '" + name + "', expected: " + param.type().word);
            }
            if (!param.values().isEmpty() && !param.values().contains(value.asText())) {
                throw QmpException.generic("Parameter '" + name + "' does not accept value '" + value.asText() + "'");
            }
        }
        final String extra = firstUnexpected(arguments, params.keySet());
        if (extra != null) {
            throw QmpException.generic("Parameter '" + extra + "' is unexpected");
        }
    }

    /** The argument QEMU names as unexpected when {@code known} are the declared ones; null if none is left. */
    static String firstUnexpected(final ObjectNode arguments, final java.util.Set<String> known) {
        final java.util.List<String> keys = new java.util.ArrayList<>();
        arguments.fieldNames().forEachRemaining(keys::add);
        for (final String key : QmpOrder.ghash(QmpOrder.qdict(keys))) {
            if (!known.contains(key)) {
                return key;
            }
        }
        return null;
    }
}
