package org.vsbridge.chardev;

/**
 * A chardev could not be parsed, validated or opened. The message is worded as QEMU words it (for example
 * "'wait' option is incompatible with socket in client connect mode"), without the "Failed to add chardev"
 * prefix, which belongs to the QMP command that failed.
 */
public final class ChardevException extends Exception {

    private static final long serialVersionUID = 1L;

    public ChardevException(final String message) {
        super(message);
    }

    public ChardevException(final String message, final Throwable cause) {
        super(message, cause);
    }
}
