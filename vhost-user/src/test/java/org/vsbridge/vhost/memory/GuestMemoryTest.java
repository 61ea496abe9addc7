package org.vsbridge.vhost.memory;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.vsbridge.libc.SharedMemory;
import org.vsbridge.libc.Sys;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class GuestMemoryTest {

    private final List<MemoryRegion> regions = new ArrayList<>();
    private final List<Integer> fds = new ArrayList<>();

    private MemoryRegion region(final long gpa, final long size, final long uva) throws IOException {
        final int fd = SharedMemory.memfdCreate("gm", size);
        fds.add(fd);
        final MemoryRegion r = MemoryRegion.map(fd, gpa, size, uva, 0);
        regions.add(r);
        return r;
    }

    @AfterEach
    void unmap() throws IOException {
        for (final MemoryRegion r : regions) {
            r.unmap();
        }
        for (final int fd : fds) {
            Sys.close(fd);
        }
    }

    @Test
    void translatesInsideRegionsOnlyAndKeepsAddressSpacesApart() throws IOException {
        final MemoryRegion low = region(0x0, 0x10000, 0x7000_0000_0000L);
        final MemoryRegion high = region(0x100000, 0x10000, 0x6000_0000_0000L);
        final GuestMemory m = GuestMemory.of(List.of(high, low));

        assertEquals(low.hostAddress() + 0x100, m.translateGpa(0x100, 16));
        assertEquals(high.hostAddress() + 0xfff0, m.translateGpa(0x10fff0, 16));
        assertEquals(GuestMemory.BAD, m.translateGpa(0x10fff0, 17), "crosses the end of the region");
        assertEquals(GuestMemory.BAD, m.translateGpa(0x20000, 1), "hole between regions");
        assertEquals(GuestMemory.BAD, m.translateGpa(0x200000, 0), "after every region");
        // A gpa is not a uva: the same number means different things in the two spaces.
        assertEquals(GuestMemory.BAD, m.translateUva(0x100, 16));
        assertEquals(low.hostAddress() + 0x100, m.translateUva(0x7000_0000_0100L, 16));
        assertEquals(high.hostAddress(), m.translateUva(0x6000_0000_0000L, 0x10000));
        assertEquals(GuestMemory.BAD, m.translateUva(0x6000_0000_0000L, 0x10001));
    }

    @Test
    void rangeChecksSurviveWrapAround() throws IOException {
        final MemoryRegion r = region(0x1000, 0x1000, 0x5000_0000_0000L);
        final GuestMemory m = GuestMemory.of(List.of(r));
        assertEquals(GuestMemory.BAD, m.translateGpa(0x1800, -1L), "len 2^64-1 would wrap gpa + len");
        assertEquals(GuestMemory.BAD, m.translateGpa(0x1800, Long.MIN_VALUE));
        assertEquals(GuestMemory.BAD, m.translateGpa(-16L, 32));
        assertEquals(GuestMemory.BAD, m.translateUva(-1L, 2));
        assertEquals(0x800, m.gpaRemaining(0x1800));
        assertEquals(0, m.gpaRemaining(0x2000));
        assertEquals(0, m.gpaRemaining(-1L));
    }

    @Test
    void refusesOverlapsAndWrappingRegions() throws IOException {
        final MemoryRegion a = region(0x0, 0x2000, 0x1000_0000L);
        final MemoryRegion b = region(0x1000, 0x2000, 0x2000_0000L);
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.of(List.of(a, b)));
        final int fd = SharedMemory.memfdCreate("w", 4096);
        fds.add(fd);
        assertThrows(IOException.class, () -> MemoryRegion.map(fd, -4096L, 8192, 0x1000, 0));
        assertThrows(IOException.class, () -> MemoryRegion.map(fd, 0, 0, 0x1000, 0));
    }

    @Test
    void addAndRemoveRegions() throws IOException {
        final MemoryRegion a = region(0x0, 0x1000, 0x1000_0000L);
        final MemoryRegion b = region(0x4000, 0x1000, 0x2000_0000L);
        final GuestMemory one = GuestMemory.EMPTY.with(a);
        final GuestMemory two = one.with(b);
        assertEquals(2, two.regionCount());
        assertSame(b, two.find(0x4000, 0x1000, 0x2000_0000L));
        assertNull(two.find(0x4000, 0x1000, 0x3000_0000L), "user address must match too");
        final GuestMemory back = two.without(b);
        assertEquals(GuestMemory.BAD, back.translateGpa(0x4000, 1));
        assertNotEquals(GuestMemory.BAD, two.translateGpa(0x4000, 1), "tables are immutable");
    }

    @Test
    void unalignedMmapOffsetIsAlignedDownAndRemembered() throws IOException {
        final int fd = SharedMemory.memfdCreate("u", 3 * SharedMemory.pageSize());
        fds.add(fd);
        final SharedMemory.Mapping whole = SharedMemory.mmap(fd, 3L * SharedMemory.pageSize(), 0);
        try {
            final MemoryRegion r = MemoryRegion.map(fd, 0x10000, 256, 0x10000, SharedMemory.pageSize() + 100);
            regions.add(r);
            new com.sun.jna.Pointer(whole.address()).setByte(SharedMemory.pageSize() + 100, (byte) 42);
            final GuestMemory m = GuestMemory.of(List.of(r));
            assertEquals(42, new com.sun.jna.Pointer(m.translateGpa(0x10000, 1)).getByte(0));
        } finally {
            SharedMemory.munmap(whole);
        }
    }
}
