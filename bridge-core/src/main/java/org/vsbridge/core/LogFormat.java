package org.vsbridge.core;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Instant;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** One line per event on stderr: time, level, thread, source, message (and a stack trace when one is logged). */
public final class LogFormat extends Formatter {

    @Override
    public String format(final LogRecord record) {
        final StringBuilder line = new StringBuilder(128)
            .append(Instant.ofEpochMilli(record.getMillis()))
            .append(' ').append(levelWord(record.getLevel()))
            .append(' ').append(Thread.currentThread().getName())
            .append(' ').append(shortName(record.getLoggerName()))
            .append(": ").append(formatMessage(record))
            .append(System.lineSeparator());
        if (record.getThrown() != null) {
            final StringWriter trace = new StringWriter();
            record.getThrown().printStackTrace(new PrintWriter(trace));
            line.append(trace);
        }
        return line.toString();
    }

    private static String levelWord(final Level level) {
        final int v = level.intValue();
        if (v >= Level.SEVERE.intValue()) {
            return "ERROR";
        }
        if (v >= Level.WARNING.intValue()) {
            return "WARN ";
        }
        if (v >= Level.INFO.intValue()) {
            return "INFO ";
        }
        return "DEBUG";
    }

    private static String shortName(final String name) {
        if (name == null) {
            return "-";
        }
        final int dot = name.lastIndexOf('.');
        return dot < 0 ? name : name.substring(dot + 1);
    }

    /** Route java.util.logging to stderr with this format at {@code level}. */
    public static void install(final Level level) {
        LogManager.getLogManager().reset();
        final Handler handler = new ConsoleHandler();
        handler.setFormatter(new LogFormat());
        handler.setLevel(level);
        final Logger root = Logger.getLogger("");
        root.addHandler(handler);
        root.setLevel(level);
        // Netty and JNA are chatty at debug level; keep them at INFO unless asked for more.
        Logger.getLogger("io.netty").setLevel(level.intValue() < Level.INFO.intValue() ? Level.INFO : level);
    }
}
