package org.vsbridge.vhost.queue;

import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Per-queue counters: written by the worker only (lazySet, no lock), read by anyone (tests, QMP, logs).
 * Counters, not log lines, for what happens per kick.
 */
public final class QueueCounters {

    private final AtomicLongArray kicks;
    private final AtomicLongArray calls;
    private final AtomicLongArray chains;
    /** Queues that broke since construction; the worker compares it to notice a broken queue cheaply. */
    private volatile long brokenEvents;

    public QueueCounters(final int queueCount) {
        this.kicks = new AtomicLongArray(queueCount);
        this.calls = new AtomicLongArray(queueCount);
        this.chains = new AtomicLongArray(queueCount);
    }

    /** Kick eventfd reads that found the counter non-zero. */
    public long kicks(final int queue) {
        return kicks.get(queue);
    }

    /** Call eventfd writes (guest notifications). */
    public long calls(final int queue) {
        return calls.get(queue);
    }

    /** Descriptor chains put into the used ring. */
    public long usedChains(final int queue) {
        return chains.get(queue);
    }

    void onCall(final int queue) {
        calls.lazySet(queue, calls.get(queue) + 1);
    }

    void onUsed(final int queue) {
        chains.lazySet(queue, chains.get(queue) + 1);
    }

    /** How many times a queue of this device broke (any queue). */
    public long brokenEvents() {
        return brokenEvents;
    }

    void onBroken() {
        brokenEvents++; // single writer: the worker
    }

    /** Worker only. */
    public void onKick(final int queue) {
        kicks.lazySet(queue, kicks.get(queue) + 1);
    }
}
