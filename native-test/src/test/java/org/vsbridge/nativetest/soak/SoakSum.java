package org.vsbridge.nativetest.soak;

/** FNV-1a 64 as vsb-frontend prints it (tx_sum / rx_sum, 16 hex digits). */
final class SoakSum {

    private long hash = 0xcbf29ce484222325L;

    void update(final byte[] src, final int offset, final int length) {
        long h = hash;
        for (int i = offset, end = offset + length; i < end; i++) {
            h ^= src[i] & 0xff;
            h *= 0x100000001b3L;
        }
        hash = h;
    }

    String hex() {
        return String.format("%016x", hash);
    }
}
