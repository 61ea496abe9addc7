package org.vsbridge.libc;

import java.io.IOException;

/** Memory shared with another process: memfd files, their seals, and shared mappings of them. */
public final class SharedMemory {

    /** memfd seals: no shrinking, no growing (the mapping of the whole file stays valid). */
    public static final int F_SEAL_SHRINK = 2;
    public static final int F_SEAL_GROW = 4;

    private static final int PROT_READ = 0x1;
    private static final int PROT_WRITE = 0x2;
    private static final int MAP_SHARED = 0x1;
    private static final int MAP_NORESERVE = 0x4000;
    private static final int MFD_CLOEXEC = 0x1;
    private static final int MFD_ALLOW_SEALING = 2;
    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    private static final int SC_PAGESIZE = 30;

    private static final int PAGE_SIZE = (int) LibC.sysconf(SC_PAGESIZE);

    private SharedMemory() {
    }

    public static int pageSize() {
        return PAGE_SIZE;
    }

    /** An anonymous shared-memory file of {@code size} bytes (close-on-exec). */
    public static int memfdCreate(final String name, final long size) throws ErrnoException {
        final int fd = LibC.memfd_create(name, MFD_CLOEXEC);
        if (fd < 0) {
            throw ErrnoException.last("memfd_create(" + name + ")");
        }
        if (LibC.ftruncate(fd, size) != 0) {
            final ErrnoException e = ErrnoException.last("ftruncate(memfd, " + size + ")");
            Sys.closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** A memfd of {@code size} bytes that can never shrink or grow: whoever else holds it cannot make a mapping of
     *  it fault (close-on-exec). */
    public static int memfdCreateSealed(final String name, final long size) throws ErrnoException {
        final int fd = LibC.memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            throw ErrnoException.last("memfd_create(" + name + ")");
        }
        if (LibC.ftruncate(fd, size) != 0 || LibC.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
            final ErrnoException e = ErrnoException.last("sizing and sealing memfd " + name);
            Sys.closeQuietly(fd);
            throw e;
        }
        return fd;
    }

    /** The seals of a memfd (0 for a file that has none or cannot have any). */
    public static int seals(final int fd) {
        final int s = LibC.fcntl(fd, F_GET_SEALS, 0);
        return Math.max(s, 0);
    }

    /** The size of the file behind {@code fd} (its end, by lseek; the file position is left at the end). */
    public static long fileSize(final int fd) throws ErrnoException {
        final long size = LibC.lseek(fd, 0, 2 /* SEEK_END */);
        if (size < 0) {
            throw ErrnoException.last("lseek(fd " + fd + ", SEEK_END)");
        }
        return size;
    }

    /**
     * Map {@code length} bytes of {@code fd} at {@code offset}, shared, read-write, without reserving
     * swap and without prefaulting. An offset that is not page-aligned is aligned down and the
     * remainder remembered (some frontends send unaligned offsets).
     */
    public static Mapping mmap(final int fd, final long length, final long offset) throws IOException {
        if (length <= 0 || offset < 0) {
            throw new IOException("mmap: bad length " + length + " or offset " + offset);
        }
        final long remainder = offset & (PAGE_SIZE - 1);
        final long mapLength = length + remainder;
        if (mapLength < length) {
            throw new IOException("mmap: length " + length + " overflows");
        }
        final long base = LibC.mmap(0, mapLength, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
            offset - remainder);
        if (base == -1L) {
            throw ErrnoException.last("mmap(fd " + fd + ", " + length + " bytes at offset " + offset + ")");
        }
        return new Mapping(base, mapLength, base + remainder, length);
    }

    public static void munmap(final Mapping mapping) throws ErrnoException {
        if (LibC.munmap(mapping.base(), mapping.mapLength()) != 0) {
            throw ErrnoException.last("munmap");
        }
    }

    /** The result of {@link #mmap}: {@code address} is where offset {@code offset} of the file landed. */
    public record Mapping(long base, long mapLength, long address, long length) {
    }
}
