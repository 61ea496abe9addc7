package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;

/** The user of a chardev (a port). Callbacks arrive on the chardev's event loop. */
public interface ChardevFrontend {

    /** The host side connected (CHR_EVENT_OPENED). */
    void opened();

    /** The host side disconnected (CHR_EVENT_CLOSED). */
    void closed();

    /** Input from the host peer; ownership passes to the frontend, which releases it. */
    void received(ByteBuf data);

    /** The backend can take more output after {@link Chardev#write} returned false. */
    void writable();

    /** The chardev wants the input it lent ({@link Chardev#openDirectInput()}) back: the socket reported an error.
     *  The frontend makes its reader give it back soon (it does not read again in any case). */
    default void directInputReclaimed() {
    }

    /** A break condition from the peer (telnet IAC BREAK, serial break). */
    default void breakReceived() {
    }
}
