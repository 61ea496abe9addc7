package org.vsbridge.vhost.memory;

import java.io.IOException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.vsbridge.libc.SharedMemory;

/**
 * One region of guest memory as the frontend described it ({@code VhostUserMemoryRegion}), mapped into this
 * process. Immutable apart from {@link #unmap()}, which the control thread calls only after the worker has
 * acknowledged a memory table that no longer holds the region.
 */
public final class MemoryRegion {

    private final long guestPhysAddr;
    private final long size;
    private final long userspaceAddr;
    private final long mmapOffset;
    private final SharedMemory.Mapping mapping;
    private final AtomicBoolean unmapped = new AtomicBoolean();

    private MemoryRegion(final long guestPhysAddr, final long size, final long userspaceAddr,
                         final long mmapOffset, final SharedMemory.Mapping mapping) {
        this.guestPhysAddr = guestPhysAddr;
        this.size = size;
        this.userspaceAddr = userspaceAddr;
        this.mmapOffset = mmapOffset;
        this.mapping = mapping;
    }

    /**
     * Validate a frontend's region description and map it from {@code fd}. The fd is not closed here
     * (the caller owns it; the mapping keeps the file alive by itself).
     */
    public static MemoryRegion map(final int fd, final long guestPhysAddr, final long size, final long userspaceAddr,
                                   final long mmapOffset) throws IOException {
        if (size <= 0) {
            throw new IOException("memory region size must be positive, got " + Long.toUnsignedString(size));
        }
        if (Long.compareUnsigned(guestPhysAddr + size - 1, guestPhysAddr) < 0) {
            throw new IOException("memory region gpa 0x" + Long.toHexString(guestPhysAddr) + " + size 0x"
                + Long.toHexString(size) + " wraps around");
        }
        if (Long.compareUnsigned(userspaceAddr + size - 1, userspaceAddr) < 0) {
            throw new IOException("memory region uva 0x" + Long.toHexString(userspaceAddr) + " + size 0x"
                + Long.toHexString(size) + " wraps around");
        }
        if (mmapOffset < 0 || mmapOffset + size < 0) {
            throw new IOException("memory region mmap_offset 0x" + Long.toHexString(mmapOffset) + " out of range");
        }
        return new MemoryRegion(guestPhysAddr, size, userspaceAddr, mmapOffset, SharedMemory.mmap(fd, size, mmapOffset));
    }

    public long guestPhysAddr() {
        return guestPhysAddr;
    }

    public long size() {
        return size;
    }

    public long userspaceAddr() {
        return userspaceAddr;
    }

    public long mmapOffset() {
        return mmapOffset;
    }

    /** Process address of guest-physical {@link #guestPhysAddr()}. */
    public long hostAddress() {
        return mapping.address();
    }

    /** Last guest-physical address inside the region (inclusive, so a region ending at 2^64 works). */
    long lastGpa() {
        return guestPhysAddr + size - 1;
    }

    long lastUva() {
        return userspaceAddr + size - 1;
    }

    boolean overlapsGpa(final MemoryRegion other) {
        return Long.compareUnsigned(guestPhysAddr, other.lastGpa()) <= 0
            && Long.compareUnsigned(other.guestPhysAddr, lastGpa()) <= 0;
    }

    /** Same region as REM_MEM_REG identifies it: guest address, user address and size (mmap offset ignored). */
    public boolean sameAs(final long gpa, final long regionSize, final long uva) {
        return guestPhysAddr == gpa && size == regionSize && userspaceAddr == uva;
    }

    /** Unmap once; later calls do nothing. Only after no worker can reach the region any more. */
    public void unmap() throws IOException {
        if (unmapped.compareAndSet(false, true)) {
            SharedMemory.munmap(mapping);
        }
    }

    @Override
    public String toString() {
        return "region{gpa=0x" + Long.toHexString(guestPhysAddr) + ", size=0x" + Long.toHexString(size)
            + ", uva=0x" + Long.toHexString(userspaceAddr) + ", offset=0x" + Long.toHexString(mmapOffset) + "}";
    }
}
