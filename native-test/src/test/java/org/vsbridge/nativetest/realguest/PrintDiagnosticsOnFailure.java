package org.vsbridge.nativetest.realguest;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Prints the bridge log, serial consoles and QMP events when a real-guest test fails: the
 * point of the suite is to show where the bridge and a real guest disagree.
 */
final class PrintDiagnosticsOnFailure implements TestWatcher {

    /** Implemented by test classes that can describe their runs. */
    interface Source {
        String diagnostics();
    }

    /** Test instances whose diagnostics were printed already: once per class is enough. */
    private static final Set<Object> PRINTED = Collections.newSetFromMap(new IdentityHashMap<>());

    @Override
    public void testFailed(final ExtensionContext context, final Throwable cause) {
        final Object instance = context.getTestInstance().orElse(null);
        if (!(instance instanceof Source source)) {
            return;
        }
        final boolean first;
        synchronized (PRINTED) {
            first = PRINTED.add(instance);
        }
        System.err.println("\n" + context.getDisplayName() + " failed: " + cause
            + (first ? "\n" + source.diagnostics() : " (diagnostics printed above)"));
    }
}
