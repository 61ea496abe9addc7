package org.vsbridge.nativetest.realguest;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Arrays;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.vsbridge.nativetest.kit.HostPeer;

/**
 * The byte stream both ends of a transfer agree on, identical to {@code vsbh.c}: a block of
 * {@link #PERIOD} bytes made of xorshift64* words (little-endian) from a seed, repeated.
 * PERIOD is prime, so a lost, repeated or reordered page shifts the data and is caught.
 */
final class GuestPattern {
    static final int PERIOD = 1_000_003;
    /** Extra copy of the block's start so any window of up to this many bytes is contiguous. */
    static final int WINDOW = 64 * 1024;

    private final byte[] bytes;

    GuestPattern(final long seed) {
        bytes = new byte[PERIOD + WINDOW + 8];
        long x = seed != 0 ? seed : 0x9e3779b97f4a7c15L;
        for (int i = 0; i < PERIOD; i += 8) {
            x ^= x >>> 12;
            x ^= x << 25;
            x ^= x >>> 27;
            final long v = x * 0x2545f4914f6cdd1dL;
            for (int b = 0; b < 8; b++) {
                bytes[i + b] = (byte) (v >>> (8 * b));
            }
        }
        System.arraycopy(bytes, 0, bytes, PERIOD, WINDOW);
    }

    /** The backing array; stream offset {@code o} is at index {@code o % PERIOD}. */
    byte[] array() {
        return bytes;
    }

    static int indexOf(final long streamOffset) {
        return (int) (streamOffset % PERIOD);
    }

    /** The stream from its start as what a host peer sends; its sum is the md5 of what it handed out. */
    HostPeer.Source source() {
        return new HostPeer.Source() {
            private long offset;

            @Override
            public ByteBuffer next(final int max) {
                final int n = Math.min(WINDOW, max);
                final ByteBuffer b = ByteBuffer.wrap(bytes, indexOf(offset), n);
                offset += n;
                return b;
            }

            @Override
            public String sum() {
                return md5(offset);
            }
        };
    }

    /** md5 (hex) of the first {@code length} bytes of the stream. */
    String md5(final long length) {
        final MessageDigest md5 = newMd5();
        for (long done = 0; done < length; ) {
            final int n = (int) Math.min(WINDOW, length - done);
            md5.update(bytes, indexOf(done), n);
            done += n;
        }
        return HexFormat.of().formatHex(md5.digest());
    }

    static MessageDigest newMd5() {
        try {
            return MessageDigest.getInstance("MD5");
        } catch (final NoSuchAlgorithmException e) {
            throw new IllegalStateException("MD5 is required of every JDK", e);
        }
    }

    /**
     * Consumes a received stream: counts it, hashes it and remembers where it first left the
     * pattern. Used by one reader thread; read by others after {@link #isComplete()}.
     */
    static final class Sink {
        private final GuestPattern pattern;
        private final long expected;
        private final MessageDigest md5;
        private volatile long received;
        private volatile long firstMismatch = -1;
        private String hex;
        private final byte[] kept;

        Sink(final GuestPattern pattern, final long expected, final boolean hash) {
            this(pattern, expected, hash, false);
        }

        /** With {@code keep}, also keeps what arrived, for {@link #skippedIfInOrder()}. */
        Sink(final GuestPattern pattern, final long expected, final boolean hash, final boolean keep) {
            this.pattern = pattern;
            this.expected = expected;
            this.md5 = hash ? newMd5() : null;
            this.kept = keep ? new byte[(int) expected] : null;
        }

        /** Takes up to what this sink still expects; returns how many bytes it took. */
        int accept(final byte[] buf, final int off, final int len) {
            final int n = (int) Math.min(len, expected - received);
            final long at = received;
            if (firstMismatch < 0) {
                int done = 0;
                while (done < n) {
                    final int idx = indexOf(at + done);
                    final int chunk = Math.min(n - done, WINDOW);
                    final int mm = Arrays.mismatch(buf, off + done, off + done + chunk,
                        pattern.bytes, idx, idx + chunk);
                    if (mm >= 0) {
                        firstMismatch = at + done + mm;
                        break;
                    }
                    done += chunk;
                }
            }
            if (md5 != null) {
                md5.update(buf, off, n);
            }
            if (kept != null) {
                System.arraycopy(buf, off, kept, (int) at, n);
            }
            received = at + n;
            return n;
        }

        boolean isComplete() {
            return received >= expected;
        }

        long received() {
            return received;
        }

        long expected() {
            return expected;
        }

        long firstMismatch() {
            return firstMismatch;
        }

        /**
         * For a stream the sender may cut pieces out of (QEMU drops console output its chardev cannot take): every
         * byte that arrived is the pattern's, in order, with only gaps between; returns how many bytes the gaps
         * took out of the {@code sent} the guest wrote. Fails when some arrived bytes fit nowhere after the ones
         * before them (reordered, repeated or corrupt). Needs a sink that keeps its bytes.
         */
        long skippedIfInOrder(final long sent) {
            if (kept == null) {
                throw new IllegalStateException("this sink keeps no bytes");
            }
            final int got = (int) received;
            long at = 0; // stream offset of the next byte that arrived
            int i = 0;
            while (i < got) {
                if (at < sent && kept[i] == pattern.bytes[indexOf(at)]) {
                    i++;
                    at++;
                    continue;
                }
                // A gap: the shortest skip after which the next bytes (up to 64) are the pattern's again.
                final int probe = Math.min(64, got - i);
                long skip = 1;
                while (at + skip + probe <= sent && !Arrays.equals(kept, i, i + probe,
                    pattern.bytes, indexOf(at + skip), indexOf(at + skip) + probe)) {
                    skip++;
                }
                if (at + skip + probe > sent) {
                    throw new AssertionError("byte " + i + " that arrived is not the pattern's at or after stream offset "
                        + at + " (of " + sent + " sent): out of order, repeated or corrupt");
                }
                at += skip;
            }
            return sent - received;
        }

        /** Hex md5 of what was received; call once, after the stream ended. */
        synchronized String md5() {
            if (hex == null) {
                hex = md5 == null ? "-" : HexFormat.of().formatHex(md5.digest());
            }
            return hex;
        }
    }
}
