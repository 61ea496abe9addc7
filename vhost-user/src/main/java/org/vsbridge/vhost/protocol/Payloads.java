package org.vsbridge.vhost.protocol;

import org.agrona.concurrent.UnsafeBuffer;

import java.nio.ByteOrder;

/**
 * Typed decoders and encoders for vhost-user payloads. Each decoder checks the exact size first and throws
 * {@link ProtocolException} with the reason; values are returned as records (control path only).
 */
public final class Payloads {

    public static final int U64_SIZE = 8;
    public static final int VRING_STATE_SIZE = 8;
    public static final int VRING_ADDR_SIZE = 40;
    public static final int REGION_SIZE = 32;
    public static final int SINGLE_REGION_SIZE = 8 + REGION_SIZE;
    public static final int MEM_TABLE_HEADER_SIZE = 8;
    /** SET_MEM_TABLE carries at most this many regions (VHOST_MEMORY_BASELINE_NREGIONS). */
    public static final int MAX_MEM_TABLE_REGIONS = 8;
    public static final int CONFIG_HEADER_SIZE = 12;
    /** bits 0-7 of a SET_VRING_KICK/CALL/ERR u64: the ring index; bit 8: no fd. */
    public static final long VRING_INDEX_MASK = 0xff;
    public static final long VRING_NOFD_MASK = 0x100;
    /**
     * Bridge extension: the spec's 8-bit index cannot name queues 256..1023 (a 511-port console has 1024), and
     * QEMU truncates to 8 bits. A frontend that needs them puts {@code index >> 8} in bits 16-31; a spec
     * frontend leaves them 0, so its messages mean exactly what the spec says.
     */
    public static final int VRING_INDEX_HIGH_SHIFT = 16;
    private static final long VRING_FD_KNOWN_BITS = VRING_INDEX_MASK | VRING_NOFD_MASK | 0xffffL << 16;

    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private Payloads() {
    }

    public record VringState(int index, int num) {
    }

    public record VringAddr(int index, int flags, long desc, long used, long avail, long log) {
    }

    public record Region(long guestPhysAddr, long size, long userspaceAddr, long mmapOffset) {
    }

    /** GET_INFLIGHT_FD / SET_INFLIGHT_FD: {@code u64 mmap_size, mmap_offset; u16 num_queues, queue_size}. */
    public record Inflight(long mmapSize, long mmapOffset, int numQueues, int queueSize) {
    }

    /** The inflight description's fields; QEMU sends the struct with 4 bytes of tail padding (24 in all). */
    public static final int INFLIGHT_SIZE = 20;
    public static final int INFLIGHT_PADDED_SIZE = 24;

    /** GET_CONFIG / SET_CONFIG header; {@code size} bytes of config follow at offset 12. */
    public record Config(int offset, int size, int flags) {
    }

    private static void expect(final String what, final int size, final int expected) throws ProtocolException {
        if (size != expected) {
            throw new ProtocolException(what + " payload is " + Integer.toUnsignedString(size) + " bytes, expected "
                + expected);
        }
    }

    public static long u64(final String what, final UnsafeBuffer p, final int size) throws ProtocolException {
        expect(what, size, U64_SIZE);
        return p.getLong(0, LE);
    }

    public static VringState vringState(final String what, final UnsafeBuffer p, final int size)
        throws ProtocolException {
        expect(what, size, VRING_STATE_SIZE);
        return new VringState(p.getInt(0, LE), p.getInt(4, LE));
    }

    public static VringAddr vringAddr(final UnsafeBuffer p, final int size) throws ProtocolException {
        expect("SET_VRING_ADDR", size, VRING_ADDR_SIZE);
        return new VringAddr(p.getInt(0, LE), p.getInt(4, LE), p.getLong(8, LE), p.getLong(16, LE),
            p.getLong(24, LE), p.getLong(32, LE));
    }

    private static Region region(final UnsafeBuffer p, final int at) {
        return new Region(p.getLong(at, LE), p.getLong(at + 8, LE), p.getLong(at + 16, LE), p.getLong(at + 24, LE));
    }

