package org.vsbridge.core.objects;

/** An object could not be parsed, created or deleted; the message is worded as QEMU words it. */
public final class ObjectException extends Exception {

    private static final long serialVersionUID = 1L;

    public ObjectException(final String message) {
        super(message);
    }
}
