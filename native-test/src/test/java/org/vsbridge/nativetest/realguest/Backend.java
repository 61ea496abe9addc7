package org.vsbridge.nativetest.realguest;

import java.util.List;

/** Who implements the guest's virtio-console device in a run. */
enum Backend {
    /** The bridge jar behind QEMU's {@code vhost-user-test-device-pci}. */
    BRIDGE(List.of()),
    /** The same with {@code --packed-ring}: the bridge offers VIRTIO_F_RING_PACKED and Linux takes packed rings. */
    BRIDGE_PACKED(List.of("--packed-ring")),
    /** QEMU's own {@code virtio-serial-pci} with {@code virtconsole}/{@code virtserialport}: the reference. */
    QEMU_BUILTIN(List.of());

    private final List<String> bridgeOptions;

    Backend(final List<String> bridgeOptions) {
        this.bridgeOptions = bridgeOptions;
    }

    /** The bridge is the device (behind QEMU's vhost-user device), not QEMU itself. */
    boolean isBridge() {
        return this != QEMU_BUILTIN;
    }

    /** Options the bridge gets beyond the standard layout. */
    List<String> bridgeOptions() {
        return bridgeOptions;
    }
}
