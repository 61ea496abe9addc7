package org.vsbridge.chardev;

/**
 * A chardev could not be parsed, validated or opened. The message is worded as QEMU words it (for example
 * "'wait' option is incompatible with socket in client connect mode"), without the "Failed to add chardev"
 * prefix, which belongs to the QMP command that failed. QEMU puts that prefix before every error of creating the
 * chardev, but not before the errors of reading the command's arguments (a member missing, unexpected or of the
 * wrong type, a value out of its type's range): those are made by {@link #input(String)}.
 */
public final class ChardevException extends Exception {

    private static final long serialVersionUID = 1L;

    private final boolean input;

    public ChardevException(final String message) {
        this(message, false);
    }

    public ChardevException(final String message, final Throwable cause) {
        super(message, cause);
        this.input = false;
    }

    private ChardevException(final String message, final boolean input) {
        super(message);
        this.input = input;
    }

    /** An error in the arguments as QMP's input visitor reports it (no "Failed to add chardev" prefix). */
    public static ChardevException input(final String message) {
        return new ChardevException(message, true);
    }

    /** Whether this is an error in the arguments themselves ({@link #input(String)}). */
    public boolean isInput() {
        return input;
    }
}
