package org.vsbridge.console;

/**
 * The host side of one port as the console device sees it: two byte streams, one per direction,
 * implemented outside this module (bridge-core wires it to a chardev). Worker thread only.
 * Addresses are process addresses inside mapped guest memory. The device keeps them valid (it does not publish
 * the buffers' used entries) until the batch's {@link #flushToHost} returns: an implementation may read them
 * until then, not after. Every batch of {@link #writeToHost} calls ends with {@link #flushToHost}.
 */
public interface PortChannel {

    /** Guest to host: copy up to {@code length} bytes from {@code address}. Returns the bytes taken;
     *  fewer than {@code length} means the host side is full: keep the rest and retry after
     *  {@link ConsoleDevice#hostSpaceAvailable(int)}. */
    int writeToHost(long address, int length);

    /** Guest to host: the end of a batch of {@link #writeToHost} calls (also when they took nothing); wakes the
     *  consumer once. */
    void flushToHost();

    /** Host to guest: copy up to {@code length} bytes of pending host data into {@code address}.
     *  Returns the bytes copied, 0 when nothing is pending. */
    int readFromHost(long address, int length);

    /** Host to guest: true when {@link #readFromHost} may return data (a socket that polled readable can still
     *  turn out empty). The device asks on every host event of the port, so a channel may take host-side
     *  hand-overs here. */
    boolean hasDataFromHost();

    /**
     * Guest to host: from now on, count bytes as taken only once they reached the host peer (the kernel), not a
     * buffer of this process, where the channel can; the device records delivery for a restarted process
     * (INFLIGHT_SHMFD). A channel that cannot keeps its buffering; the default does nothing.
     */
    default void setExactDelivery(final boolean on) {
    }

    /** Worker: a descriptor this channel watches through {@link ConsoleDevice#watchHostInput} became readable. */
    default void hostInputReady() {
    }

    /** Worker: a descriptor this channel watches through {@link ConsoleDevice#watchHostOutput} became writable. */
    default void hostOutputReady() {
    }

    /**
     * Worker: the device serves the port's receive queue from now on (true: the queue started) or no longer
     * (false: it stopped, at a device reset, a frontend that goes, or GET_VRING_BASE). A channel that lends host
     * input to the worker hands it back before this returns false, and asks for it again when it returns true.
     */
    default void hostInputServed(final boolean served) {
    }

    /** Worker: the port was removed from the device; the device calls this channel no more. Let go of anything
     *  the worker holds for it. */
    default void release() {
    }
}
