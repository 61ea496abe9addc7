package org.vsbridge.console;

/** What the console device reports to the rest of the process. Called on the worker thread; must not block. */
public interface ConsoleEvents {

    /** The guest opened (PORT_OPEN 1) or closed (PORT_OPEN 0, reset, disconnect) the port. Only called on a change. */
    void guestConnected(PortSpec port, boolean open);
}
