package org.vsbridge.core.systemd;

import java.io.IOException;
import java.nio.file.Path;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.Logger;
import org.vsbridge.core.LogFormat;
import org.vsbridge.libc.Sys;

/**
 * Where log lines go: a {@code --log-file} (reopened on SIGHUP), else stderr. When stderr is the journal's
 * stream ({@code JOURNAL_STREAM} equals stderr's device:inode, systemd.exec(5)) lines carry journald priorities
 * and no timestamp ({@link JournalFormat}); otherwise they keep {@link LogFormat}.
 */
public final class Logs {

    private static final Logger LOG = Logger.getLogger(Logs.class.getName());
    public static final String JOURNAL_STREAM = "JOURNAL_STREAM";

    private static volatile LogFileHandler fileHandler;

    private Logs() {
    }

    /** Routes java.util.logging at {@code level} to {@code logFile} (null: stderr, journal-aware). */
    public static void install(final Level level, final Path logFile) throws IOException {
        final Handler handler;
        if (logFile != null) {
            final LogFileHandler file = new LogFileHandler(logFile);
            file.setFormatter(new LogFormat());
            handler = file;
            fileHandler = file;
        } else {
            handler = new ConsoleHandler();
            handler.setFormatter(stderrFormatter());
            fileHandler = null;
        }
        handler.setLevel(level);
        LogManager.getLogManager().reset();
        final Logger root = Logger.getLogger("");
        root.addHandler(handler);
        root.setLevel(level);
        // Netty and JNA are chatty at debug level; keep them at INFO unless asked for more.
        Logger.getLogger("io.netty").setLevel(level.intValue() < Level.INFO.intValue() ? Level.INFO : level);
    }

    /** The formatter for stderr in this environment. */
    public static Formatter stderrFormatter() {
        return stderrIsJournal() ? new JournalFormat() : new LogFormat();
    }

    /** True when {@code JOURNAL_STREAM} names the file stderr (fd 2) is. */
    public static boolean stderrIsJournal() {
        final String stream = System.getenv(JOURNAL_STREAM);
        if (stream == null || stream.isEmpty()) {
            return false;
        }
        try {
            return matches(stream, Sys.devIno(2));
        } catch (final IOException | UnsatisfiedLinkError e) {
            return false;
        }
    }

    /** {@code JOURNAL_STREAM} is "DEVICE:INODE", both decimal. */
    static boolean matches(final String journalStream, final long[] devIno) {
        final int colon = journalStream.indexOf(':');
        if (colon <= 0) {
            return false;
        }
        try {
            return Long.parseUnsignedLong(journalStream.substring(0, colon)) == devIno[0]
                && Long.parseUnsignedLong(journalStream.substring(colon + 1)) == devIno[1];
        } catch (final NumberFormatException e) {
            return false;
        }
    }

    /** SIGHUP: reopen the log file, or say that there is none (stderr and the journal need no reopening). */
    public static void reopen() {
        final LogFileHandler file = fileHandler;
        if (file == null) {
            LOG.info("SIGHUP: logs go to stderr" + (stderrIsJournal() ? " (the journal)" : "")
                + "; nothing to reopen");
            return;
        }
        try {
            file.reopen();
            LOG.info("SIGHUP: reopened log file " + file.path());
        } catch (final IOException e) {
            LOG.severe("SIGHUP: cannot reopen log file " + file.path() + ": " + e.getMessage());
        }
    }
}
