package org.vsbridge.core.cli;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Memory bounds of the process, in bytes: the two buffers between each port and its chardev (a full buffer is
 * backpressure, never a drop, except the console's as documented) and what one QMP client may send in one text or
 * leave unread. Set with {@code --limits NAME=BYTES,...} or the configuration file's {@code "limits"} object.
 *
 * @param portToHost    guest output buffered for a generic port's chardev (power of two)
 * @param consoleToHost guest output buffered for a console port's chardev (power of two; beyond it console output is
 *                      dropped and counted, since the guest spins on a console write until it is used)
 * @param portFromHost  chardev input buffered for the guest, per port (power of two)
 * @param qmpMaxInput   longest QMP input text; a longer one is refused with a parse error
 * @param qmpMaxOutput  unread output after which a QMP client is disconnected
 */
public record Limits(int portToHost, int consoleToHost, int portFromHost, int qmpMaxInput, int qmpMaxOutput) {

    public static final Limits DEFAULT = new Limits(512 << 10, 1 << 20, 256 << 10, 10 << 20, 16 << 20);

    /** The names, in the order of the record, as the command line and the file spell them. */
    public static final String[] NAMES = {"port-buffer-to-host", "console-buffer-to-host", "port-buffer-from-host",
        "qmp-max-input", "qmp-max-output"};

    private static final long MIN_BUFFER = 4 << 10;
    private static final long MAX_BUFFER = 64 << 20;
    private static final long MIN_QMP = 64 << 10;
    private static final long MAX_QMP = 1 << 30;

    /** These limits with {@code name} set to {@code bytes}; the message of the exception says what is allowed. */
    public Limits with(final String name, final long bytes) {
        final int i = java.util.Arrays.asList(NAMES).indexOf(name);
        if (i < 0) {
            throw new IllegalArgumentException("unknown limit '" + name + "' (expected one of "
                + String.join(", ", NAMES) + ")");
        }
        if (i < 3) {
            if (bytes < MIN_BUFFER || bytes > MAX_BUFFER || Long.bitCount(bytes) != 1) {
                throw new IllegalArgumentException(name + " must be a power of two from " + MIN_BUFFER + " to "
                    + MAX_BUFFER + " bytes, got " + bytes);
            }
        } else if (bytes < MIN_QMP || bytes > MAX_QMP) {
            throw new IllegalArgumentException(name + " must be from " + MIN_QMP + " to " + MAX_QMP + " bytes, got "
                + bytes);
        }
        final int[] v = values();
        v[i] = (int) bytes;
        return new Limits(v[0], v[1], v[2], v[3], v[4]);
    }

    /** {@code --limits NAME=BYTES[,NAME=BYTES...]} over the defaults. */
    public static Limits parse(final String spec) {
        Limits limits = DEFAULT;
        for (final String part : spec.split(",")) {
            final int eq = part.indexOf('=');
            if (eq <= 0) {
                throw new IllegalArgumentException("expected NAME=BYTES, got '" + part + "'");
            }
            final long bytes;
            try {
                bytes = Long.parseLong(part.substring(eq + 1));
            } catch (final NumberFormatException e) {
                throw new IllegalArgumentException(part.substring(0, eq) + ": '" + part.substring(eq + 1)
                    + "' is not a number of bytes");
            }
            limits = limits.with(part.substring(0, eq), bytes);
        }
        return limits;
    }

    /** These limits (from the command line) over {@code file}'s: each one that differs from its default wins. */
    public Limits over(final Limits file) {
        final int[] mine = values();
        final int[] theirs = file.values();
        final int[] def = DEFAULT.values();
        for (int i = 0; i < mine.length; i++) {
            if (mine[i] == def[i]) {
                mine[i] = theirs[i];
            }
        }
        return new Limits(mine[0], mine[1], mine[2], mine[3], mine[4]);
    }

    /** Name to value, for logs and {@code --check-config}. */
    public Map<String, Integer> asMap() {
        final Map<String, Integer> m = new LinkedHashMap<>();
        final int[] v = values();
        for (int i = 0; i < NAMES.length; i++) {
            m.put(NAMES[i], v[i]);
        }
        return m;
    }

    private int[] values() {
        return new int[] {portToHost, consoleToHost, portFromHost, qmpMaxInput, qmpMaxOutput};
    }
}
