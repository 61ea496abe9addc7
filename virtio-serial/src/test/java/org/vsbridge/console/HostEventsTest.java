package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class HostEventsTest {

    @Test
    void coalescesBitsPerPortAndReportsEachPortOnce() {
        final HostEvents events = new HostEvents(130);
        events.post(3, HostEvents.DATA);
        events.post(3, HostEvents.SPACE);
        events.post(129, HostEvents.DATA);
        assertTrue(events.hasPending());
        final List<int[]> seen = new ArrayList<>();
        events.drain((nr, bits) -> {
            seen.add(new int[] {nr, bits});
            return 0;
        });
        assertEquals(2, seen.size());
        assertEquals(3, seen.get(0)[0]);
        assertEquals(HostEvents.DATA | HostEvents.SPACE, seen.get(0)[1]);
        assertEquals(129, seen.get(1)[0]);
        assertFalse(events.hasPending());
        assertEquals(0, events.drain((nr, bits) -> {
            throw new AssertionError("nothing pending, got port " + nr);
        }));
    }

    @Test
    void closeThenOpenIsStillSeenAsAClose() {
        final HostEvents events = new HostEvents(4);
        events.postConnection(2, true);
        events.postConnection(2, false);
        events.postConnection(2, true);
        final int[] bits = new int[1];
        events.drain((nr, b) -> {
            bits[0] = b;
            return 0;
        });
        assertEquals(HostEvents.CONNECTION | HostEvents.DISCONNECTED, bits[0]);
        assertTrue(events.hostConnected(2));
    }

    @Test
    void noEventIsLostBetweenManyPostersAndOneDrainer() throws Exception {
        final int ports = 200;
        final int posters = 3;
        final int perPoster = 20_000;
        final HostEvents events = new HostEvents(ports);
        final AtomicIntegerArray posted = new AtomicIntegerArray(ports);
        final int[] drainedAfterLastPost = new int[ports];
        final CountDownLatch done = new CountDownLatch(posters);
        final List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < posters; t++) {
            final int seed = t;
            final Thread thread = new Thread(() -> {
                for (int i = 0; i < perPoster; i++) {
                    final int nr = (i * 7 + seed * 13) % ports;
                    posted.incrementAndGet(nr);
                    events.post(nr, HostEvents.DATA);
                }
                done.countDown();
            });
            threads.add(thread);
            thread.start();
        }
        final int[] deliveries = new int[ports];
        while (done.getCount() > 0) {
            events.drain((nr, bits) -> {
                deliveries[nr]++;
                return 0;
            });
        }
        assertTrue(done.await(30, TimeUnit.SECONDS));
        events.drain((nr, bits) -> {
            deliveries[nr]++;
            drainedAfterLastPost[nr]++;
            return 0;
        });
        for (final Thread thread : threads) {
            thread.join();
        }
        for (int nr = 0; nr < ports; nr++) {
            // Coalesced, but every port that was posted to was delivered at least once, and the final
            // drain left nothing behind.
            if (posted.get(nr) > 0) {
                assertTrue(deliveries[nr] > 0, "port " + nr);
            }
        }
        assertFalse(events.hasPending());
    }
}
