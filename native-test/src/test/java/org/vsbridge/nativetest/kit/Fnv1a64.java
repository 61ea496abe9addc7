package org.vsbridge.nativetest.kit;

/** FNV-1a 64, the checksum vsb-frontend prints as tx_sum / rx_sum (16 hex digits). */
public final class Fnv1a64 {

    private static final long OFFSET = 0xcbf29ce484222325L;
    private static final long PRIME = 0x100000001b3L;

    private long hash = OFFSET;

    public void update(final byte[] src, final int offset, final int length) {
        long h = hash;
        for (int i = offset, end = offset + length; i < end; i++) {
            h ^= src[i] & 0xff;
            h *= PRIME;
        }
        hash = h;
    }

    public long value() {
        return hash;
    }

    public String hex() {
        return String.format("%016x", hash);
    }
}
