package org.vsbridge.chardev;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import java.util.List;

/**
 * {@code hub} (QEMU 10.0): one frontend, several backends. Output goes to every backend that is open; input from
 * any backend is merged. Open while at least one backend is; OPENED when the first opens, CLOSED when the last
 * closes. A backend that pushes back holds the frontend until it is writable again. Backends must share the
 * hub's event loop (every chardev of the bridge does: it runs one).
 */
final class HubChardev extends AbstractChardev {

    /** QEMU's MAX_HUB. */
    static final int MAX_BACKENDS = 4;

    private final Member[] members;
    /** Event loop only. */
    private int openCount;
    private int blockedCount;

    private HubChardev(final String id, final EventLoop loop, final Logfile logfile, final List<Chardev> backends) {
        super(id, ChardevKind.HUB, loop, logfile);
        members = new Member[backends.size()];
        for (int i = 0; i < members.length; i++) {
            members[i] = new Member(backends.get(i));
        }
    }

    static HubChardev open(final String id, final Logfile logfile, final ChardevBackend.Hub options,
                           final ChardevObjects objects) throws ChardevException {
        if (options.chardevs().isEmpty()) {
            throw new ChardevException("hub: 'chardevs' list is not defined");
        }
        final List<Chardev> backends = new java.util.ArrayList<>();
        // As QEMU, member by member: found, not stacked, then counted (a fifth member fails only once it is
        // known), then not in use.
        for (final String name : options.chardevs()) {
            final Chardev c = objects.chardev(name);
            if (c == null) {
                throw new ChardevException("hub: chardev can't be found by id '" + name + "'");
            }
            if (c instanceof MuxChardev || c instanceof HubChardev) {
                throw new ChardevException("hub: multiplexers and hub devices can't be stacked, check chardev '"
                    + name + "', chardev should not be a hub device or have 'mux=on' enabled");
            }
            if (backends.size() >= MAX_BACKENDS) {
                throw new ChardevException("hub: too many uses of chardevs '" + id + "' (maximum is " + MAX_BACKENDS
                    + ")");
            }
            if (c.isBusy() || backends.contains(c)) {
                throw new ChardevException("chardev '" + name + "' is already in use");
            }
            if (!backends.isEmpty() && c.eventLoop() != backends.get(0).eventLoop()) {
                throw new ChardevException("hub: chardev '" + name + "' runs on another event loop");
            }
            backends.add(c);
        }
        final HubChardev hub = new HubChardev(id, backends.get(0).eventLoop(), logfile, backends);
        try {
            hub.loop.submit(() -> {
                for (final Member m : hub.members) {
                    m.backend.attach(m);
                }
            }).get();
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ChardevException("interrupted while opening hub '" + id + "'");
        } catch (final java.util.concurrent.ExecutionException e) {
            hub.close();
            throw new ChardevException("hub '" + id + "': " + e.getCause().getMessage());
        }
        return hub;
    }

    @Override
    public boolean isOpen() {
        for (final Member m : members) {
            if (m.backend.isOpen()) {
                return true;
            }
        }
        return false;
    }

    @Override
    protected void inputStateChanged() {
        for (final Member m : members) {
            m.backend.setReadPaused(!inputWanted());
        }
    }

    @Override
    protected boolean doWrite(final ByteBuf data) {
        try {
            for (final Member m : members) {
                if (m.backend.isOpen() && !m.backend.write(data.retainedDuplicate())) {
                    if (!m.blocked) {
                        m.blocked = true;
                        blockedCount++;
                    }
                }
            }
        } finally {
            data.release();
        }
        return blockedCount == 0;
    }

    @Override
    protected void doClose() {
        for (final Member m : members) {
            if (m.attached) {
                m.attached = false;
                m.backend.detach();
            }
        }
    }

    /** The hub as the frontend of one backend. */
    private final class Member implements ChardevFrontend {
        final Chardev backend;
        boolean blocked;
        boolean attached = true;
        boolean open;

        Member(final Chardev backend) {
            this.backend = backend;
        }

        @Override
        public void opened() {
            if (open) {
                return;
            }
            open = true;
            if (openCount++ == 0 && frontend != null) {
                frontend.opened();
            }
        }

        @Override
        public void closed() {
            if (!open) {
                return;
            }
            open = false;
            if (--openCount == 0 && frontend != null) {
                frontend.closed();
            }
            writable(); // writes to a closed backend are skipped: nothing holds the frontend any more
        }

        @Override
        public void received(final ByteBuf data) {
            final ChardevFrontend f = frontend;
            if (f == null) {
                data.release();
                return;
            }
            f.received(data);
        }

        @Override
        public void writable() {
            if (blocked) {
                blocked = false;
                if (--blockedCount == 0 && frontend != null) {
                    frontend.writable();
                }
            }
        }

        @Override
        public void breakReceived() {
            if (frontend != null) {
                frontend.breakReceived();
            }
        }
    }
}
