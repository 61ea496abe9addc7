package org.vsbridge.vhost.protocol;

/** A frontend message that is well framed but not acceptable (bad payload size, bad index, bad value).
 *  The connection goes on; the request gets an error reply. */
public final class ProtocolException extends Exception {

    private static final long serialVersionUID = 1L;

    public ProtocolException(final String message) {
        super(message, null, false, false);
    }
}
