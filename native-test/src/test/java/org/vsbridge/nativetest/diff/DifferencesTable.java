package org.vsbridge.nativetest.diff;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The README's table "Differences from QEMU": rows of case, QEMU, bridge, reason. A row covers every differing
 * case whose key it matches and whose outcomes its QEMU and bridge cells match. {@code …} in a cell stands for
 * any text: the case cell must match the whole key, the QEMU and bridge cells any part of the outcome. Code spans
 * ({@code `...`}) are unwrapped and {@code \|} is a literal bar.
 */
final class DifferencesTable {

    static final String SECTION = "## Differences from QEMU";

    record Row(String key, String qemu, String bridge, String reason) {
        boolean matches(final String caseKey, final String qemuOutcome, final String bridgeOutcome) {
            return fitsWhole(key, caseKey) && fits(qemu, qemuOutcome) && fits(bridge, bridgeOutcome);
        }
    }

    final Map<String, Row> rows = new LinkedHashMap<>();
    final java.util.Set<String> used = new java.util.HashSet<>();

    /** The first row that covers this difference (and marks it used), or null. */
    Row cover(final String caseKey, final String qemuOutcome, final String bridgeOutcome) {
        for (final Row r : rows.values()) {
            if (r.matches(caseKey, qemuOutcome, bridgeOutcome)) {
                used.add(r.key());
                return r;
            }
        }
        return null;
    }

    static DifferencesTable read(final Path readme) throws IOException {
        final DifferencesTable t = new DifferencesTable();
        boolean in = false;
        int tableLine = 0;
        for (final String line : Files.readAllLines(readme, StandardCharsets.UTF_8)) {
            if (line.startsWith("## ")) {
                in = line.strip().equals(SECTION);
                continue;
            }
            if (!in || !line.startsWith("|")) {
                continue;
            }
            tableLine++;
            if (tableLine <= 2) {
                continue; // header and separator
            }
            final List<String> cells = cells(line);
            if (cells.size() != 4) {
                throw new IOException("README " + SECTION + ": not 4 cells: " + line);
            }
            final Row r = new Row(cells.get(0), cells.get(1), cells.get(2), cells.get(3));
            if (t.rows.put(r.key(), r) != null) {
                throw new IOException("README " + SECTION + ": case listed twice: " + r.key());
            }
        }
        return t;
    }

    private static List<String> cells(final String line) {
        final List<String> out = new ArrayList<>();
        final StringBuilder cur = new StringBuilder();
        final String body = line.strip();
        for (int i = 1; i < body.length(); i++) {
            final char c = body.charAt(i);
            if (c == '\\' && i + 1 < body.length() && body.charAt(i + 1) == '|') {
                cur.append('|');
                i++;
            } else if (c == '|') {
                out.add(unwrap(cur.toString().strip()));
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        return out;
    }

    private static String unwrap(final String cell) {
        return cell.length() >= 2 && cell.startsWith("`") && cell.endsWith("`")
            ? cell.substring(1, cell.length() - 1) : cell;
    }

    private static boolean fitsWhole(final String cell, final String key) {
        final String[] parts = cell.split("…", -1);
        if (parts.length == 1) {
            return cell.equals(key);
        }
        return key.startsWith(parts[0]) && key.endsWith(parts[parts.length - 1])
            && key.length() >= parts[0].length() + parts[parts.length - 1].length() && fits(cell, key);
    }

    private static boolean fits(final String cell, final String outcome) {
        int from = 0;
        for (final String part : cell.split("…", -1)) {
            final int at = outcome.indexOf(part, from);
            if (at < 0) {
                return false;
            }
            from = at + part.length();
        }
        return true;
    }

    /** A row to paste for a difference (outcomes shortened to 90 characters). */
    static String suggest(final String key, final String qemu, final String bridge) {
        return "| `" + key.replace("|", "\\|") + "` | `" + cut(qemu) + "` | `" + cut(bridge) + "` | REASON |";
    }

    private static String cut(final String s) {
        final String t = s.length() > 90 ? s.substring(0, 90) + "…" : s;
        return t.replace("|", "\\|").replace("`", "'");
    }
}
