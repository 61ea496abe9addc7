package org.vsbridge.vhost.queue;

/**
 * A virtqueue as a device sees it, whatever its layout ({@link SplitVirtqueue} or {@link PackedVirtqueue}).
 * Worker thread only. Addresses handed out in a {@link DescriptorChain}
 * are process addresses inside mapped guest memory, already range-checked, valid only until the
 * device callback that obtained them returns (the memory table may be replaced between callbacks).
 */
public interface Virtqueue {

    int index();

    /** Queue size set by SET_VRING_NUM. */
    int size();

    /** Started, enabled, rings translated and memory mapped; false also when broken. */
    boolean isReady();

    /** A guest-supplied number was invalid; the queue stopped processing (logged once). */
    boolean isBroken();

    /** Fill {@code chain} with the chain at next_avail without consuming it. False if none (or not ready, or broken). */
    boolean peek(DescriptorChain chain);

    /** Consume the chain that {@link #peek} returned (advance next_avail). */
    void advance();

    /** peek + advance. */
    default boolean pop(DescriptorChain chain) {
        if (!peek(chain)) {
            return false;
        }
        advance();
        return true;
    }

    /**
     * {@link #peek}, and when the ring is empty ask for kicks and look once more: a buffer the driver added before it
     * saw the request would otherwise wait for the next kick. False: nothing available, kicks requested.
     */
    default boolean peekOrRequestKick(DescriptorChain chain) {
        return peek(chain) || enableNotifications() && peek(chain);
    }

    /** {@link #peekOrRequestKick} + advance. */
    default boolean popOrRequestKick(DescriptorChain chain) {
        return pop(chain) || enableNotifications() && pop(chain);
    }

    /** Chains available to pop, 0 if not ready: a split ring counts them (avail.idx - next_avail), a packed ring
     *  answers 1 when the descriptor at next_avail is available. Callers test it against 0. */
    int available();

    /** Put a used element ({@link DescriptorChain#head()}, bytes written into the chain's writable part) into the
     *  used ring, not yet published. */
    void addUsed(int head, int writtenLength);

    /** Publish the used index (release) and signal the guest through the call fd if it wants it
     *  (EVENT_IDX-aware). Call once per batch of {@link #addUsed}. */
    void flushUsed();

    /** Ask the guest for kicks (EVENT_IDX: avail_event, or the packed device event, = next_avail). Returns true if chains became available
     *  meanwhile, so the caller must process again before sleeping. */
    boolean enableNotifications();

    /** Ask the guest not to kick while we are polling anyway. */
    void disableNotifications();

    // ------------------------------------------------------------------ INFLIGHT_SHMFD (split rings)

    /** The frontend gave an inflight buffer (SET_INFLIGHT_FD) and this queue keeps its state there. */
    default boolean tracksInflight() {
        return false;
    }

    /** The inflight buffer describes this ring from an earlier start (a restart after the previous process died,
     *  or a reconnect), rather than being blank. */
    default boolean resumesInflight() {
        return false;
    }

    /**
     * A device that delivers a queue's chains somewhere outside the process (guest output to a host peer) asks
     * for its delivery to be recorded: from now on every {@link #advance} records "delivered up to here", and
     * {@link #noteDelivered} a chain delivered in part. A process that starts on the buffer after this one died
     * completes what was delivered and resumes a chain where it stopped ({@link #resumeOffset}).
     */
    default void setDeliveryTracking(final boolean on) {
    }

    /** The chain at next_avail ({@code head}, peeked, not advanced) has {@code bytes} of it delivered. */
    default void noteDelivered(final int head, final long bytes) {
    }

    /**
     * Bytes of the peeked chain {@code head} a previous process delivered before it died (0 when none). Asked
     * once per chain: the answer is given once.
     */
    default long resumeOffset(final int head) {
        return 0;
    }
}
