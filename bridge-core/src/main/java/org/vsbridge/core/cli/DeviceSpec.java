package org.vsbridge.core.cli;

import org.vsbridge.console.OutputPolicy;

/**
 * A port as given with {@code --device virtconsole|virtserialport,chardev=ID,name=NAME,id=ID[,nr=N]} and the
 * bridge's extensions {@code cols=C,rows=R} (console size, virtconsole only) and {@code policy=drop|hold}.
 *
 * @param console true for virtconsole
 * @param nr      the requested port number, or -1 to let the bridge choose as QEMU does
 * @param cols    console columns (VIRTIO_CONSOLE_F_SIZE), 0 = not set
 * @param rows    console rows, 0 = not set
 * @param policy  guest output while no host peer is connected
 */
public record DeviceSpec(boolean console, String chardev, String name, String id, int nr, int cols, int rows,
                         OutputPolicy policy) {

    /** QEMU's properties only: no size, policy {@code drop}. */
    public DeviceSpec(final boolean console, final String chardev, final String name, final String id, final int nr) {
        this(console, chardev, name, id, nr, 0, 0, OutputPolicy.DROP);
    }

    public String driver() {
        return console ? "virtconsole" : "virtserialport";
    }
}
