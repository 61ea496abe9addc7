package org.vsbridge.libc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** The process's own state: signal dispositions and the environment. */
public final class Proc {

    private static final long SIG_DFL = 0;
    private static final long SIG_IGN = 1;
    /** struct sigaction: 152 bytes on x86-64 and aarch64, the handler first. */
    private static final int SIGACTION_SIZE = 152;

    private Proc() {
    }

    /**
     * Sets {@code sig} back to its default action if the parent left it ignored (nohup, some service managers);
     * returns whether it was ignored. A JVM installs no handler for a signal that arrived ignored.
     */
    public static boolean unignore(final int sig) {
        final byte[] old = new byte[SIGACTION_SIZE];
        if (LibC.sigaction(sig, 0, old) != 0) {
            return false;
        }
        final long handler = ByteBuffer.wrap(old).order(ByteOrder.nativeOrder()).getLong(0);
        if (handler != SIG_IGN) {
            return false;
        }
        LibC.signal(sig, SIG_DFL);
        return true;
    }

    /** {@code name} in the C environment (what a child started with fork/exec gets), or null. */
    public static String getenv(final String name) {
        return LibC.getenv(name);
    }

    /** Removes {@code name} from the C environment (what children inherit); errors are ignored. */
    public static void unsetenv(final String name) {
        LibC.unsetenv(name);
    }
}
