package org.vsbridge.vhost.device;

/**
 * The one thread that owns some state (a device worker), for methods only that thread may call to check their
 * caller. The check is a volatile read and a reference compare, cheap enough for every kick; it is always on
 * (not an {@code assert}) because a call from another thread would corrupt ring state silently in production.
 *
 * <p>Before {@link #bind()} no thread owns the state yet and every caller passes: there is no worker to race
 * with (a device built but not served, a queue driven by a unit test).
 */
public final class WorkerThread {

    private final String owner;
    private volatile Thread thread;

    /** @param owner what the owned state is, for the error message (e.g. "device console0") */
    public WorkerThread(final String owner) {
        this.owner = owner;
    }

    /** The calling thread owns the state from now on (a worker starting; a new worker replaces an old one). */
    public void bind() {
        thread = Thread.currentThread();
    }

    /** True on the owning thread, or while no thread owns the state. */
    public boolean isCurrent() {
        final Thread t = thread;
        return t == null || t == Thread.currentThread();
    }

    /** Throws {@link IllegalStateException} naming {@code method} unless called on the owning thread. */
    public void check(final String method) {
        final Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            throw new IllegalStateException(owner + ": " + method + " may only run on the worker thread "
                + t.getName() + ", not on " + Thread.currentThread().getName());
        }
    }
}
