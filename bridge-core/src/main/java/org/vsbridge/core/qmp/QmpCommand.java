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
                case INT -> value.isIntegralNumber();
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
