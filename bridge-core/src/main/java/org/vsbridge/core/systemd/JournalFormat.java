package org.vsbridge.core.systemd;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.logging.Formatter;
import java.util.logging.Level;
import java.util.logging.LogRecord;

/**
 * One line per event for journald's stream transport: a syslog priority prefix ({@code <3>} error,
 * {@code <4>} warning, {@code <6>} info, {@code <7>} debug; sd-daemon(3)), then thread, source and message,
 * without a timestamp (the journal stamps each line itself). Stack trace lines carry the prefix too, so
 * {@code journalctl -p err} shows the whole trace.
 */
public final class JournalFormat extends Formatter {

    /** The sd-daemon priority of a java.util.logging level. */
    public static int priority(final Level level) {
        final int v = level.intValue();
        if (v >= Level.SEVERE.intValue()) {
            return 3;
        }
        if (v >= Level.WARNING.intValue()) {
            return 4;
        }
        if (v >= Level.INFO.intValue()) {
            return 6;
        }
        return 7;
    }

    @Override
    public String format(final LogRecord record) {
        final String prefix = "<" + priority(record.getLevel()) + ">";
        final StringBuilder line = new StringBuilder(128)
            .append(prefix)
            .append(Thread.currentThread().getName())
            .append(' ').append(shortName(record.getLoggerName()))
            .append(": ");
        appendPrefixed(line, formatMessage(record), prefix);
        line.append('\n');
        if (record.getThrown() != null) {
            final StringWriter trace = new StringWriter();
            record.getThrown().printStackTrace(new PrintWriter(trace));
            for (final String l : trace.toString().split("\\R")) {
                line.append(prefix).append(l).append('\n');
            }
        }
        return line.toString();
    }

    /** A message with newlines in it stays one event per journal line, each with the priority. */
    private static void appendPrefixed(final StringBuilder line, final String message, final String prefix) {
        int start = 0;
        int nl;
        while ((nl = message.indexOf('\n', start)) >= 0) {
            line.append(message, start, nl).append('\n').append(prefix);
            start = nl + 1;
        }
        line.append(message, start, message.length());
    }

    private static String shortName(final String name) {
        if (name == null) {
            return "-";
        }
        final int dot = name.lastIndexOf('.');
        return dot < 0 ? name : name.substring(dot + 1);
    }
}
