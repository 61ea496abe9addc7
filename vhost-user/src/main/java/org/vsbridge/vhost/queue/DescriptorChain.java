package org.vsbridge.vhost.queue;

/**
 * A reusable flyweight for one descriptor chain, filled by {@link Virtqueue#peek}. Segments are in chain
 * order: readable (device-reads) segments first, then writable ones, as the virtio spec requires.
 * A guest buffer that crosses memory regions is split into several segments.
 */
public final class DescriptorChain {

    /** Most segments one chain may hold; a longer chain marks the queue broken. */
    public static final int MAX_SEGMENTS = 1024;

    private final long[] addresses = new long[MAX_SEGMENTS];
    private final int[] lengths = new int[MAX_SEGMENTS];
    private final boolean[] writable = new boolean[MAX_SEGMENTS];
    private int count;
    private int head;
    private long readableLength;
    private long writableLength;

    /** Engine only: start filling for a new chain. */
    public void reset(final int head) {
        this.head = head;
        this.count = 0;
        this.readableLength = 0;
        this.writableLength = 0;
    }

    /** Engine only: the head once it is known; a packed ring reads the buffer id at the chain's last
     *  descriptor, after its segments. */
    public void setHead(final int head) {
        this.head = head;
    }

    /** Engine only: append a translated segment. Returns false when the chain is too long. */
    public boolean add(final long address, final int length, final boolean isWritable) {
        if (count == MAX_SEGMENTS) {
            return false;
        }
        addresses[count] = address;
        lengths[count] = length;
        writable[count] = isWritable;
        count++;
        if (isWritable) {
            writableLength += length;
        } else {
            readableLength += length;
        }
        return true;
    }

    /** What {@link Virtqueue#addUsed} takes back: the head descriptor index (split) or the buffer id (packed). */
    public int head() {
        return head;
    }

    public int segmentCount() {
        return count;
    }

    public long address(final int i) {
        return addresses[i];
    }

    public int length(final int i) {
        return lengths[i];
    }

    public boolean isWritable(final int i) {
        return writable[i];
    }

    /** Total bytes the device may read from the chain. */
    public long readableLength() {
        return readableLength;
    }

    /** Total bytes the device may write into the chain. */
    public long writableLength() {
        return writableLength;
    }
}
