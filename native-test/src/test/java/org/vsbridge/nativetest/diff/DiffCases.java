package org.vsbridge.nativetest.diff;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The cases of the differential suite, read from a resource file (format in its header): groups, each run on
 * one QEMU and one bridge, of cases run in order. A case's key ({@code GROUP: KIND TEXT}, or
 * {@code GROUP: LABEL} when the line names one) is what the README's table of differences names.
 */
record DiffCases(List<Group> groups) {

    enum Kind { CLI, QMP, RAW, EXISTS, PEER, FILENAME }

    record Case(String key, Kind kind, String text) {
    }

    record Group(String name, String machine, List<Case> cases) {
    }

    private static final Pattern GROUP = Pattern.compile("\\[group ([\\w-]+)(?: machine=(none|q35))?]");
    private static final Pattern LINE = Pattern.compile("(cli|qmp|raw|exists|peer|filename)(?:\\[([^]]+)])? (.+)");

    static DiffCases load(final String resource) throws IOException {
        final List<Group> groups = new ArrayList<>();
        final Map<String, Integer> seen = new HashMap<>();
        try (InputStream in = DiffCases.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("no resource " + resource);
            }
            int lineNo = 0;
            Group current = null;
            for (final String raw : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n", -1)) {
                lineNo++;
                final String line = raw.strip();
                if (line.isEmpty() || line.startsWith("#")) {
                    continue;
                }
                final Matcher g = GROUP.matcher(line);
                if (g.matches()) {
                    current = new Group(g.group(1), g.group(2) == null ? "none" : g.group(2), new ArrayList<>());
                    groups.add(current);
                    continue;
                }
                final Matcher m = LINE.matcher(line);
                if (!m.matches() || current == null) {
                    throw new IOException(resource + ":" + lineNo + ": not a case: " + line);
                }
                final String base = current.name() + ": " + (m.group(2) != null ? m.group(2) : m.group(1) + " " + m.group(3));
                final int n = seen.merge(base, 1, Integer::sum);
                current.cases().add(new Case(n == 1 ? base : base + " #" + n,
                    Kind.valueOf(m.group(1).toUpperCase(java.util.Locale.ROOT)), m.group(3)));
            }
        }
        return new DiffCases(groups);
    }

    int size() {
        return groups.stream().mapToInt(g -> g.cases().size()).sum();
    }

    /** {@code \xNN} escapes as bytes, the rest as UTF-8 (a {@code raw} case's bytes). */
    static byte[] unescape(final String text) {
        final ByteArrayOutputStream out = new ByteArrayOutputStream();
        int i = 0;
        while (i < text.length()) {
            if (text.startsWith("\\x", i) && i + 4 <= text.length()) {
                out.write(Integer.parseInt(text.substring(i + 2, i + 4), 16));
                i += 4;
            } else {
                final int cp = text.codePointAt(i);
                out.writeBytes(new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8));
                i += Character.charCount(cp);
            }
        }
        return out.toByteArray();
    }
}
