package org.vsbridge.nativetest.kit;

import java.time.Duration;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionFactory;

/**
 * The one way the native tests wait for something to happen: Awaitility, polling often, with a timeout that only
 * guards against a hang (tens of seconds, never a measurement). A condition that throws fails the wait at once.
 */
public final class Waits {

    /** How often a condition is looked at. */
    public static final Duration POLL = Duration.ofMillis(10);

    private Waits() {
    }

    /** Waits of at most {@code timeout} for {@code what} (the name appears in a timeout's message). */
    public static ConditionFactory upTo(final Duration timeout, final String what) {
        return Awaitility.await(what).atMost(timeout).pollDelay(Duration.ZERO).pollInterval(POLL);
    }
}
