package org.vsbridge.console;

/**
 * One configured port of the console device.
 *
 * @param nr      port number on the device (0 is reserved for a console port)
 * @param id      device id as given with {@code id=} (used by VSERPORT_CHANGE), may be null
 * @param name    port name sent with PORT_NAME, may be null (no PORT_NAME sent)
 * @param console true for a virtconsole (hvc) port, false for a virtserialport
 */
public record PortSpec(int nr, String id, String name, boolean console) {
}
