package org.vsbridge.nativetest.kit;

/**
 * The byte pattern vsb-frontend writes and expects (see its --help): xorshift64 with shifts 13, 7, 17,
 * each state emitted as 8 little-endian bytes. Seeds: base ^ 1 guest-to-host, base ^ 2 host-to-guest, with
 * base = 0x9E3779B97F4A7C15 ^ (port << 32) unless the scenario gives seed=. A stream remembers its position,
 * so successive fills continue it (as the frontend's streams continue across runs).
 */
public final class PatternStream {

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    private long state;
    private long word;
    private int left;

    public PatternStream(final long seed) {
        this.state = seed == 0 ? 1 : seed;
    }

    public static PatternStream guestToHost(final int port) {
        return new PatternStream(GOLDEN ^ ((long) port << 32) ^ 1);
    }

    public static PatternStream hostToGuest(final int port) {
        return new PatternStream(GOLDEN ^ ((long) port << 32) ^ 2);
    }

    public void fill(final byte[] dst, final int offset, final int length) {
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
