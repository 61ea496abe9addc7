package org.vsbridge.vhost.device;

import org.vsbridge.vhost.queue.Virtqueue;

/** What the engine gives a device: its queues and a way to be woken. */
public interface DeviceContext {

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
}
