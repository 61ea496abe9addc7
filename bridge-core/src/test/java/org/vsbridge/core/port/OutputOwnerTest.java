package org.vsbridge.core.port;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.DefaultEventLoop;
import io.netty.channel.EventLoop;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The hand-over of a port's output between the worker and the event loop is a message: an event loop that needs the
 * output while a worker batch holds it leaves a task, and the worker's release posts it to that loop. No thread
 * waits in a loop for the other.
 */
class OutputOwnerTest {

    private final DefaultEventLoop loop = new DefaultEventLoop();

    @AfterEach
    void stop() {
        loop.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS);
    }

    @Test
    void loopTaskWaitingForAWorkerBatchRunsOnTheLoopWhenTheBatchEnds() throws Exception {
        final OutputOwner owner = new OutputOwner(4096);
        owner.loopRelease(); // the event loop lets the worker take it
        assertTrue(owner.workerTake());
        final ConcurrentLinkedQueue<String> ran = new ConcurrentLinkedQueue<>();
        final AtomicInteger acquiredOnRetry = new AtomicInteger();
        final boolean now = loop.submit(() -> owner.acquireOrWhenReleased(loop, () -> {
            assertTrue(((EventLoop) loop).inEventLoop());
            if (owner.loopAcquire()) {
                acquiredOnRetry.incrementAndGet();
            }
            ran.add("reconcile");
        })).get();
        assertFalse(now, "the worker holds the output");
        // A second task of the loop (a detach) waits beside the first; neither has run.
        loop.submit(() -> owner.acquireOrWhenReleased(loop, () -> ran.add("close"))).get();
        assertEquals(0, ran.size());
        assertEquals(OutputOwner.WRITING, owner.state());

        owner.workerRelease(false); // end of the batch, nothing left behind: the tasks are posted to the loop

        await().atMost(Duration.ofSeconds(10)).until(() -> ran.size() == 2);
        assertEquals(java.util.List.of("reconcile", "close"), java.util.List.copyOf(ran));
        assertEquals(1, acquiredOnRetry.get());
        assertEquals(OutputOwner.LOOP, owner.state());
        assertFalse(owner.workerTake(), "the loop holds the output now");
    }

    @Test
    void loopTakesAFreeOutputAtOnceAndLeavesNoTask() throws Exception {
        final OutputOwner owner = new OutputOwner(4096);
        owner.loopRelease();
        final AtomicInteger ran = new AtomicInteger();
        assertTrue(loop.submit(() -> owner.acquireOrWhenReleased(loop, ran::incrementAndGet)).get());
        assertEquals(OutputOwner.LOOP, owner.state());
        owner.loopRelease();
        assertTrue(owner.workerTake());
        owner.workerRelease(true); // left bytes for the loop
        assertEquals(OutputOwner.LOOP, owner.state());
        assertEquals(0, loop.submit(ran::get).get(), "no task was left waiting");
    }
}
