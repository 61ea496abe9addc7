package org.vsbridge.vhost.testing;

import com.sun.jna.Pointer;

import java.io.IOException;
import org.vsbridge.libc.SharedMemory;
import org.vsbridge.libc.Sys;

/**
 * Guest RAM for tests: one memfd mapped into the test process, as QEMU's {@code memory-backend-memfd,share=on}.
 * Guest-physical address {@code gpaBase} is byte 0 of the memfd; the "frontend virtual address" of a byte is
 * its real address in this process (as QEMU's). A bump allocator hands out guest buffers.
 */
public final class TestGuestMemory implements AutoCloseable {

    private final int fd;
    private final long size;
    private final long gpaBase;
    private final SharedMemory.Mapping mapping;
    private final Pointer base;
    private long next;

    public TestGuestMemory(final long size) throws IOException {
        this(size, 0);
    }

    public TestGuestMemory(final long size, final long gpaBase) throws IOException {
        this.fd = SharedMemory.memfdCreate("test-guest-ram", size);
        this.size = size;
        this.gpaBase = gpaBase;
        this.mapping = SharedMemory.mmap(fd, size, 0);
        this.base = new Pointer(mapping.address());
        this.next = 4096; // keep gpa 0 unused so a zero address in a test is always a bug
    }

    /** The memfd; pass it with SET_MEM_TABLE (the server maps it itself). */
    public int fd() {
        return fd;
    }

    public long size() {
        return size;
    }

    public long gpaBase() {
        return gpaBase;
    }

    /** Frontend virtual address of gpa base (what SET_MEM_TABLE calls userspace_addr). */
    public long uvaBase() {
        return mapping.address();
    }

    public long uva(final long gpa) {
        return mapping.address() + (gpa - gpaBase);
    }

    /** Allocate {@code len} bytes aligned to {@code align} (power of two); returns the gpa. Zero-filled. */
    public long alloc(final long len, final long align) {
        final long at = (next + align - 1) & -align;
        if (at + len > size) {
            throw new IllegalStateException("test guest memory exhausted: " + len + " bytes at " + at);
        }
        next = at + len;
        base.setMemory(at, len, (byte) 0);
        return gpaBase + at;
    }

    private long off(final long gpa, final long len) {
        final long off = gpa - gpaBase;
        if (off < 0 || off + len > size) {
            throw new IndexOutOfBoundsException("gpa 0x" + Long.toHexString(gpa) + "+" + len + " outside test memory");
        }
        return off;
    }

    public void write(final long gpa, final byte[] src) {
        base.write(off(gpa, src.length), src, 0, src.length);
    }

    public void write(final long gpa, final byte[] src, final int offset, final int len) {
        base.write(off(gpa, len), src, offset, len);
    }

    public byte[] read(final long gpa, final int len) {
        final byte[] dst = new byte[len];
        base.read(off(gpa, len), dst, 0, len);
        return dst;
    }

    public void putShort(final long gpa, final int v) {
        base.setShort(off(gpa, 2), (short) v);
    }

    public int getShort(final long gpa) {
        return base.getShort(off(gpa, 2)) & 0xffff;
    }

    public void putInt(final long gpa, final int v) {
        base.setInt(off(gpa, 4), v);
    }

    public int getInt(final long gpa) {
        return base.getInt(off(gpa, 4));
    }

    public void putLong(final long gpa, final long v) {
        base.setLong(off(gpa, 8), v);
    }

    public long getLong(final long gpa) {
        return base.getLong(off(gpa, 8));
    }

    /** Publish a 16-bit ring index with release semantics (the driver's virtio_store_mb). */
    public void putShortRelease(final long gpa, final int v) {
        java.lang.invoke.VarHandle.releaseFence();
        putShort(gpa, v);
        java.lang.invoke.VarHandle.fullFence();
    }

    /** Read a 16-bit ring index with acquire semantics. */
    public int getShortAcquire(final long gpa) {
        final int v = getShort(gpa);
        java.lang.invoke.VarHandle.acquireFence();
        return v;
    }

    @Override
    public void close() throws IOException {
        SharedMemory.munmap(mapping);
        Sys.close(fd);
    }
}
