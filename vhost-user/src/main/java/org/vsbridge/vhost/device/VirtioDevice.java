package org.vsbridge.vhost.device;

/**
 * A virtio device served over vhost-user. The engine knows devices only through this interface
 * (as rust-vmm's {@code VhostUserBackend}); nothing in the engine names a particular device type.
 *
 * <p>Threading: the "control" methods run on the vhost-user connection thread and must be
 * thread-safe with respect to the worker; every other method runs on the device's worker thread,
 * which owns all queue state.
 */
public interface VirtioDevice {

    /** Virtio device id (3 for a console); informational, used by --print-capabilities and logs. */
    int deviceId();

    /** Control: virtio feature bits offered to the driver (no VHOST_USER_F_PROTOCOL_FEATURES bit). */
    long deviceFeatures();

    /** Control: number of virtqueues this device serves (GET_QUEUE_NUM answers this). */
    int queueCount();

    /** Control: largest queue size accepted by SET_VRING_NUM (a power of two). */
    int maxQueueSize();

    /** Control: size of the device config space in bytes. */
    int configSize();

    /** Control: copy {@code length} bytes of config space at {@code offset} (already bounds-checked) into dst. */
    void readConfig(int offset, byte[] dst, int dstOffset, int length);

    /** Control: the driver writes config space (already bounds-checked). */
    void writeConfig(int offset, byte[] src, int srcOffset, int length);

    /** Worker: called once before anything else, with the context the device keeps. */
    void attach(DeviceContext context);

    /** Worker: SET_FEATURES acked these virtio feature bits (bit 30 removed). */
    void featuresAcked(long ackedFeatures);

    /** Worker: queue {@code index} became ready (started and enabled with valid rings and memory). */
    void queueStarted(int index);

    /** Worker: queue {@code index} stopped (GET_VRING_BASE, disable, reset, disconnect). Drop anything that
     *  refers to its descriptors: the next start re-presents whatever was not consumed. */
    void queueStopped(int index);

    /** Worker: the guest kicked queue {@code index} (or the engine rescanned it at start). Returns work done. */
    int queueKicked(int index);

    /** Worker: called every worker loop iteration and after {@link DeviceContext#wakeup()}; host-side work.
     *  Returns how much work was done (0 lets the worker idle). */
    int doWork();

    /** Worker: the device is reset (RESET_DEVICE, SET_STATUS 0, RESET_OWNER, frontend disconnect).
     *  All queues have already been stopped. */
    void reset();

    /** Worker: a descriptor watched with {@link DeviceContext#watchOnce} is ready ({@code events}: epoll bits).
     *  Returns the work done, as {@link #doWork()}. */
    default int fdReady(final int token, final int events) {
        return 0;
    }

    /** Worker: the driver status changed (SET_STATUS), e.g. DRIVER_OK (bit 2). */
    default void statusChanged(int status) {
    }

    /**
     * Worker: the frontend's inflight buffer (INFLIGHT_SHMFD) has room for the device's own state, which a device
     * started on the buffer after a previous process died finds there (null: no buffer any more). The device
     * decides the layout; {@code state} is zeroed the first time.
     */
    default void stateBuffer(org.agrona.concurrent.UnsafeBuffer state) {
    }
}
