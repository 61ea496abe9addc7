package org.vsbridge.core.qmp;

/** A QMP error reply: an error class (GenericError, CommandNotFound, DeviceNotFound, ...) and QEMU's wording. */
public final class QmpException extends Exception {

    private static final long serialVersionUID = 1L;

    private final String errorClass;

    public QmpException(final String errorClass, final String desc) {
        super(desc, null, false, false);
        this.errorClass = errorClass;
    }

    public static QmpException generic(final String desc) {
        return new QmpException("GenericError", desc);
    }

    public String errorClass() {
        return errorClass;
    }
}
