package org.vsbridge.core.systemd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The manual page the package ships (packaging/man/vhost-serial-bridge.1) documents exactly the options that
 * {@code vhost-serial-bridge --help} prints: each is the heading of an entry ({@code .TP}, then {@code .B} or
 * {@code .BI} with the option first). packaging/build.sh checks the same against the packaged jar.
 */
class ManPageTest {

    private static final Path MAN = Path.of(System.getProperty("user.dir")).getParent()
        .resolve("packaging/man/vhost-serial-bridge.1");
    private static final Pattern HELP_OPTION = Pattern.compile("(?m)^  (--[a-z-]+)");
    private static final Pattern MAN_HEADING = Pattern.compile("^\\.BI? ((?:\\\\-|[a-z])+)");

    /** The options --help prints, as a child JVM running the bridge's main class prints them. */
    private static TreeSet<String> helpOptions() throws IOException, InterruptedException {
        final List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-cp", System.getProperty("java.class.path"), "org.vsbridge.core.Main", "--help"));
        final Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "--help does not return");
        assertEquals(0, p.exitValue(), out);
        final TreeSet<String> options = new TreeSet<>();
        final Matcher m = HELP_OPTION.matcher(out);
        while (m.find()) {
            options.add(m.group(1));
        }
        assertTrue(options.size() >= 15, "too few options found in --help:\n" + out);
        return options;
    }

    /** The options the manual page has an entry for. */
    static TreeSet<String> manOptions(final List<String> lines) {
        final TreeSet<String> options = new TreeSet<>();
        for (int i = 1; i < lines.size(); i++) {
            final Matcher m = MAN_HEADING.matcher(lines.get(i));
            if (lines.get(i - 1).equals(".TP") && m.find() && m.group(1).startsWith("\\-\\-")) {
                options.add(m.group(1).replace("\\-", "-"));
            }
        }
        return options;
    }

    @Test
    void everyOptionOfHelpHasAnEntryAndNoEntryIsStale() throws Exception {
        final TreeSet<String> help = helpOptions();
        final TreeSet<String> man = manOptions(Files.readAllLines(MAN));
        final TreeSet<String> undocumented = new TreeSet<>(help);
        undocumented.removeAll(man);
        final TreeSet<String> stale = new TreeSet<>(man);
        stale.removeAll(help);
        assertEquals(new TreeSet<String>(), undocumented, "options of --help without an entry in " + MAN);
        assertEquals(new TreeSet<String>(), stale, "entries in " + MAN + " for options --help does not print");
    }

    @Test
    void theHeadingParserSeesOnlyEntryHeadings() {
        // An option named in running text (.B after anything but .TP) is no entry.
        final List<String> page = List.of(".SH OPTIONS", ".TP", ".BI \\-\\-socket\\-path \" PATH\"", "text",
            ".B \\-\\-device", "more text", ".TP", ".B \\-\\-packed\\-ring");
        assertEquals(new TreeSet<>(List.of("--socket-path", "--packed-ring")), manOptions(page));
    }

    @Test
    void thePageFormatsWithoutWarnings() throws Exception {
        final Path groff = Path.of("/usr/bin/groff");
        assumeTrue(Files.isExecutable(groff), "groff not installed (lintian makes the same check on the .deb)");
        final Process p = new ProcessBuilder(groff.toString(), "-man", "-Tutf8", "-ww", "-z", MAN.toString())
            .redirectErrorStream(true).start();
        final String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), out);
        assertEquals("", out.strip(), "groff warnings");
    }
}
