package org.vsbridge.core;

/**
 * Start-up failed for a reason that a restart cannot cure (another process listens on one of the bridge's unix
 * socket paths, or a file of another kind is there): the process exits with status 1, not
 * {@link Main#EXIT_START_FAILED}. The message is the one line for the log.
 */
public final class StartRefused extends Exception {

    private static final long serialVersionUID = 1L;

    public StartRefused(final String message) {
        super(message, null, false, false);
    }
}
