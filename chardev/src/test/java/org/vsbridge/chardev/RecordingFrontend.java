package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.fail;

import io.netty.buffer.ByteBuf;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A frontend that records its callbacks (in order) and the input bytes; callbacks must be on the loop. */
final class RecordingFrontend implements ChardevFrontend {

    /** Safety net only: no test depends on how long anything takes. */
    static final long TIMEOUT_S = 30;

    final BlockingQueue<String> events = new LinkedBlockingQueue<>();
    private final ByteArrayOutputStream input = new ByteArrayOutputStream();
    private final Chardev chardev;

    RecordingFrontend(final Chardev chardev) {
        this.chardev = chardev;
    }

    private void onLoop() {
        if (!chardev.eventLoop().inEventLoop()) {
            events.add("callback off the event loop");
        }
    }

    @Override
    public void opened() {
        onLoop();
        events.add("opened");
    }

    @Override
    public void closed() {
        onLoop();
        events.add("closed");
    }

    @Override
    public void received(final ByteBuf data) {
        onLoop();
        synchronized (input) {
            input.write(ByteBufs.bytes(data), 0, data.readableBytes());
            input.notifyAll();
        }
        data.release();
        events.add("data");
    }

    @Override
    public void writable() {
        onLoop();
        events.add("writable");
    }

    @Override
    public void breakReceived() {
        onLoop();
        events.add("break");
    }

    /** Waits for the next event that is not "data" and checks it. */
    void expect(final String event) throws InterruptedException {
        while (true) {
            final String e = events.poll(TIMEOUT_S, TimeUnit.SECONDS);
            assertNotNull(e, "timed out waiting for " + event);
            if (!e.equals("data")) {
                assertEquals(event, e);
                return;
            }
        }
    }

    /** Waits until at least {@code n} input bytes arrived, then returns and clears them. */
    String takeInput(final int n) throws InterruptedException {
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        synchronized (input) {
            while (input.size() < n) {
                final long left = deadline - System.nanoTime();
                if (left <= 0) {
                    fail("timed out waiting for " + n + " input bytes, have " + input.size());
                }
                input.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            }
            final String s = input.toString(StandardCharsets.ISO_8859_1);
            input.reset();
            return s;
        }
    }

    int inputSize() {
        synchronized (input) {
            return input.size();
        }
    }

    /** The non-data events seen so far (drains them). */
    String drainEvents() {
        final StringBuilder s = new StringBuilder();
        String e;
        while ((e = events.poll()) != null) {
            if (!e.equals("data")) {
                s.append(s.length() == 0 ? "" : ",").append(e);
            }
        }
        return s.toString();
    }
}
