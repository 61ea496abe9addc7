package org.vsbridge.vhost.memory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * An immutable table of mapped guest memory regions. Two address spaces, two methods: guest-physical
 * addresses (descriptor {@code addr}s) go through {@link #translateGpa}, frontend virtual addresses (the ring
 * addresses of SET_VRING_ADDR) through {@link #translateUva}. Both return a process address whose whole range
 * lies inside one region, or {@link #BAD}; they never throw, so the worker can call them on guest numbers.
 */
public final class GuestMemory {

    /** Most regions a table may hold; GET_MAX_MEM_SLOTS answers this (rust-vmm's value). */
    public static final int MAX_REGIONS = 509;

    /** Translation failure. mmap never maps page 0, so 0 cannot be a valid process address. */
    public static final long BAD = 0L;

    public static final GuestMemory EMPTY = new GuestMemory(new MemoryRegion[0]);

    private final MemoryRegion[] byGpa;
    private final MemoryRegion[] byUva;
    private final long[] gpaStarts;
    private final long[] uvaStarts;

    private GuestMemory(final MemoryRegion[] regions) {
        this.byGpa = regions.clone();
        Arrays.sort(byGpa, Comparator.comparing(MemoryRegion::guestPhysAddr, Long::compareUnsigned));
        this.byUva = regions.clone();
        Arrays.sort(byUva, Comparator.comparing(MemoryRegion::userspaceAddr, Long::compareUnsigned));
        this.gpaStarts = new long[regions.length];
        this.uvaStarts = new long[regions.length];
        for (int i = 0; i < regions.length; i++) {
            gpaStarts[i] = byGpa[i].guestPhysAddr();
            uvaStarts[i] = byUva[i].userspaceAddr();
        }
    }

    /** A table of {@code regions}; refuses overlapping guest-physical ranges and more than {@link #MAX_REGIONS}. */
    public static GuestMemory of(final List<MemoryRegion> regions) {
        if (regions.size() > MAX_REGIONS) {
            throw new IllegalArgumentException("too many memory regions: " + regions.size() + " > " + MAX_REGIONS);
        }
        final GuestMemory table = new GuestMemory(regions.toArray(new MemoryRegion[0]));
        for (int i = 1; i < table.byGpa.length; i++) {
            if (table.byGpa[i - 1].overlapsGpa(table.byGpa[i])) {
                throw new IllegalArgumentException("memory regions overlap: " + table.byGpa[i - 1] + " and "
                    + table.byGpa[i]);
            }
        }
        return table;
    }

    /** This table plus one region (ADD_MEM_REG). */
    public GuestMemory with(final MemoryRegion region) {
        final List<MemoryRegion> list = new ArrayList<>(Arrays.asList(byGpa));
        list.add(region);
        return of(list);
    }

    /** This table minus one region (REM_MEM_REG). */
    public GuestMemory without(final MemoryRegion region) {
        final List<MemoryRegion> list = new ArrayList<>(Arrays.asList(byGpa));
        list.remove(region);
        return of(list);
    }

    public int regionCount() {
        return byGpa.length;
    }

    public List<MemoryRegion> regions() {
        return List.of(byGpa);
    }

    /** The region REM_MEM_REG names, or null. */
    public MemoryRegion find(final long gpa, final long size, final long uva) {
        for (final MemoryRegion r : byGpa) {
            if (r.sameAs(gpa, size, uva)) {
                return r;
            }
        }
        return null;
    }

    /** Process address of guest-physical {@code [gpa, gpa+len)}, or {@link #BAD} if that range is not entirely
     *  inside one region. {@code len} is unsigned and may be 0. */
    public long translateGpa(final long gpa, final long len) {
        final int i = floor(gpaStarts, gpa);
        if (i < 0) {
            return BAD;
        }
        final MemoryRegion r = byGpa[i];
        final long offset = gpa - r.guestPhysAddr();
        return fits(offset, len, r.size()) ? r.hostAddress() + offset : BAD;
    }

    /** Bytes from {@code gpa} to the end of its region; 0 if {@code gpa} is not mapped. Lets a caller split a
     *  buffer that crosses regions into segments. */
    public long gpaRemaining(final long gpa) {
        final int i = floor(gpaStarts, gpa);
        if (i < 0) {
            return 0;
        }
        final MemoryRegion r = byGpa[i];
        final long offset = gpa - r.guestPhysAddr();
        return Long.compareUnsigned(offset, r.size()) < 0 ? r.size() - offset : 0;
    }

    /** Process address of frontend-virtual {@code [uva, uva+len)}, or {@link #BAD}. */
    public long translateUva(final long uva, final long len) {
        final int i = floor(uvaStarts, uva);
        if (i < 0) {
            return BAD;
        }
        final MemoryRegion r = byUva[i];
        final long offset = uva - r.userspaceAddr();
        return fits(offset, len, r.size()) ? r.hostAddress() + offset : BAD;
    }

    /** offset + len &lt;= size, without overflow (all unsigned; offset already &gt;= 0 relative to the start). */
    private static boolean fits(final long offset, final long len, final long size) {
        return Long.compareUnsigned(offset, size) <= 0 && Long.compareUnsigned(len, size - offset) <= 0
            && (len != 0 || Long.compareUnsigned(offset, size) < 0);
    }

    /** Index of the last start &lt;= address (unsigned), or -1. */
    private static int floor(final long[] starts, final long address) {
        int lo = 0;
        int hi = starts.length - 1;
        int found = -1;
        while (lo <= hi) {
            final int mid = (lo + hi) >>> 1;
            if (Long.compareUnsigned(starts[mid], address) <= 0) {
                found = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return found;
    }

    @Override
    public String toString() {
        return "GuestMemory" + Arrays.toString(byGpa);
    }
}
