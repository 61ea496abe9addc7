package org.vsbridge.console;

import java.util.Locale;

/** What a generic port does with guest output while no host peer is connected. */
public enum OutputPolicy {
    /** Complete the guest's buffers and count the bytes as dropped: QEMU's behaviour, the default. */
    DROP,
    /** Keep the guest's buffers in the transmitq (not used) until a host peer connects: nothing is lost, and
     *  the guest's writes block once its ring is full. */
    HOLD;

    /** {@code drop} or {@code hold}, as written on the command line and in QMP. */
    public static OutputPolicy parse(final String text) {
        switch (text.toLowerCase(Locale.ROOT)) {
            case "drop":
                return DROP;
            case "hold":
                return HOLD;
            default:
                throw new IllegalArgumentException("Parameter 'policy' expects 'drop' or 'hold', got '" + text + "'");
        }
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }
}