    /** SET_MEM_TABLE: {@code u32 nregions; u32 padding; region[nregions]}. */
    public static Region[] memTable(final UnsafeBuffer p, final int size) throws ProtocolException {
        if (size < MEM_TABLE_HEADER_SIZE) {
            throw new ProtocolException("SET_MEM_TABLE payload is " + size + " bytes, shorter than its header");
        }
        final int n = p.getInt(0, LE);
        if (n < 0 || n > MAX_MEM_TABLE_REGIONS) {
            throw new ProtocolException("SET_MEM_TABLE has " + Integer.toUnsignedString(n) + " regions, at most "
                + MAX_MEM_TABLE_REGIONS);
        }
        expect("SET_MEM_TABLE with " + n + " regions", size, MEM_TABLE_HEADER_SIZE + n * REGION_SIZE);
        final Region[] regions = new Region[n];
        for (int i = 0; i < n; i++) {
            regions[i] = region(p, MEM_TABLE_HEADER_SIZE + i * REGION_SIZE);
        }
        return regions;
    }

    /** ADD_MEM_REG / REM_MEM_REG: {@code u64 padding; region}. */
    public static Region singleRegion(final String what, final UnsafeBuffer p, final int size)
        throws ProtocolException {
        expect(what, size, SINGLE_REGION_SIZE);
        return region(p, 8);
    }

    /** GET_CONFIG / SET_CONFIG: the header size must equal 12 + the size field. */
    public static Config config(final String what, final UnsafeBuffer p, final int size) throws ProtocolException {
        if (size < CONFIG_HEADER_SIZE) {
            throw new ProtocolException(what + " payload is " + size + " bytes, shorter than its 12-byte header");
        }
        final Config c = new Config(p.getInt(0, LE), p.getInt(4, LE), p.getInt(8, LE));
        if (c.size() < 0 || c.size() != size - CONFIG_HEADER_SIZE) {
            throw new ProtocolException(what + " says " + Integer.toUnsignedString(c.size())
                + " config bytes but carries " + (size - CONFIG_HEADER_SIZE));
        }
        return c;
    }

    /** The queue index of a SET_VRING_KICK/CALL/ERR u64 (see {@link #VRING_INDEX_HIGH_SHIFT}). */
    public static int vringFdIndex(final String what, final long value) throws ProtocolException {
        if ((value & ~VRING_FD_KNOWN_BITS) != 0) {
            throw new ProtocolException(what + " value 0x" + Long.toHexString(value) + " sets reserved bits 0x"
                + Long.toHexString(value & ~VRING_FD_KNOWN_BITS));
        }
        return (int) ((value & VRING_INDEX_MASK) | (value >>> VRING_INDEX_HIGH_SHIFT & 0xffff) << 8);
    }

    /** Encode a SET_VRING_KICK/CALL/ERR u64 (frontends and tests). */
    public static long vringFdValue(final int index, final boolean noFd) {
        return (index & VRING_INDEX_MASK) | (long) (index >>> 8) << VRING_INDEX_HIGH_SHIFT
            | (noFd ? VRING_NOFD_MASK : 0);
    }

    public static void putU64(final UnsafeBuffer p, final long value) {
        p.putLong(0, value, LE);
    }

    public static Inflight inflight(final String what, final UnsafeBuffer p, final int size) throws ProtocolException {
        if (size != INFLIGHT_SIZE && size != INFLIGHT_PADDED_SIZE) {
            throw new ProtocolException(what + " payload is " + Integer.toUnsignedString(size) + " bytes, expected "
                + INFLIGHT_SIZE + " (" + INFLIGHT_PADDED_SIZE + " with padding)");
        }
        return new Inflight(p.getLong(0, LE), p.getLong(8, LE), p.getShort(16, LE) & 0xffff,
            p.getShort(18, LE) & 0xffff);
    }

    /** Writes {@code i} in {@code size} bytes (the size the request came with; padding zeroed). */
    public static void putInflight(final UnsafeBuffer p, final Inflight i, final int size) {
        p.setMemory(0, size, (byte) 0);
        p.putLong(0, i.mmapSize(), LE);
        p.putLong(8, i.mmapOffset(), LE);
        p.putShort(16, (short) i.numQueues(), LE);
        p.putShort(18, (short) i.queueSize(), LE);
    }

    public static void putVringState(final UnsafeBuffer p, final int index, final int num) {
        p.putInt(0, index, LE);
        p.putInt(4, num, LE);
    }
}
