package org.vsbridge.vhost.testing;

import org.agrona.concurrent.UnsafeBuffer;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.device.VirtioDevice;
import org.vsbridge.vhost.queue.DescriptorChain;
import org.vsbridge.vhost.queue.Virtqueue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A test device: queues come in pairs (2k = rx, 2k+1 = tx, like a console port) and every byte the driver
 * transmits on 2k+1 comes back on 2k. The byte stream is preserved across chain boundaries: an rx chain is
 * completed when full or when no tx bytes are left. Records its lifecycle calls for assertions.
 */
public final class LoopbackDevice implements VirtioDevice {

    private final int queueCount;
    private final int maxQueueSize;
    private final long features;
    private final byte[] config;
    private final List<String> events = new CopyOnWriteArrayList<>();
    private final AtomicLong bytesLooped = new AtomicLong();
    private final UnsafeBuffer src = new UnsafeBuffer(0, 0);
    private final UnsafeBuffer dst = new UnsafeBuffer(0, 0);
    private final DescriptorChain tx = new DescriptorChain();
    private final DescriptorChain rx = new DescriptorChain();
    private final long[] txConsumed;
    private final AtomicLong doWorkCalls = new AtomicLong();
    private volatile boolean failKicks;
    private volatile DeviceContext context;

    public LoopbackDevice(final int queueCount, final int maxQueueSize, final long features, final int configSize) {
        if (queueCount % 2 != 0) {
            throw new IllegalArgumentException("queues come in rx/tx pairs");
        }
        this.queueCount = queueCount;
        this.maxQueueSize = maxQueueSize;
        this.features = features;
        this.config = new byte[configSize];
        for (int i = 0; i < configSize; i++) {
            config[i] = (byte) (i + 1);
        }
        this.txConsumed = new long[queueCount];
    }

    /** Lifecycle calls seen so far, e.g. "started 1", "stopped 0", "reset", "features 0x...", "status 15". */
    public List<String> events() {
        return events;
    }

    public long bytesLooped() {
        return bytesLooped.get();
    }

    /** Make queueKicked throw, to prove the worker survives a failing device. */
    public void failKicks(final boolean fail) {
        failKicks = fail;
    }

    public synchronized byte[] configSnapshot() {
        return config.clone();
    }

    @Override
    public int deviceId() {
        return 0xfff0;
    }

    @Override
    public long deviceFeatures() {
        return features;
    }

    @Override
    public int queueCount() {
        return queueCount;
    }

    @Override
    public int maxQueueSize() {
        return maxQueueSize;
    }

    @Override
    public int configSize() {
        return config.length;
    }

    @Override
    public synchronized void readConfig(final int offset, final byte[] out, final int outOffset, final int length) {
        System.arraycopy(config, offset, out, outOffset, length);
    }

    @Override
    public synchronized void writeConfig(final int offset, final byte[] in, final int inOffset, final int length) {
        System.arraycopy(in, inOffset, config, offset, length);
    }

    @Override
    public void attach(final DeviceContext context) {
        this.context = context;
        events.add("attach");
    }

    @Override
    public void featuresAcked(final long acked) {
        events.add("features 0x" + Long.toHexString(acked));
    }

    @Override
    public void queueStarted(final int index) {
        events.add("started " + index);
    }

    @Override
    public void queueStopped(final int index) {
        events.add("stopped " + index);
        txConsumed[index] = 0;
    }

    @Override
    public int queueKicked(final int index) {
        if (failKicks) {
            throw new IllegalStateException("test device told to fail on kick of queue " + index);
        }
        return pump(index & ~1);
    }

    @Override
    public int doWork() {
        doWorkCalls.incrementAndGet();
        return 0;
    }

    /** How often the worker called {@link #doWork()}. */
    public long doWorkCalls() {
        return doWorkCalls.get();
    }

    /** The context given at attach (null before the worker started). */
    public DeviceContext context() {
        return context;
    }

    @Override
    public void reset() {
        events.add("reset");
        java.util.Arrays.fill(txConsumed, 0);
    }

    @Override
    public void statusChanged(final int status) {
        events.add("status " + status);
    }

    /** Move bytes from tx (rxIndex+1) into rx (rxIndex) until one side runs dry. */
    private int pump(final int rxIndex) {
        final Virtqueue rxq = context.queue(rxIndex);
        final Virtqueue txq = context.queue(rxIndex + 1);
        int work = 0;
        boolean again = true;
        while (again) {
            again = false;
            while (txq.peek(tx)) {
                if (tx.readableLength() == 0) {
                    txq.advance();
                    txq.addUsed(tx.head(), 0);
                    work++;
                    continue;
                }
                if (!rxq.peek(rx)) {
                    break;
                }
                final long written = copy(tx, txConsumed[rxIndex + 1], rx);
                txConsumed[rxIndex + 1] += written;
                bytesLooped.addAndGet(written);
                rxq.advance();
                rxq.addUsed(rx.head(), (int) written);
                if (txConsumed[rxIndex + 1] == tx.readableLength()) {
                    txq.advance();
                    txq.addUsed(tx.head(), 0);
                    txConsumed[rxIndex + 1] = 0;
                }
                work++;
            }
            rxq.flushUsed();
            txq.flushUsed();
            // Ask for kicks again and re-check, so a buffer posted meanwhile is not left behind.
            again = txq.enableNotifications() & rxq.enableNotifications()
                && txq.available() > 0 && rxq.available() > 0;
        }
        return work;
    }

    /** Copy tx's readable bytes from {@code skip} into rx's writable segments; returns bytes copied. */
    private long copy(final DescriptorChain from, final long skip, final DescriptorChain to) {
        int fi = 0;
        long fo = skip;
        while (fi < from.segmentCount() && (from.isWritable(fi) || fo >= from.length(fi))) {
            if (!from.isWritable(fi)) {
                fo -= from.length(fi);
            }
            fi++;
        }
        long total = 0;
        for (int ti = 0; ti < to.segmentCount() && fi < from.segmentCount(); ti++) {
            if (!to.isWritable(ti)) {
                continue;
            }
            long to0 = 0;
            while (to0 < to.length(ti) && fi < from.segmentCount()) {
                if (from.isWritable(fi)) {
                    fi++;
                    continue;
                }
                final int n = (int) Math.min(to.length(ti) - to0, from.length(fi) - fo);
                src.wrap(from.address(fi), from.length(fi));
                dst.wrap(to.address(ti), to.length(ti));
                src.getBytes((int) fo, dst, (int) to0, n);
                to0 += n;
                fo += n;
                total += n;
                if (fo == from.length(fi)) {
                    fi++;
                    fo = 0;
                }
            }
        }
        return total;
    }
}
