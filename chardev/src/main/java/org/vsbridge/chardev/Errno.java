package org.vsbridge.chardev;

import io.netty.channel.unix.Errors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.vsbridge.libc.Sys;

/**
 * The strerror text of a failed socket call, so errors read like QEMU's ("Connection refused", not Netty's
 * "finishConnect(..) failed with error(-111)"). Used on error paths only.
 */
public final class Errno {

    private static final Pattern NETTY_ERRNO = Pattern.compile("error\\((-?\\d+)\\)");

    private Errno() {
    }

    /** The reason of a bind/connect failure, without the syscall prefix Netty puts in front. */
    public static String reason(final Throwable t) {
        Throwable c = t;
        while (c.getCause() != null && c.getMessage() == null) {
            c = c.getCause();
        }
        if (c instanceof Errors.NativeIoException n) {
            final String s = strerror(Math.abs(n.expectedErr()));
            if (s != null) {
                return s;
            }
        }
        if (c instanceof java.io.FileNotFoundException && c.getMessage() == null) {
            return "No such file or directory"; // Netty's epoll connect to a missing Unix socket path
        }
        String m = String.valueOf(c.getMessage());
        final Matcher errno = NETTY_ERRNO.matcher(m);
        if (errno.find()) {
            final String s = strerror(Math.abs(Integer.parseInt(errno.group(1))));
            if (s != null) {
                return s;
            }
        }
        final int failed = m.indexOf("failed: ");
        if (failed >= 0) {
            m = m.substring(failed + "failed: ".length());
        }
        final int detail = m.indexOf(": ");
        return detail > 0 ? m.substring(0, detail) : m;
    }

    private static String strerror(final int errno) {
        if (!Sys.available() || errno == 0) {
            return null;
        }
        return Sys.strerror(errno);
    }
}
