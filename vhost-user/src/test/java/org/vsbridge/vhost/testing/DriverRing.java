package org.vsbridge.vhost.testing;

import java.io.IOException;
import java.util.List;

/**
 * The driver's side of one ring, whatever its layout: {@link TestRing} (split) or {@link TestPackedRing}
 * (packed). What {@link VhostUserClient} needs to set a ring up and {@link TestStreams} needs to move data.
 */
public interface DriverRing extends AutoCloseable {

    int index();

    int size();

    /** SET_VRING_ADDR's descriptor address: the descriptor table (split) or the descriptor ring (packed). */
    long descGpa();

    /** SET_VRING_ADDR's "avail": the avail ring (split) or the driver event suppression structure (packed). */
    long availGpa();

    /** SET_VRING_ADDR's "used": the used ring (split) or the device event suppression structure (packed). */
    long usedGpa();

    int kickFd();

    int callFd();

    /** Driver acked VIRTIO_RING_F_EVENT_IDX. */
    void useEventIdx(boolean on);

    /** What SET_VRING_BASE carries so the device resumes where this driver stands. */
    int vringBase();

    /** A mark of the driver's avail position, to hand to {@link #kickIfNeeded} after posting. */
    int availIdx();

    /** Descriptors the driver may still post. */
    int freeCount();

    /** Post a chain of direct descriptors; returns its head (split) or buffer id (packed). Does not kick. */
    int post(TestRing.Buffer... buffers);

    /** Post a chain as one INDIRECT descriptor with a table in guest memory. Does not kick. */
    int postIndirect(TestRing.Buffer... buffers);

    /** Kick if the device's notification suppression asks for it since {@code oldAvail}; true if it kicked. */
    boolean kickIfNeeded(int oldAvail);

    /** Write the kick eventfd unconditionally. */
    void kick();

    /** Used buffers that appeared since the last call; their descriptors become free again. */
    List<TestRing.Used> collectUsed();

    /** The bytes the device wrote into a used chain. */
    byte[] readWritten(TestRing.Used used);

    /** Wait (safety-net timeout, re-checking the ring so a suppressed call does not hang) until the device used
     *  every chain posted so far; collects nothing. False on timeout. */
    boolean awaitPostedUsed(long timeoutMs) throws IOException;

    /** Wait until the call eventfd fires; returns its counter (0 on timeout). */
    long awaitCall(long timeoutMs) throws IOException;

    /** Read and reset the call eventfd without waiting. */
    long drainCalls();

    @Override
    void close();
}
