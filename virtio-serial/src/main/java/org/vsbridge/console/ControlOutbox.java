package org.vsbridge.console;

/**
 * Control messages waiting for a control receiveq buffer, in order. Worker thread only. QEMU drops a
 * message when the driver has no buffer posted; we keep it until one appears, up to a fixed capacity
 * so a guest that never posts buffers cannot make us grow. Entries are three primitives, no objects;
 * a PORT_NAME entry's payload is the name of its port, looked up when it is sent.
 */
final class ControlOutbox {

    private final int[] ids;
    private final short[] events;
    private final short[] values;
    private final int mask;
    private long head;
    private long tail;
    private long overflowed;

    ControlOutbox(final int minCapacity) {
        int capacity = Integer.highestOneBit(Math.max(2, minCapacity));
        if (capacity < minCapacity) {
            capacity <<= 1;
        }
        ids = new int[capacity];
        events = new short[capacity];
        values = new short[capacity];
        mask = capacity - 1;
    }

    int capacity() {
        return mask + 1;
    }

    int size() {
        return (int) (tail - head);
    }

    boolean isEmpty() {
        return head == tail;
    }

    /** Append a message; false (and counted) when full. */
    boolean offer(final int id, final int event, final int value) {
        if (tail - head > mask) {
            overflowed++;
            return false;
        }
        final int i = (int) tail & mask;
        ids[i] = id;
        events[i] = (short) event;
        values[i] = (short) value;
        tail++;
        return true;
    }

    int headId() {
        return ids[(int) head & mask];
    }

    int headEvent() {
        return events[(int) head & mask] & 0xFFFF;
    }

    int headValue() {
        return values[(int) head & mask] & 0xFFFF;
    }

    void removeHead() {
        if (head != tail) {
            head++;
        }
    }

    /** Drop everything pending (device reset); returns how many were dropped. */
    int clear() {
        final int dropped = size();
        head = tail;
        return dropped;
    }

    /** Messages refused because the outbox was full, since construction. */
    long overflowed() {
        return overflowed;
    }
}
