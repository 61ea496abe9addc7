package org.vsbridge.vhost.device;

import com.sun.jna.Memory;
import com.sun.jna.Pointer;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.memory.GuestMemory;
import org.vsbridge.vhost.queue.AbstractVirtqueue;
import org.vsbridge.vhost.queue.InflightRegion;
import org.vsbridge.vhost.queue.QueueCounters;
import org.vsbridge.vhost.queue.SplitVirtqueue;
import org.vsbridge.vhost.queue.Virtqueue;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.ToLongFunction;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The data-plane thread of one device (an Agrona {@link Agent}). It owns every queue and all queue state; the
 * vhost-user control thread talks to it only through {@link WorkerProxy}, which offers commands into a
 * queue and wakes it. It sleeps in its own epoll on the kick eventfds of the queues plus one wake eventfd.
 *
 * <p>Loop: drain commands, epoll_wait (no wait after an iteration that did work or while spinning, else up to
 * {@link #IDLE_WAIT_MS}), drain kicked eventfds and call {@link VirtioDevice#queueKicked}, call
 * {@link VirtioDevice#doWork()}. A device exception is logged and the loop goes on: one bad queue must never
 * stop the thread that serves the others.
 *
 * <p>Owner: the agent's thread. The {@link DeviceContext} methods marked "worker only" and the command methods
 * check that they run on it and throw {@link IllegalStateException} otherwise (see {@link WorkerThread}).
 */
public final class DeviceWorker implements Agent, DeviceContext {

    private static final Logger LOG = Logger.getLogger(DeviceWorker.class.getName());

    /** Iterations with no work in which the worker polls epoll without sleeping before it blocks. */
    public static final String SPIN_PROPERTY = "vsb.worker.spinIterations";
    public static final int DEFAULT_SPIN_ITERATIONS = 10;
    /** Longest sleep in epoll_wait; bounds how late a stop request is seen if a wake-up were lost. */
    public static final int IDLE_WAIT_MS = 100;
    /** Sleep while a queue runs without a kick fd (NOFD): it must be polled. */
    static final int POLL_WAIT_MS = 1;

    /** VIRTIO_QUEUE_MAX: 511 console ports need 2 * (511 + 1) queues. */
    public static final int MAX_QUEUES = 1024;

    private static final int WAKE_ID = -1;
    /** epoll data of a device descriptor watch: this plus its token (queues are 0..MAX_QUEUES-1). */
    private static final int FD_ID_BASE = 1 << 24;
    private static final int MAX_EVENTS = 64;
    private static final long VHOST_USER_F_PROTOCOL_FEATURES = 1L << 30;
    private static final long VIRTIO_RING_F_INDIRECT_DESC = 1L << 28;
    private static final long VIRTIO_RING_F_EVENT_IDX = 1L << 29;
    private static final long VIRTIO_F_RING_PACKED = 1L << 34;

    private final String name;
    private final VirtioDevice device;
    /** Split until the frontend acks VIRTIO_F_RING_PACKED, then packed (see {@link #setFeatures}). */
    private final AbstractVirtqueue[] queues;
    /** INFLIGHT_SHMFD buffer of the connection (owned by the control side), or null. */
    private InflightRegion inflight;
    private final int[] kickFds;
    private final boolean[] running;
    private final QueueCounters counters;
    private final ManyToOneConcurrentArrayQueue<Command> commands = new ManyToOneConcurrentArrayQueue<>(1024);
    private final AtomicBoolean wakePending = new AtomicBoolean();
    private final int spinIterations;
    private final int epfd;
    private final int wakeFd;
    private final Memory events = new Memory((long) MAX_EVENTS * Sys.EPOLL_EVENT_SIZE);
    private final long eventsAddress = Pointer.nativeValue(events);
    /** The agent's thread, bound in {@link #onStart()}: the queue and command methods check they run on it. */
    private final WorkerThread thread;

    private volatile boolean stopping;
    /** The connection's backend request channel, or null; set by the control thread. */
    private volatile java.util.function.BooleanSupplier configNotifier;
    private GuestMemory memory = GuestMemory.EMPTY;
    private long ackedFeatures;
    private int idleIterations;
    private int polledQueues;
    private boolean epollFailureLogged;
    /** Wakeups whose eventfd write never woke the worker (see doWork); should stay 0. */
    private long lostWakeups;
    /** When a timeout first ended with a wakeup requested but not signalled (0: none); lost after LOST_WAKEUP_NS. */
    private long wakeSuspectSince;
    /** How long a requested wakeup may stay unsignalled before it counts as lost (a waker preempted that long is not). */
    private static final long LOST_WAKEUP_NS = 2L * IDLE_WAIT_MS * 1_000_000L;
    /** {@link QueueCounters#brokenEvents()} when the queues were last compared with {@link #running}. */
    private long brokenSeen;

    public DeviceWorker(final String name, final VirtioDevice device) throws IOException {
        this.name = name;
        this.device = device;
        this.thread = new WorkerThread(roleName());
        final int count = device.queueCount();
        if (count <= 0 || count > MAX_QUEUES) {
            throw new IllegalArgumentException("device " + name + ": queue count " + count + " not in 1.."
                + MAX_QUEUES);
        }
        this.counters = new QueueCounters(count);
        this.queues = new AbstractVirtqueue[count];
        for (int i = 0; i < count; i++) {
            queues[i] = new SplitVirtqueue(name, i, device.maxQueueSize(), counters);
        }
        this.kickFds = new int[count];
        java.util.Arrays.fill(kickFds, -1);
        this.running = new boolean[count];
        this.spinIterations = Math.max(0, Integer.getInteger(SPIN_PROPERTY, DEFAULT_SPIN_ITERATIONS));
        this.epfd = Sys.epollCreate();
        try {
            this.wakeFd = Sys.eventfd();
            Sys.epollAdd(epfd, wakeFd, WAKE_ID);
        } catch (final IOException e) {
            Sys.closeQuietly(epfd);
            throw e;
        }
    }

    public QueueCounters counters() {
        return counters;
    }

    @Override
    public String roleName() {
        return "vsb-worker-" + name;
    }

    @Override
    public void onStart() {
        thread.bind();
        device.attach(this);
    }

    @Override
    public int doWork() {
        int work = drainCommands();
        final int timeout = work > 0 || idleIterations < spinIterations || stopping
            ? 0 : polledQueues > 0 ? POLL_WAIT_MS : IDLE_WAIT_MS;
        final int n = Sys.epollWait(epfd, eventsAddress, MAX_EVENTS, timeout);
        if (n < 0 && !epollFailureLogged) {
            epollFailureLogged = true;
            LOG.severe(() -> roleName() + ": epoll_wait failed: " + Sys.strerror(-n));
        }
        if (n == 0 && timeout > 0 && wakePending.get()) {
            if (Sys.eventfdDrain(wakeFd) != 0) {
                // The write landed after epoll_wait gave up: an ordinary wakeup, only late.
                wakePending.set(false);
                wakeSuspectSince = 0;
                work++;
            } else if (wakeSuspectSince != 0 && System.nanoTime() - wakeSuspectSince > LOST_WAKEUP_NS) {
                // A wakeup requested long ago and still no eventfd write: a lost wakeup. Recover (later wakeups
                // must signal again) and say so: tests look for this line.
                wakeSuspectSince = 0;
                wakePending.set(false);
                lostWakeups++;
                LOG.warning(roleName() + ": lost wakeup detected (" + lostWakeups + " so far); recovered");
                work++;
            } else if (wakeSuspectSince == 0) {
                // The waker may sit between its flag and its eventfd write (preempted on a busy machine): that
                // is not lost yet. Look again after later waits.
                wakeSuspectSince = System.nanoTime();
            }
        }
        for (int e = 0; e < n; e++) {
            final int id = Sys.epollEventData(events, e);
            if (id == WAKE_ID) {
                // Drain, then clear: a wakeup() between the two finds the flag still set and skips its write,
                // which is fine because device.doWork() below runs after both. The other order lost wakeups:
                // a write drained after the clear left the flag set for good, and every later wakeup() was
                // skipped, so the worker fell back to its idle timeout.
                Sys.eventfdDrain(wakeFd);
                wakePending.set(false);
                wakeSuspectSince = 0;
                work++;
            } else if (id >= 0 && id < queues.length) {
                work += onKick(id);
            } else if (id >= FD_ID_BASE) {
                work += onFdReady(id - FD_ID_BASE, Sys.epollEventBits(events, e));
            }
        }
        if (polledQueues > 0) {
            for (final AbstractVirtqueue q : queues) {
                if (q.isPolled() && q.available() > 0) {
                    work += deviceKick(q.index());
                }
            }
        }
        try {
            work += device.doWork();
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, roleName() + ": device doWork failed", e);
        }
        if (counters.brokenEvents() != brokenSeen) {
            // Only commands and broken queues change readiness: no scan of up to 1024 queues per iteration.
            work += refreshQueues();
        }
        idleIterations = work > 0 ? 0 : idleIterations + 1;
        return work;
    }

    private int onKick(final int index) {
        final int fd = kickFds[index];
        if (fd < 0) {
            return 0;
        }
        final long value = Sys.eventfdDrain(fd);
        if (value < 0) {
            LOG.warning(() -> roleName() + ": queue " + index + " kick fd read failed: " + Sys.strerror((int) -value)
                + "; no longer watching it");
            Sys.epollDel(epfd, fd);
            return 0;
        }
        counters.onKick(index);
        // A kick for a queue that is not running is dropped here on purpose: start() always rescans the
        // avail ring, so nothing the guest posted before enable is lost (rust-vmm/vhost#247).
        return queues[index].isReady() ? deviceKick(index) : 1;
    }

    private int onFdReady(final int token, final int bits) {
        try {
            return Math.max(1, device.fdReady(token, bits));
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, roleName() + ": device failed handling descriptor watch " + token, e);
            return 1;
        }
    }

    @Override
    public boolean watchOnce(final int fd, final int events, final int token) {
        thread.check("watchOnce");
        if (token < 0 || token > MAX_FD_TOKEN) {
            throw new IllegalArgumentException("descriptor watch token " + token + " out of range");
        }
        final int mask = (events & FD_READABLE) != 0 ? events | Sys.EPOLLHUP | Sys.EPOLLERR : events;
        final int r = Sys.epollArmOnce(epfd, fd, mask, FD_ID_BASE + token);
        if (r != 0) {
            LOG.warning(() -> roleName() + ": cannot watch fd " + fd + ": " + Sys.strerror(-r));
            return false;
        }
        return true;
    }

    @Override
    public void unwatch(final int fd) {
        Sys.epollDel(epfd, fd);
    }

    private int deviceKick(final int index) {
        try {
            return Math.max(1, device.queueKicked(index));
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, roleName() + ": device failed handling a kick of queue " + index, e);
            return 1;
        }
    }

    /** Tell the device about queues that started or stopped (commands, broken queues). */
    private int refreshQueues() {
        brokenSeen = counters.brokenEvents();
        int changes = 0;
        for (int i = 0; i < queues.length; i++) {
            final boolean ready = queues[i].isReady();
            if (ready != running[i]) {
                running[i] = ready;
                changes++;
                if (ready) {
                    try {
                        device.queueStarted(i);
                    } catch (final RuntimeException e) {
                        LOG.log(Level.WARNING, roleName() + ": device failed starting queue " + i, e);
                    }
                    deviceKick(i); // rescan avail at start: kicks may have come before (rust-vmm/vhost#375)
                } else {
                    try {
                        device.queueStopped(i);
                    } catch (final RuntimeException e) {
                        LOG.log(Level.WARNING, roleName() + ": device failed stopping queue " + i, e);
                    }
                }
            }
        }
        return changes;
    }

    private int drainCommands() {
        int done = 0;
        Command c;
        while ((c = commands.poll()) != null) {
            done++;
            try {
                final long result = c.op.applyAsLong(this);
                refreshQueues();
                c.result.complete(result);
            } catch (final RuntimeException e) {
                LOG.log(Level.WARNING, roleName() + ": command failed", e);
                c.result.completeExceptionally(e);
            }
        }
        return done;
    }

    @Override
    public void onClose() {
        Command c;
        while ((c = commands.poll()) != null) {
            c.result.completeExceptionally(new IllegalStateException(roleName() + " closed"));
        }
        resetAll(true);
        // Late wakeup() calls from host threads must not write into a closed (maybe reused) fd number:
        // leave the flag set so their compareAndSet fails.
        wakePending.set(true);
        Sys.closeQuietly(wakeFd);
        Sys.closeQuietly(epfd);
        events.close();
    }

    // ------------------------------------------------------------------ DeviceContext

    @Override
    public Virtqueue queue(final int index) {
        thread.check("queue");
        return queues[index];
    }

    @Override
    public long ackedFeatures() {
        thread.check("ackedFeatures");
        return ackedFeatures;
    }

    @Override
    public void wakeup() {
        if (wakePending.compareAndSet(false, true)) {
            Sys.eventfdSignal(wakeFd);
        }
    }

    @Override
    public boolean configChanged() {
        final java.util.function.BooleanSupplier notifier = configNotifier;
        return notifier != null && notifier.getAsBoolean();
    }

    void setConfigNotifier(final java.util.function.BooleanSupplier notifier) {
        configNotifier = notifier;
    }

    // ------------------------------------------------------------------ commands (worker thread)

    /** Any thread: run {@code op} on the worker. The future completes with its result. */
    CompletableFuture<Long> submit(final ToLongFunction<DeviceWorker> op) {
        final Command c = new Command(op);
        if (!commands.offer(c)) {
            c.result.completeExceptionally(new IllegalStateException(roleName() + ": command queue full"));
            return c.result;
        }
        wakeup();
        return c.result;
    }

    /** Any thread: make {@link #doWork()} stop blocking so the runner can close the agent promptly. */
    void requestStop() {
        stopping = true;
        Sys.eventfdSignal(wakeFd);
    }

    /** Worker (commands): queue {@code index} for a vhost-user setter. */
    AbstractVirtqueue q(final int index) {
        thread.check("a queue command");
        return queues[index];
    }

    void setMemoryTable(final GuestMemory table) {
        thread.check("setMemoryTable");
        memory = table;
        for (final AbstractVirtqueue q : queues) {
            q.setMemory(table);
        }
    }

    void setFeatures(final long acked) {
        thread.check("setFeatures");
        ackedFeatures = acked & ~VHOST_USER_F_PROTOCOL_FEATURES;
        final boolean eventIdx = (acked & VIRTIO_RING_F_EVENT_IDX) != 0;
        final boolean indirect = (acked & VIRTIO_RING_F_INDIRECT_DESC) != 0;
        final boolean packed = (acked & VIRTIO_F_RING_PACKED) != 0;
        for (int i = 0; i < queues.length; i++) {
            final AbstractVirtqueue q = withLayout(i, packed);
            q.setFeatures(eventIdx, indirect);
            if ((acked & VHOST_USER_F_PROTOCOL_FEATURES) == 0) {
                q.setEnabled(true); // without bit 30 rings are enabled at once; SET_FEATURES never disables
            }
        }
        device.featuresAcked(ackedFeatures);
    }

    /** Queue {@code index} in the layout the acked features ask for. A layout change while the device runs the
     *  queue (a frontend that re-negotiates without a reset) stops it for the device first. */
    private AbstractVirtqueue withLayout(final int index, final boolean packed) {
        final AbstractVirtqueue q = queues[index];
        final AbstractVirtqueue wanted = q.withLayout(packed);
        if (wanted != q) {
            if (running[index]) {
                running[index] = false;
                try {
                    device.queueStopped(index);
                } catch (final RuntimeException e) {
                    LOG.log(Level.WARNING, roleName() + ": device failed stopping queue " + index, e);
                }
            }
            queues[index] = wanted;
            wanted.setInflight(inflightQueue(index));
        }
        return wanted;
    }

    private InflightRegion.Queue inflightQueue(final int index) {
        return inflight == null ? null : inflight.queue(index);
    }

    /** SET_INFLIGHT_FD (or null: none, at disconnect). The caller keeps the region and closes it after this. */
    void setInflight(final InflightRegion region) {
        thread.check("setInflight");
        inflight = region;
        for (int i = 0; i < queues.length; i++) {
            queues[i].setInflight(inflightQueue(i));
        }
        try {
            device.stateBuffer(region == null ? null : region.deviceArea());
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, roleName() + ": device failed to take its state buffer", e);
        }
    }

    void setKick(final int index, final int fd) throws IOException {
        thread.check("setKick");
        final int old = kickFds[index];
        if (old >= 0) {
            Sys.epollDel(epfd, old);
            Sys.closeQuietly(old);
            kickFds[index] = -1;
        }
        final AbstractVirtqueue q = queues[index];
        if (q.isPolled()) {
            polledQueues--;
        }
        if (fd >= 0) {
            try {
                Sys.epollAdd(epfd, fd, index);
            } catch (final IOException e) {
                Sys.closeQuietly(fd); // we own it now; a kick fd epoll cannot watch is useless
                throw e;
            }
            kickFds[index] = fd;
            q.start(false);
        } else {
            q.start(true);
            polledQueues++;
        }
    }

    /** GET_VRING_BASE: stops the ring; the answer is in the layout's encoding (packed: both positions). */
    int getBase(final int index) {
        thread.check("getBase");
        final AbstractVirtqueue q = queues[index];
        stopQueue(index);
        return q.vringBase();
    }

    private void stopQueue(final int index) {
        final AbstractVirtqueue q = queues[index];
        if (q.isPolled()) {
            polledQueues--;
        }
        q.stop();
        final int kick = kickFds[index];
        if (kick >= 0) {
            Sys.epollDel(epfd, kick);
            Sys.closeQuietly(kick);
            kickFds[index] = -1;
        }
        Sys.closeQuietly(q.replaceCallFd(-1));
    }

    /** Stop every queue, forget all ring state and reset the device; {@code dropMemory} on disconnect. */
    void resetAll(final boolean dropMemory) {
        thread.check("resetAll");
        for (int i = 0; i < queues.length; i++) {
            stopQueue(i);
        }
        refreshQueues(); // queueStopped for the ones that ran, before reset()
        for (int i = 0; i < queues.length; i++) {
            Sys.closeQuietly(queues[i].replaceErrFd(-1));
            if (!dropMemory && queues[i] instanceof SplitVirtqueue split) {
                split.forgetInflight(); // a device reset: in-flight chains of the old rings mean nothing now
            }
            queues[i].reset();
            queues[i] = queues[i].withLayout(false); // features are gone: split again, as constructed
            queues[i].setInflight(inflightQueue(i));
        }
        polledQueues = 0;
        ackedFeatures = 0;
        if (dropMemory) {
            setMemoryTable(GuestMemory.EMPTY);
        } else {
            setMemoryTable(memory);
        }
        try {
            device.reset();
        } catch (final RuntimeException e) {
            LOG.log(Level.WARNING, roleName() + ": device reset failed", e);
        }
    }

    void statusChanged(final int status) {
        thread.check("statusChanged");
        device.statusChanged(status);
    }

    private static final class Command {
        final ToLongFunction<DeviceWorker> op;
        final CompletableFuture<Long> result = new CompletableFuture<>();

        Command(final ToLongFunction<DeviceWorker> op) {
            this.op = op;
        }
    }
}
