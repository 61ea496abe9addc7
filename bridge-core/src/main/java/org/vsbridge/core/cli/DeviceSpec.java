package org.vsbridge.core.cli;

/**
 * A port as given with {@code --device virtconsole|virtserialport,chardev=ID,name=NAME,id=ID[,nr=N]}.
 *
 * @param console true for virtconsole
 * @param nr      the requested port number, or -1 to let the bridge choose as QEMU does
 */
public record DeviceSpec(boolean console, String chardev, String name, String id, int nr) {

    public String driver() {
        return console ? "virtconsole" : "virtserialport";
    }
}
