package org.vsbridge.nativetest.realguest;

/** Who implements the guest's virtio-console device in a run. */
enum Backend {
    /** The bridge jar behind QEMU's {@code vhost-user-test-device-pci}. */
    BRIDGE,
    /** QEMU's own {@code virtio-serial-pci} with {@code virtconsole}/{@code virtserialport}: the reference. */
    QEMU_BUILTIN
}
