package org.vsbridge.console;

import java.util.function.IntConsumer;
import java.util.logging.Level;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * emerg_wr (VIRTIO_CONSOLE_F_EMERG_WRITE): single characters the driver writes into config space, at any time,
 * even before feature negotiation (virtio spec 5.3.4). They arrive on the vhost-user control thread
 * ({@link #write}) and go either to a sink set by the bridge (on that thread) or, through a queue, to the channel
 * of the emergency port, which the worker writes ({@link #drain}).
 */
final class EmergencyOutput {

    /** Emergency-write bytes waiting for the worker (only when they go to a port's channel). */
    private static final int CAPACITY = 4096;

    private final DeviceCore core;
    /** Bytes on their way to the emergency port's channel (Byte.valueOf is cached: no allocation). */
    private final ManyToOneConcurrentArrayQueue<Byte> queue = new ManyToOneConcurrentArrayQueue<>(CAPACITY);
    /** Worker: the bytes of one drain, in memory a channel can read. */
    private final UnsafeBuffer buffer = new UnsafeBuffer(java.nio.ByteBuffer.allocateDirect(256));
    private volatile IntConsumer sink;
    private volatile int port = -1;
    private volatile boolean dropLogged;

    EmergencyOutput(final DeviceCore core) {
        this.core = core;
    }

    /** Any thread: see {@link ConsoleDevice#setEmergencyOutput}. */
    void setSink(final IntConsumer sink) {
        this.sink = sink;
    }

    /** Any thread: see {@link ConsoleDevice#setEmergencyPort}. */
    void setPort(final int nr) {
        port = nr;
    }

    /** Control thread: one character from the driver. */
    void write(final byte character) {
        final IntConsumer s = sink;
        if (s != null) {
            try {
                s.accept(character & 0xFF);
            } catch (final RuntimeException e) {
                DeviceCore.LOG.log(Level.WARNING, core.name + ": emergency output failed", e);
            }
            return;
        }
        if (!queue.offer(character)) {
            logDrop("emergency write queue full");
            return;
        }
        core.wake();
    }

    boolean hasPending() {
        return !queue.isEmpty();
    }

    /** Worker: move queued bytes into the emergency port's channel; returns the bytes taken from the queue. */
    int drain() {
        final Port target = target();
        int n = 0;
        Byte b;
        while (n < buffer.capacity() && (b = queue.poll()) != null) {
            buffer.putByte(n++, b);
        }
        if (n == 0) {
            return 0;
        }
        if (target == null) {
            logDrop("no console port to write to");
            return n;
        }
        final int taken = DeviceCore.clamp(target.channel.writeToHost(buffer.addressOffset(), n), n);
        target.counters.addToHost(taken);
        if (taken < n) {
            target.counters.addDropped(n - taken);
            logDrop(target + " host side is full");
        }
        target.channel.flushToHost();
        return n;
    }

    private Port target() {
        final int chosen = port;
        if (chosen >= 0) {
            return core.ports.get(chosen);
        }
        return core.ports.firstConsole();
    }

    private void logDrop(final String reason) {
        if (!dropLogged) {
            dropLogged = true;
            DeviceCore.LOG.warning(() -> core.name + ": dropping emergency output: " + reason + " (logged once)");
        }
    }
}
