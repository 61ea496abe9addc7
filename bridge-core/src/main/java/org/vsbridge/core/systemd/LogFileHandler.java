package org.vsbridge.core.systemd;

import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.logging.LogRecord;
import java.util.logging.StreamHandler;

/**
 * Log lines appended to a file that can be reopened ({@code SIGHUP} after logrotate moved it away). Each record
 * is flushed at once, like the console: a crash must not lose the last lines.
 */
public final class LogFileHandler extends StreamHandler {

    private final Path path;

    public LogFileHandler(final Path path) throws IOException {
        this.path = path;
        setOutputStream(open(path));
    }

    private static FileOutputStream open(final Path path) throws IOException {
        try {
            return new FileOutputStream(path.toFile(), true);
        } catch (final IOException e) {
            throw new IOException("log file " + path + ": cannot open for appending (" + e.getMessage() + ")", e);
        }
    }

    public Path path() {
        return path;
    }

    /** Closes the current file and opens {@link #path()} again, creating it when it was rotated away. */
    public synchronized void reopen() throws IOException {
        setOutputStream(open(path));
    }

    @Override
    public synchronized void publish(final LogRecord record) {
        super.publish(record);
        flush();
    }
}
