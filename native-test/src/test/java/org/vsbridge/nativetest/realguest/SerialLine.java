package org.vsbridge.nativetest.realguest;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * One machine-readable line of the guest's serial console, {@code VSB-KIND key=value ...}.
 * Kernel messages may precede it on the same line, so parsing starts at {@code VSB-}.
 */
record SerialLine(String kind, Map<String, String> fields, String raw) {

    static Optional<SerialLine> parse(final String line) {
        final int at = line.indexOf("VSB-");
        if (at < 0) {
            return Optional.empty();
        }
        final String body = line.substring(at + 4).strip();
        final String[] tokens = body.split("\\s+");
        final Map<String, String> fields = new LinkedHashMap<>();
        for (int i = 1; i < tokens.length; i++) {
            final int eq = tokens[i].indexOf('=');
            if (eq > 0) {
                fields.putIfAbsent(tokens[i].substring(0, eq), tokens[i].substring(eq + 1));
            }
        }
        return Optional.of(new SerialLine(tokens[0], Map.copyOf(fields), line.substring(at)));
    }

    String get(final String key) {
        return fields.getOrDefault(key, "");
    }

    long getLong(final String key) {
        final String v = fields.get(key);
        if (v == null || v.isEmpty() || v.equals("-")) {
            return -1;
        }
        return Long.parseLong(v);
    }

    int step() {
        return (int) getLong("step");
    }

    boolean ok() {
        return "ok".equals(get("status"));
    }
}
