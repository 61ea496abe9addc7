package org.vsbridge.core.cli;

/** A command-line or configuration error, worded for the user. */
public final class UsageException extends Exception {

    private static final long serialVersionUID = 1L;

    public UsageException(final String message) {
        super(message, null, false, false);
    }
}
