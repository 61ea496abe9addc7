package org.vsbridge.nativetest.soak;

/**
 * vsb-frontend's data pattern (its --help): xorshift64 (13, 7, 17), each state as 8 little-endian bytes;
 * seed base ^ 1 guest-to-host, base ^ 2 host-to-guest. The position is kept, so fills continue the stream.
 */
final class SoakPattern {

    private long state;
    private long word;
    private int left;

    SoakPattern(final long seed) {
        this.state = seed == 0 ? 1 : seed;
    }

    void fill(final byte[] dst, final int offset, final int length) {
        long x = state;
        long w = word;
        int l = left;
        for (int i = offset, end = offset + length; i < end; i++) {
            if (l == 0) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                w = x;
                l = 8;
            }
            dst[i] = (byte) w;
            w >>>= 8;
            l--;
        }
        state = x;
        word = w;
        left = l;
    }
}
