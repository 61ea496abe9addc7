package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The answer to {@code query-qmp-schema}: QEMU's SchemaInfo list for exactly the commands and events a monitor
 * serves. Types are described structurally here and named as QEMU names them for clients: built-in types by their
 * own names ({@code str}, {@code int}, ...), every other type by a number ({@code "0"} is the empty object), arrays
 * as {@code [element]}. The numbers are not QEMU's: QEMU's own numbers carry no meaning either.
 */
public final class QmpSchema {

    /** A QAPI type. */
    public sealed interface Type permits Builtin, Obj, Arr, Enum {
    }

    /** str, int, bool, any, ... */
    public record Builtin(String name, String jsonType) implements Type {
    }

    /** A member of an object type. */
    public record Member(String name, Type type, boolean optional) {
    }

    /** A struct (its members in schema order). */
    public record Obj(List<Member> members) implements Type {
    }

    /** An array. */
    public record Arr(Type element) implements Type {
    }

    /** An enum. */
    public record Enum(List<String> values) implements Type {
    }

    public static final Builtin STR = new Builtin("str", "string");
    public static final Builtin INT = new Builtin("int", "int");
    public static final Builtin BOOL = new Builtin("bool", "boolean");
    public static final Builtin ANY = new Builtin("any", "value");
    public static final Obj EMPTY = new Obj(List.of());

    private QmpSchema() {
    }

    /** An object type from name, type pairs; a name starting with '*' is optional (QAPI's notation). */
    public static Obj obj(final Object... nameThenType) {
        final List<Member> members = new ArrayList<>();
        for (int i = 0; i < nameThenType.length; i += 2) {
            final String name = (String) nameThenType[i];
            final boolean optional = name.startsWith("*");
            members.add(new Member(optional ? name.substring(1) : name, (Type) nameThenType[i + 1], optional));
        }
        return new Obj(List.copyOf(members));
    }

    public static Arr arr(final Type element) {
        return new Arr(element);
    }

    public static Enum enumOf(final String... values) {
        return new Enum(List.of(values));
    }

    /** The argument type a command's declared parameters make. */
    static Obj arguments(final QmpCommand command) {
        final List<Member> members = new ArrayList<>();
        for (final Map.Entry<String, QmpCommand.Param> e : command.params().entrySet()) {
            final QmpCommand.Param p = e.getValue();
            final Type type = switch (p.type()) {
                case STRING -> p.values().isEmpty() ? STR : new Enum(p.values());
                case INT -> INT;
                case BOOL -> BOOL;
                case ARRAY -> arr(ANY);
                case OBJECT, ANY -> ANY;
            };
            members.add(new Member(e.getKey(), type, !p.required()));
        }
        return new Obj(List.copyOf(members));
    }

    /** What a command or event looks like in the schema. */
    public record Entry(String name, boolean event, Type arguments, Type returns) {
    }

    /** The SchemaInfo list: the entries in order, then every type they use, each once. */
    static ArrayNode build(final List<Entry> entries) {
        final JsonNodeFactory f = JsonNodeFactory.instance;
        final Map<Type, String> names = new LinkedHashMap<>();
        names.put(EMPTY, "0");
        final ArrayNode out = f.arrayNode();
        for (final Entry e : entries) {
            final ObjectNode info = out.addObject();
            info.put("name", e.name());
            info.put("meta-type", e.event() ? "event" : "command");
            info.put("arg-type", name(e.arguments(), names));
            if (!e.event()) {
                info.put("ret-type", name(e.returns(), names));
            }
        }
        // Types met while describing types are named on the way; iterate over a snapshot until none is new.
        final List<Type> written = new ArrayList<>();
        while (written.size() < names.size()) {
            final List<Type> pending = new ArrayList<>(names.keySet()).subList(written.size(), names.size());
            for (final Type t : List.copyOf(pending)) {
                written.add(t);
                out.add(describe(t, names, f));
            }
        }
        return out;
    }

    private static String name(final Type t, final Map<Type, String> names) {
        if (t instanceof Builtin b) {
            names.putIfAbsent(b, b.name());
            return b.name();
        }
        if (t instanceof Arr a) {
            final String n = "[" + name(a.element(), names) + "]";
            names.putIfAbsent(a, n);
            return n;
        }
        final String known = names.get(t);
        if (known != null) {
            return known;
        }
        final String n = Integer.toString((int) names.values().stream().filter(v -> v.matches("[0-9]+")).count());
        names.put(t, n);
        return n;
    }

    private static ObjectNode describe(final Type t, final Map<Type, String> names, final JsonNodeFactory f) {
        final ObjectNode info = f.objectNode();
        info.put("name", names.get(t));
        if (t instanceof Builtin b) {
            info.put("json-type", b.jsonType());
            info.put("meta-type", "builtin");
        } else if (t instanceof Arr a) {
            info.put("element-type", name(a.element(), names));
            info.put("meta-type", "array");
        } else if (t instanceof Enum en) {
            final ArrayNode members = info.putArray("members");
            final ArrayNode values = info.putArray("values");
            for (final String v : en.values()) {
                members.addObject().put("name", v);
                values.add(v);
            }
            info.put("meta-type", "enum");
        } else if (t instanceof Obj o) {
            final ArrayNode members = info.putArray("members");
            for (final Member m : o.members()) {
                final ObjectNode member = members.addObject();
                member.put("name", m.name());
                member.put("type", name(m.type(), names));
                if (m.optional()) {
                    member.putNull("default");
                }
            }
            info.put("meta-type", "object");
        }
        return info;
    }
}
