package org.vsbridge.chardev;

import java.util.Locale;

/**
 * Every chardev backend kind QEMU knows ({@code ChardevBackendKind} of qapi/char.json, plus {@code hub} and
 * {@code dbus} of later QEMU releases), and what this bridge does with it. The model holds all of them; only
 * {@link Support#BUILT} kinds can be opened.
 */
public enum ChardevKind {
    FILE("file", Support.BUILT, null),
    SERIAL("serial", Support.BUILT, null),
    PARALLEL("parallel", Support.LATER, "on Linux, QEMU's parallel chardev moves data only through the ppdev "
        + "ioctls of an emulated parallel-port device; it discards what a virtio port writes and never gives it "
        + "input, so a port on it would lose every byte"),
    PIPE("pipe", Support.BUILT, null),
    SOCKET("socket", Support.BUILT, null),
    UDP("udp", Support.BUILT, null),
    PTY("pty", Support.BUILT, null),
    NULL("null", Support.BUILT, null),
    MUX("mux", Support.BUILT, null),
    HUB("hub", Support.BUILT, null),
    MSMOUSE("msmouse", Support.DISPLAY, "it emulates a serial mouse fed by a graphical display"),
    WCTABLET("wctablet", Support.DISPLAY, "it emulates a serial tablet fed by a graphical display"),
    BRAILLE("braille", Support.DISPLAY, "it drives a braille display through brlapi"),
    TESTDEV("testdev", Support.LATER, "it is a QEMU test helper that answers commands of QEMU's own test suite"),
    STDIO("stdio", Support.BUILT, null),
    CONSOLE("console", Support.DISPLAY, "it is a Windows console window"),
    SPICEVMC("spicevmc", Support.DISPLAY, "it is a channel of a SPICE display server"),
    SPICEPORT("spiceport", Support.DISPLAY, "it is a port of a SPICE display server"),
    QEMU_VDAGENT("qemu-vdagent", Support.DISPLAY, "it shares the mouse and clipboard of a graphical display"),
    DBUS("dbus", Support.DISPLAY, "it is a channel of QEMU's D-Bus display"),
    VC("vc", Support.DISPLAY, "it is a text console drawn on a graphical display"),
    RINGBUF("ringbuf", Support.BUILT, null),
    MEMORY("memory", Support.BUILT, null);

    /** What the bridge does with a kind. */
    public enum Support {
        /** Opened by {@link ChardevFactory}. */
        BUILT,
        /** Parsed into the model, refused when opened, with the reason. */
        LATER,
        /** Parsed into the model, refused when opened: it needs a display or GUI the bridge does not have. */
        DISPLAY
    }

    private final String qapiName;
    private final Support support;
    private final String displayReason;

    ChardevKind(final String qapiName, final Support support, final String displayReason) {
        this.qapiName = qapiName;
        this.support = support;
        this.displayReason = displayReason;
    }

    /** The name used in QAPI ({@code backend.type}) and as the {@code -chardev} driver. */
    public String qapiName() {
        return qapiName;
    }

    public Support support() {
        return support;
    }

    /** The kind for a QAPI type name, or null when QEMU does not know it. */
    public static ChardevKind fromQapiName(final String name) {
        for (final ChardevKind kind : values()) {
            if (kind.qapiName.equals(name)) {
                return kind;
            }
        }
        return null;
    }

    /** The kind for a {@code -chardev} driver name, with QEMU's aliases {@code tty} and {@code parport}. */
    public static ChardevKind fromDriverName(final String name) {
        return switch (name) {
            case "tty" -> SERIAL;
            case "parport" -> PARALLEL;
            default -> fromQapiName(name);
        };
    }

    /** QEMU's words for a driver name it does not know. */
    public static ChardevException unknown(final String name) {
        return new ChardevException("'" + name + "' is not a valid char driver name");
    }

    /** Throws unless this kind can be opened, with the reason it cannot. */
    public void requireBuilt() throws ChardevException {
        switch (support) {
            case BUILT -> {
            }
            case LATER -> throw new ChardevException(
                "the bridge does not support chardev backend '" + qapiName + "': " + displayReason);
            case DISPLAY -> throw new ChardevException(
                "chardev backend '" + qapiName + "' needs a display or GUI, which the bridge does not have: "
                    + displayReason);
        }
    }

    @Override
    public String toString() {
        return qapiName.toLowerCase(Locale.ROOT);
    }
}
