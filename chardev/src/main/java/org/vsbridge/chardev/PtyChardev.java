package org.vsbridge.chardev;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sys;
import org.vsbridge.libc.Tty;

/**
 * {@code pty}: a pseudo terminal master; the host side is "connected" while some process has the slave
 * ({@link #slavePath()}) open. As QEMU's char-pty, the master is not watched while no slave is open (epoll would
 * report the hang-up again and again); a timer polls it once a second instead. The slave is put in raw mode.
 */
public final class PtyChardev extends FdChardev {

    private static final Logger LOG = Logger.getLogger(PtyChardev.class.getName());

    /** How often a disconnected pty looks for a slave, as QEMU's pty_chr_timer (1 s). */
    static final long POLL_MS = 1000;

    private final String slavePath;
    private final Path link;
    private ScheduledFuture<?> timer;

    private PtyChardev(final String id, final EventLoop loop, final Logfile logfile, final int master,
                       final String slavePath, final Path link) {
        super(id, ChardevKind.PTY, loop, logfile, master, master);
        this.slavePath = slavePath;
        this.link = link;
        this.connected = false;
    }

    static PtyChardev open(final String id, final EventLoop loop, final Logfile logfile,
                           final ChardevBackend.Pty options) throws ChardevException {
        requireEpoll(loop, ChardevKind.PTY);
        int master = -1;
        try {
            master = Tty.openMaster(Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_CLOEXEC);
            final String slave = Tty.slaveName(master);
            makeRaw(slave);
            Sys.setNonBlocking(master);
            Path link = null;
            if (options.path() != null) {
                link = Path.of(options.path());
                try {
                    // As QEMU: whatever is at the path already (a file, a directory, any symlink) is the user's and
                    // stays; the pty is refused instead.
                    Files.createSymbolicLink(link, Path.of(slave));
                } catch (final FileAlreadyExistsException e) {
                    throw new ChardevException("Failed to create PTY symlink: File exists");
                } catch (final IOException | UnsupportedOperationException e) {
                    throw new ChardevException("Failed to create PTY symlink: "
                        + FileChardev.reason(e instanceof IOException io ? io : new IOException(e)));
                }
            }
            final PtyChardev chardev = new PtyChardev(id, loop, logfile, master, slave, link);
            master = -1;
            try {
                chardev.register();
            } catch (final ChardevException e) {
                chardev.close();
                throw e;
            }
            // QEMU prints this line so that users find the slave; the log has it here.
            LOG.log(Level.INFO, "char device redirected to {0} (label {1})", new Object[] {slave, id});
            return chardev;
        } catch (final ErrnoException e) {
            throw new ChardevException("Failed to create PTY: " + e.reason());
        } finally {
            Sys.closeQuietly(master);
        }
    }

    /**
     * Opens the slave once to make it raw (no echo, no line discipline) and closes it again, as QEMU does after
     * openpty: the settings stay with the pty, and the master then reports a hang-up until a real user opens it.
     */
    private static void makeRaw(final String slave) throws ErrnoException {
        final int fd = Sys.open(slave, Sys.O_RDWR | Sys.O_NOCTTY | Sys.O_NONBLOCK | Sys.O_CLOEXEC);
        try {
            Tty.makeRaw(fd);
        } finally {
            Sys.closeQuietly(fd);
        }
    }

    /** The slave device, e.g. {@code /dev/pts/3}: what {@code chardev-add} returns as {@code pty}. */
    public String slavePath() {
        return slavePath;
    }

    @Override
    public String filename() {
        return "pty:" + slavePath;
    }

    @Override
    protected void started() {
        super.started();
        poll();
    }

    /** Timer and start: connected once the master no longer reports a hang-up. */
    private void poll() {
        timer = null;
        if (isClosed() || connected) {
            return;
        }
        if (!Sys.hungUp(inFd())) {
            setConnected(true);
            return;
        }
        timer = loop.schedule(this::poll, POLL_MS, TimeUnit.MILLISECONDS);
    }

    /** QEMU writes even while "disconnected" when a poll shows the slave is back before the timer noticed. */
    @Override
    protected boolean writeWhileDisconnected() {
        if (!Sys.hungUp(outFd())) {
            setConnected(true);
            return true;
        }
        return false;
    }

    @Override
    protected void endOfInput() {
        disconnected();
    }

    @Override
    protected void readFailed(final IOException e) {
        disconnected(); // EIO: the last slave fd was closed
    }

    @Override
    protected void hangUp() {
        disconnected();
    }

    @Override
    protected void writeFailed(final IOException e) {
        super.writeFailed(e);
        disconnected();
    }

    private void disconnected() {
        setConnected(false);
        if (timer == null && !isClosed()) {
            timer = loop.schedule(this::poll, POLL_MS, TimeUnit.MILLISECONDS);
        }
    }

    @Override
    protected void doClose() {
        if (timer != null) {
            timer.cancel(false);
            timer = null;
        }
        super.doClose();
        if (link != null) {
            try {
                if (Files.isSymbolicLink(link) && Files.readSymbolicLink(link).toString().equals(slavePath)) {
                    Files.delete(link);
                }
            } catch (final IOException e) {
                LOG.log(Level.FINE, "chardev ''{0}'': could not remove {1}: {2}",
                    new Object[] {id, link, e.getMessage()});
            }
        }
        if (link != null && Files.exists(link, LinkOption.NOFOLLOW_LINKS)) {
            LOG.log(Level.FINE, "chardev ''{0}'': {1} left in place (not our link)", new Object[] {id, link});
        }
    }
}
