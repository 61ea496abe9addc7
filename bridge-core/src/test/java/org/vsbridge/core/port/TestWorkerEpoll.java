package org.vsbridge.core.port;

import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.device.DeviceContext;
import org.vsbridge.vhost.queue.Virtqueue;

/**
 * The engine's part for a test thread that plays the device worker of one port: a real epoll with a wake-up eventfd
 * (the device's wake-ups: room or data for the port) and, when allowed, the one-shot watches of the port's direct
 * sockets, as {@code DeviceWorker} keeps them. No rings: the test calls the port's channel itself.
 */
final class TestWorkerEpoll implements AutoCloseable {

    private static final int WAKE_TOKEN = 1 << 20;

    private final int epfd;
    private final int wakeFd;
    private final boolean watch;
    private final Memory ready = new Memory(4L * Sys.EPOLL_EVENT_SIZE);
    /** Watches armed so far (a full socket, or a lent input with nothing to read). */
    private int watches;

    /** {@code watch}: whether the engine watches descriptors (false plays an engine whose epoll refuses them). */
    TestWorkerEpoll(final boolean watch) throws ErrnoException {
        this.watch = watch;
        epfd = Sys.epollCreate();
        wakeFd = Sys.eventfd();
        Sys.epollAdd(epfd, wakeFd, WAKE_TOKEN);
    }

    DeviceContext context() {
        return new DeviceContext() {
            @Override
            public Virtqueue queue(final int index) {
                throw new UnsupportedOperationException("no rings in this test");
            }

            @Override
            public long ackedFeatures() {
                return 0;
            }

            @Override
            public void wakeup() {
                Sys.eventfdSignal(wakeFd);
            }

            @Override
            public boolean watchOnce(final int fd, final int events, final int token) {
                if (!watch) {
                    return false;
                }
                watches++;
                return Sys.epollArmOnce(epfd, fd, events, token) == 0;
            }

            @Override
            public void unwatch(final int fd) {
                Sys.epollDel(epfd, fd);
            }
        };
    }

    int watches() {
        return watches;
    }

    /**
     * One wait of the worker: a wake-up, or a watched socket of {@code link}'s port is ready, which the port's
     * channel is told ({@code (token & 1) != 0}: writable, else readable), as {@code ConsoleDevice.fdReady} does.
     */
    void await(final PortLink link) {
        final long deadline = System.nanoTime() + 30_000_000_000L;
        int n;
        do { // 0: a timeout, or a signal (EINTR) that ended the wait early
            n = Sys.epollWait(epfd, Pointer.nativeValue(ready), 4,
                (int) Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
        } while (n == 0 && System.nanoTime() < deadline);
        assertTrue(n > 0, "the worker was not woken and no watched socket became ready (" + n + ")");
        for (int i = 0; i < n; i++) {
            final int token = Sys.epollEventData(ready, i);
            if (token == WAKE_TOKEN) {
                Sys.eventfdDrain(wakeFd);
            } else if ((token & 1) != 0) {
                link.hostOutputReady();
            } else {
                link.hostInputReady();
            }
        }
    }

    @Override
    public void close() {
        Sys.closeQuietly(wakeFd);
        Sys.closeQuietly(epfd);
    }
}
