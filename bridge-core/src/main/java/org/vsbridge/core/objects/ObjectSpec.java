package org.vsbridge.core.objects;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;
import java.util.Map;

/**
 * One user-creatable object as {@code --object} or {@code object-add} gives it: its {@code qom-type}, its
 * {@code id} and its other properties, kept as JSON (strings from the command line, typed values from QMP).
 * Two front doors, as QEMU: {@code TYPE,id=ID,prop=value,...} (a doubled comma is a comma in a value) or a JSON
 * object {@code {"qom-type":..., "id":..., ...}} (needed for {@code authz-list}'s rules).
 */
public record ObjectSpec(String qomType, String id, ObjectNode props) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Parses the {@code --object} argument. */
    public static ObjectSpec parse(final String spec) throws ObjectException {
        if (spec.trim().startsWith("{")) {
            final JsonNode node;
            try {
                node = JSON.readTree(spec);
            } catch (final com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new ObjectException("Invalid JSON in --object: " + e.getOriginalMessage());
            }
            if (!(node instanceof ObjectNode o)) {
                throw new ObjectException("--object expects a JSON object");
            }
            return fromQmp(o);
        }
        final ObjectNode props = JSON.createObjectNode();
        String type = null;
        final StringBuilder cur = new StringBuilder();
        final java.util.List<String> parts = new java.util.ArrayList<>();
        for (int i = 0; i < spec.length(); i++) {
            final char c = spec.charAt(i);
            if (c == ',') {
                if (i + 1 < spec.length() && spec.charAt(i + 1) == ',') {
                    cur.append(',');
                    i++;
                    continue;
                }
                parts.add(cur.toString());
                cur.setLength(0);
                continue;
            }
            cur.append(c);
        }
        parts.add(cur.toString());
        for (final String part : parts) {
            final int eq = part.indexOf('=');
            if (type == null && eq < 0) {
                type = part;
                continue;
            }
            if (eq <= 0) {
                throw new ObjectException("Invalid parameter '" + part + "'");
            }
            props.put(part.substring(0, eq), part.substring(eq + 1));
        }
        if (type != null) {
            props.put("qom-type", type);
        }
        return fromQmp(props);
    }

    /** Takes the arguments of {@code object-add}: {@code qom-type}, {@code id}, then the type's properties. */
    public static ObjectSpec fromQmp(final ObjectNode arguments) throws ObjectException {
        final ObjectNode props = arguments.deepCopy();
        final JsonNode type = props.remove("qom-type");
        final JsonNode id = props.remove("id");
        if (type == null) {
            throw new ObjectException("Parameter 'qom-type' is missing");
        }
        if (id == null) {
            throw new ObjectException("Parameter 'id' is missing");
        }
        if (!type.isTextual()) {
            throw new ObjectException("Invalid parameter type for 'qom-type', expected: string");
        }
        if (!id.isTextual()) {
            throw new ObjectException("Invalid parameter type for 'id', expected: string");
        }
        if (!id.asText().matches("[A-Za-z][A-Za-z0-9._-]*")) {
            throw new ObjectException("Parameter 'id' expects an identifier");
        }
        return new ObjectSpec(type.asText(), id.asText(), props);
    }

    /** A string property, or {@code def}. */
    String string(final String name, final String def) throws ObjectException {
        final JsonNode v = props.get(name);
        if (v == null) {
            return def;
        }
        if (!v.isTextual()) {
            throw new ObjectException("Invalid parameter type for '" + name + "', expected: string");
        }
        return v.asText();
    }

    /** A bool property: JSON true/false or QEMU's on/off, yes/no, true/false spellings. */
    boolean bool(final String name, final boolean def) throws ObjectException {
        final JsonNode v = props.get(name);
        if (v == null) {
            return def;
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        return switch (v.asText()) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new ObjectException("Parameter '" + name + "' expects 'on' or 'off'");
        };
    }

    /** Throws QEMU's words for the first property not in {@code known}. */
    void onlyKnown(final String... known) throws ObjectException {
        final java.util.Set<String> ok = java.util.Set.of(known);
        for (final Iterator<Map.Entry<String, JsonNode>> it = props.fields(); it.hasNext(); ) {
            final String name = it.next().getKey();
            if (!ok.contains(name)) {
                throw new ObjectException("Property '" + qomType + "." + name + "' not found");
            }
        }
    }
}
