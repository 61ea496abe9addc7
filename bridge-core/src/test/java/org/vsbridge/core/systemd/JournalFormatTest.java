package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JournalFormatTest {

    @TempDir
    Path dir;

    @Test
    void levelsMapToSyslogPriorities() {
        assertEquals(3, JournalFormat.priority(Level.SEVERE));
        assertEquals(4, JournalFormat.priority(Level.WARNING));
        assertEquals(6, JournalFormat.priority(Level.INFO));
        assertEquals(7, JournalFormat.priority(Level.CONFIG));
        assertEquals(7, JournalFormat.priority(Level.FINE));
        assertEquals(7, JournalFormat.priority(Level.FINEST));
    }

    @Test
    void everyLineOfAnEventCarriesItsPriority() {
        final LogRecord r = new LogRecord(Level.WARNING, "two\nlines");
        r.setLoggerName("org.vsbridge.core.Bridge");
        r.setThrown(new IllegalStateException("x"));
        final String text = new JournalFormat().format(r);
        final List<String> lines = text.lines().toList();
        assertTrue(lines.get(0).endsWith(" Bridge: two"), lines.get(0));
        assertEquals("<4>lines", lines.get(1));
        assertTrue(lines.size() > 3);
        for (final String l : lines) {
            assertTrue(l.startsWith("<4>"), l);
        }
    }

    @Test
    void journalStreamMatchesDeviceAndInode() {
        assertTrue(Logs.matches("8:1234", new long[] {8, 1234}));
        assertFalse(Logs.matches("8:1235", new long[] {8, 1234}));
        assertFalse(Logs.matches("garbage", new long[] {8, 1234}));
    }

    /** A child whose stderr is the file JOURNAL_STREAM names writes journal lines; with another value, plain ones. */
    @Test
    void stderrOnTheJournalStreamGetsPrefixes() throws Exception {
        final Path err = dir.resolve("stderr");
        Files.createFile(err);
        final long dev = ((Number) Files.getAttribute(err, "unix:dev")).longValue();
        final long ino = ((Number) Files.getAttribute(err, "unix:ino")).longValue();

        final String journal = runJournalProbe(err, dev + ":" + ino);
        final List<String> lines = journal.lines().toList();
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("<7>") && l.endsWith("debug line")), journal);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("<6>") && l.endsWith("info line")), journal);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("<4>") && l.endsWith("warning line")), journal);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("<3>") && l.endsWith("error line")), journal);
        assertTrue(lines.stream().anyMatch(l -> l.startsWith("<3>java.lang.IllegalStateException: boom")), journal);

        final String plain = runJournalProbe(err, dev + ":" + (ino + 1));
        assertTrue(plain.contains("INFO "), plain);
        assertFalse(plain.contains("<6>"), plain);
    }

    private String runJournalProbe(final Path err, final String journalStream) throws Exception {
        Files.writeString(err, "");
        final ProcessBuilder pb = new ProcessBuilder(ChildJvm.command(ServiceProbe.class, "journal"))
            .redirectError(ProcessBuilder.Redirect.appendTo(err.toFile()))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD);
        pb.environment().put("JOURNAL_STREAM", journalStream);
        final Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue());
        return Files.readString(err);
    }
}
