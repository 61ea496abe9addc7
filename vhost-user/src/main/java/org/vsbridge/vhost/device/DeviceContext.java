package org.vsbridge.vhost.device;

import org.vsbridge.vhost.queue.Virtqueue;

/** What the engine gives a device: its queues, a way to be woken, and its worker's epoll for the device's own
 *  descriptors. */
public interface DeviceContext {

    /** {@link #watchOnce} events: readable (with hang-up and error), writable. */
    int FD_READABLE = 0x1;
    int FD_WRITABLE = 0x4;
    /** Largest token of {@link #watchOnce}. */
    int MAX_FD_TOKEN = (1 << 24) - 1;

    /** Worker only: queue {@code index} (0 &lt;= index &lt; queueCount()); never null, maybe not ready. The object
     *  changes when the acked features change the ring layout (split or packed): ask again, do not keep it. */
    Virtqueue queue(int index);

    /** Worker only: the virtio feature bits the driver acked. */
    long ackedFeatures();

    /** Any thread: make the worker call {@link VirtioDevice#doWork()} soon. Coalesced and cheap
     *  (one eventfd write at most per worker sleep). */
    void wakeup();

    /** Any thread: tell the driver the config space changed (CONFIG_CHANGE_MSG on the backend request channel,
     *  sent asynchronously). False when the frontend gave no such channel (protocol feature BACKEND_REQ). */
    default boolean configChanged() {
        return false;
    }

    /**
     * Worker only: watch {@code fd} until it is ready for {@code events} once ({@link #FD_READABLE},
     * {@link #FD_WRITABLE}); then {@link VirtioDevice#fdReady(int, int)} runs on the worker with {@code token}
     * (0..{@link #MAX_FD_TOKEN}), and the watch must be armed again for more. False when the engine has no such
     * watch or epoll refused the fd. Allocates nothing.
     */
    default boolean watchOnce(final int fd, final int events, final int token) {
        return false;
    }

    /** Any thread: stop watching {@code fd}; call it before closing a watched descriptor (epoll keeps watching a
     *  file while any duplicate of its descriptor is open). */
    default void unwatch(final int fd) {
    }
}
