package org.vsbridge.vhost.queue;

/**
 * A virtqueue as a device sees it. Worker thread only. Addresses handed out in a {@link DescriptorChain}
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

    /** Number of chains available to pop (avail.idx - next_avail), 0 if not ready. */
    int available();

    /** Put a used element (head id, bytes written into the chain's writable part) into the used ring,
     *  not yet published. */
    void addUsed(int head, int writtenLength);

    /** Publish the used index (release) and signal the guest through the call fd if it wants it
     *  (EVENT_IDX-aware). Call once per batch of {@link #addUsed}. */
    void flushUsed();

    /** Ask the guest for kicks (EVENT_IDX: avail_event = next_avail). Returns true if chains became available
     *  meanwhile, so the caller must process again before sleeping. */
    boolean enableNotifications();

    /** Ask the guest not to kick while we are polling anyway. */
    void disableNotifications();
}
