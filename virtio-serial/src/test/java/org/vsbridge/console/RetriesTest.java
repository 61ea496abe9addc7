package org.vsbridge.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The ports and control queue owed another pass after a batch hit its budget. */
class RetriesTest {

    private static Port port(final int nr) {
        return new Port(new PortSpec(nr, "p" + nr, null, false), new TestChannel(16));
    }

    @Test
    void aPortIsOwedOnePassHoweverOftenItIsScheduled() {
        final Retries retries = new Retries(4);
        final Port one = port(1);
        final Port two = port(2);
        assertTrue(retries.isEmpty());
        retries.schedule(one);
        retries.schedule(two);
        retries.schedule(one);
        assertFalse(retries.isEmpty());
        final List<Integer> passes = new ArrayList<>();
        assertEquals(2, retries.drainPorts(p -> {
            passes.add(p.nr);
            return 1;
        }));
        assertEquals(List.of(1, 2), passes);
        assertTrue(retries.isEmpty());
    }

    @Test
    void aPortThatHitsItsBudgetAgainDuringItsPassIsKeptForTheNextRound() {
        final Retries retries = new Retries(4);
        final Port one = port(1);
        final Port two = port(2);
        retries.schedule(one);
        retries.schedule(two);
        retries.drainPorts(p -> {
            if (p == two) {
                retries.schedule(p);
            }
            return 0;
        });
        final List<Integer> next = new ArrayList<>();
        retries.drainPorts(p -> {
            next.add(p.nr);
            return 0;
        });
        assertEquals(List.of(2), next);
    }

    @Test
    void aRemovedPortAndAResetOweNothing() {
        final Retries retries = new Retries(4);
        final Port one = port(1);
        final Port two = port(2);
        retries.schedule(one);
        retries.schedule(two);
        retries.remove(one);
        assertFalse(one.retry);
        final List<Integer> passes = new ArrayList<>();
        retries.drainPorts(p -> {
            passes.add(p.nr);
            return 0;
        });
        assertEquals(List.of(2), passes);

        retries.schedule(one);
        retries.scheduleControlTx();
        retries.clear();
        assertTrue(retries.isEmpty());
        assertFalse(one.retry);
        assertFalse(retries.takeControlTx());
    }

    @Test
    void theControlQueueIsOwedOnePass() {
        final Retries retries = new Retries(1);
        retries.scheduleControlTx();
        assertFalse(retries.isEmpty());
        assertTrue(retries.takeControlTx());
        assertFalse(retries.takeControlTx());
        assertTrue(retries.isEmpty());
    }
}
