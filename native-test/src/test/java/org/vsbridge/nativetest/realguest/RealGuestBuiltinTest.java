package org.vsbridge.nativetest.realguest;

/**
 * The real-guest checks against QEMU's own {@code virtio-serial-pci}: the reference the bridge
 * must match, and the proof that the guest image, {@code /init} and the harness are right.
 */
class RealGuestBuiltinTest extends RealGuestSuite {
    @Override
    Backend backend() {
        return Backend.QEMU_BUILTIN;
    }

    /** QEMU drops console output when its chardev socket would block (the reference is known to lose some). */
    @Override
    boolean consoleMayDropOutput() {
        return true;
    }
}
