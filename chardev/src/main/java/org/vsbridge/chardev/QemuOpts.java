package org.vsbridge.chardev;

import java.util.Map;
import java.util.Set;

/**
 * The boolean spellings of QEMU's {@code QemuOpts}, shared by every option string this project parses
 * ({@code -chardev}, {@code --qmp}): {@code name=on|off|yes|no|true|false|y|n}, and a bare element as a flag,
 * {@code server} for {@code server=on} and {@code nowait} for {@code wait=off}.
 */
public final class QemuOpts {

    private QemuOpts() {
    }

    /** The value of boolean option {@code name}, spelled as QEMU's {@code qapi_bool_parse} takes it. */
    public static boolean parseBool(final String name, final String value) throws ChardevException {
        return switch (value) {
            case "on", "yes", "true", "y" -> true;
            case "off", "no", "false", "n" -> false;
            default -> throw new ChardevException("Parameter '" + name + "' expects 'on' or 'off'");
        };
    }

    /**
     * A bare element (no '=') as name and value: {@code noNAME} is {@code NAME=off} unless {@code noNAME} is
     * itself one of {@code options}; anything else is {@code NAME=on}.
     */
    public static Map.Entry<String, String> flag(final String element, final Set<String> options) {
        if (element.startsWith("no") && !options.contains(element)) {
            return Map.entry(element.substring(2), "off");
        }
        return Map.entry(element, "on");
    }
}
