package org.vsbridge.console;

import org.agrona.concurrent.UnsafeBuffer;

/**
 * The control-plane state the guest's driver built up (DEVICE_READY, each port's PORT_READY and PORT_OPEN) lives
 * in this process only; the driver never repeats it. With an inflight buffer (INFLIGHT_SHMFD) it is kept in the
 * buffer's device area too, so a bridge started after this one died knows which ports the guest has open.
 * Layout: {@code u32 magic; u16 version; u16 max_nr_ports; u8 driver_ready; ...;} then one byte per port at
 * {@value #PORTS} (1 added, 2 ready, 4 open). Worker thread only.
 */
final class StateRecord {

    /** "VSBC", little-endian: the device area holds this device's state. */
    private static final int MAGIC = 0x43425356;
    private static final int VERSION = 1;
    static final int PORTS = 16;
    private static final int ADDED = 1;
    private static final int READY = 2;
    private static final int OPEN = 4;

    private final DeviceCore core;
    /** The device area of the inflight buffer, or null. */
    private UnsafeBuffer state;

    StateRecord(final DeviceCore core) {
        this.core = core;
    }

    /** A new buffer (or null: none). A blank one is initialised; one a previous process filled is taken over. */
    void attach(final UnsafeBuffer buffer) {
        final int maxPorts = core.ports.maxPorts();
        state = buffer == null || buffer.capacity() < PORTS + maxPorts ? null : buffer;
        if (state == null) {
            return;
        }
        if (buffer.getInt(0) != MAGIC || buffer.getShort(4) != VERSION
            || (buffer.getShort(6) & 0xffff) != maxPorts) {
            buffer.setMemory(0, PORTS + maxPorts, (byte) 0);
            buffer.putShort(4, (short) VERSION);
            buffer.putShort(6, (short) maxPorts);
            buffer.putIntVolatile(0, MAGIC);
            save();
            return;
        }
        if (buffer.getByte(8) == 0 || core.driverReady) {
            save(); // nothing to take over (or this process already knows better)
            return;
        }
        core.driverReady = true;
        int ready = 0;
        int open = 0;
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = core.ports.get(nr);
            if (port == null) {
                continue;
            }
            final int flags = buffer.getByte(PORTS + nr);
            port.added = (flags & ADDED) != 0;
            port.ready = (flags & READY) != 0;
            ready += port.ready ? 1 : 0;
            if ((flags & OPEN) != 0) {
                core.setGuestConnected(port, true);
                open++;
            }
        }
        final int r = ready;
        final int o = open;
        DeviceCore.LOG.info(() -> core.name + ": device state from a previous backend: driver ready, " + r
            + " port(s) ready, " + o + " open in the guest");
        save();
    }

    /** Write the control-plane state into the buffer, if there is one. */
    void save() {
        final UnsafeBuffer b = state;
        if (b == null) {
            return;
        }
        final int maxPorts = core.ports.maxPorts();
        for (int nr = 0; nr < maxPorts; nr++) {
            final Port port = core.ports.get(nr);
            final int flags = port == null ? 0 : (port.added ? ADDED : 0) | (port.ready ? READY : 0)
                | (port.guestConnected ? OPEN : 0);
            b.putByte(PORTS + nr, (byte) flags);
        }
        b.putByteVolatile(8, (byte) (core.driverReady ? 1 : 0));
    }
}
