package org.vsbridge.core.systemd;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.vsbridge.core.cli.UsageException;

/**
 * The options of a service rather than of a device, taken off the command line before the device options are
 * parsed: {@code --config FILE}, {@code --check-config}, {@code --log-file FILE}, and the vhost-user backend
 * program conventions (docs/interop/vhost-user.rst): {@code --fd N} (an already listening vhost-user socket,
 * incompatible with {@code --socket-path}) and {@code --print-capabilities} (print {@link #CAPABILITIES} and exit,
 * ignoring every other option).
 *
 * @param config             the configuration file, or null
 * @param checkConfig        validate the configuration, print the result, exit 0 or 1
 * @param fd                 the {@code --fd} listening socket, or -1
 * @param printCapabilities  {@code --print-capabilities} was given
 * @param logFile            the {@code --log-file}, or null (stderr / the journal)
 * @param logLevelGiven      the rest contains {@code --log-level} (it then overrides the file's)
 * @param rest               the arguments left for {@code CommandLine}
 */
public record ServiceOptions(Path config, boolean checkConfig, int fd, boolean printCapabilities, Path logFile,
                             boolean logLevelGiven, String[] rest) {

    /** {@code VHostUserBackendCapabilities} of docs/interop/vhost-user.json: a console has no optional features. */
    public static final String CAPABILITIES = "{\n  \"type\": \"console\",\n  \"features\": []\n}";

    public static final String USAGE = """

        Service options:
          --config FILE           JSON configuration file (the same model as these options; options
                                  given here override it: scalars replace, a repeated option given
                                  here replaces the file's whole list)
          --check-config          validate the configuration (file and options), print it, exit 0 or 1
          --fd N                  serve vhost-user on the already-listening socket fd N (instead of
                                  --socket-path); socket activation (LISTEN_FDS) needs no option
          --log-file FILE         append log lines to FILE (reopened on SIGHUP) instead of stderr
          --print-capabilities    print the vhost-user backend capabilities (JSON) and exit
        """;

    /** Splits {@code args} into service options and the rest. */
    public static ServiceOptions extract(final String[] args) throws UsageException {
        for (final String a : args) {
            if (a.equals("--print-capabilities") || a.equals("-print-capabilities")) {
                // The convention: other options are ignored, even broken ones.
                return new ServiceOptions(null, false, -1, true, null, false, new String[0]);
            }
        }
        Path config = null;
        boolean check = false;
        int fd = -1;
        Path logFile = null;
        boolean logLevelGiven = false;
        final List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            final String arg = args[i];
            if (!arg.startsWith("-")) {
                rest.add(arg);
                continue;
            }
            String name = arg.startsWith("--") ? arg.substring(2) : arg.substring(1);
            String value = null;
            final int eq = name.indexOf('=');
            if (eq > 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            switch (name) {
                case "check-config" -> {
                    if (value != null) {
                        throw new UsageException("option --check-config takes no value");
                    }
                    check = true;
                }
                case "config", "fd", "log-file" -> {
                    if (value == null) {
                        if (i + 1 >= args.length) {
                            throw new UsageException("option --" + name + " needs a value");
                        }
                        value = args[++i];
                    }
                    switch (name) {
                        case "config" -> config = Path.of(value);
                        case "log-file" -> logFile = Path.of(value);
                        default -> fd = parseFd(value);
                    }
                }
                default -> {
                    if (name.equals("log-level")) {
                        logLevelGiven = true;
                    }
                    rest.add(arg);
                }
            }
        }
        return new ServiceOptions(config, check, fd, false, logFile, logLevelGiven, rest.toArray(new String[0]));
    }

    private static int parseFd(final String value) throws UsageException {
        try {
            final int fd = Integer.parseInt(value);
            if (fd >= 0) {
                return fd;
            }
        } catch (final NumberFormatException e) {
            // fall through
        }
        throw new UsageException("--fd " + value + ": expected a file descriptor number");
    }

    /** True when the device options need not be complete on the command line (a file or an inherited socket). */
    public boolean partialCommandLine() {
        return config != null || fd >= 0;
    }
}
