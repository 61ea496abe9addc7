package org.vsbridge.chardev;

import io.netty.channel.Channel;
import io.netty.channel.unix.UnixChannel;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.Sockets;

/**
 * The input side of a {@link SocketChardev}'s connection: whether the event loop reads it (auto-read), the hang-up
 * watch while it does not, and the loan of the input to a frontend that reads the socket itself
 * ({@link DirectInput}, which describes the hand-over).
 */
final class SocketInputLoan {

    private static final Logger LOG = Logger.getLogger(SocketChardev.class.getName());

    static final long HANGUP_POLL_MS = 200;

    private final SocketChardev s;
    /** Event loop only: the input lent to the frontend ({@link #openDirectInput()}) and its connection, or null. */
    private DirectInput lentInput;
    private Channel lentOn;
    /** Event loop only: the connection whose reader saw its end; not lent again. */
    private Channel endedOn;
    /** Event loop only: the hang-up poll while input is paused, or null. */
    private ScheduledFuture<?> hangupWatch;

    SocketInputLoan(final SocketChardev s) {
        this.s = s;
    }

    void applyInputState(final Channel c) {
        final boolean read = s.inputWanted() && lentOn != c;
        c.config().setAutoRead(read);
        if (!read && lentOn != c) {
            watchHangup(c); // while lent, the reader sees the peer leave
        }
    }

    /** See {@link Chardev#openDirectInput()}. */
    DirectInput openDirectInput() {
        final Channel c = s.connection;
        if (lentInput != null || c == null || !c.isActive() || !(c instanceof UnixChannel unix) || !s.offersDirectOutput()
            || s.isClosed() || c == endedOn || !EpollInterest.switchable(c)) {
            return null;
        }
        final DirectInput in;
        try {
            in = DirectInput.dup(unix.fd().intValue());
        } catch (final IOException e) {
            LOG.log(Level.FINE, "chardev ''{0}'': no direct input: {1}", new Object[] {s.id, e.getMessage()});
            return null;
        }
        // Read interest off (auto-read) and half-close interest off: from here on this loop does not read c.
        if (!EpollInterest.halfClose(c, false)) {
            in.giveBack();
            return null;
        }
        lentInput = in;
        lentOn = c;
        applyInputState(c);
        return in;
    }

    /** See {@link Chardev#directInputReturned}. */
    void directInputReturned(final DirectInput input) {
        if (input != lentInput) {
            return;
        }
        lentInput = null;
        final Channel c = lentOn;
        lentOn = null;
        if (input.ended()) {
            endedOn = c; // the end of the stream waits in the socket for this loop's read: no new loan
        }
        if (c == s.connection && c != null && c.isActive()) {
            EpollInterest.halfClose(c, true);
            applyInputState(c);
        }
    }

    /** A read the event loop may not make: the connection failed while its reader was inside a read. */
    private static final class LentInputError extends RuntimeException {
        private static final long serialVersionUID = 1L;

        LentInputError() {
            super("socket error while its input is lent and being read", null, false, false);
        }
    }

    /** The allocator of {@code channel}'s reads, wrapping {@code inner}: see {@link GatedReads}. */
    io.netty.channel.RecvByteBufAllocator gatedReads(final io.netty.channel.RecvByteBufAllocator inner,
                                                     final Channel channel) {
        return new GatedReads(inner, channel);
    }

    /**
     * The reads of every connection go through here. During a loan the event loop watches neither input nor
     * half-close, so the transport reads only on a socket error (epoll reports those whatever the interest): the
     * read claims the input back first and goes ahead when the reader is not inside a read (the reader gives the
     * input back at its next look). When it is, this loop does not read and does not wait: the read fails, and the
     * failing connection is closed.
     */
    private final class GatedReads implements io.netty.channel.RecvByteBufAllocator {
        private final io.netty.channel.RecvByteBufAllocator inner;
        private final Channel channel;

        GatedReads(final io.netty.channel.RecvByteBufAllocator inner, final Channel channel) {
            this.inner = inner;
            this.channel = channel;
        }

        @Override
        public Handle newHandle() {
            final ExtendedHandle h = (ExtendedHandle) inner.newHandle();
            return new ExtendedHandle() {
                @Override
                public io.netty.buffer.ByteBuf allocate(final io.netty.buffer.ByteBufAllocator alloc) {
                    final DirectInput in = lentInput;
                    if (in != null && lentOn == channel && in.lent()) {
                        final boolean first = !in.reclaimRequested();
                        if (!in.claimForLoop()) {
                            throw new LentInputError();
                        }
                        final ChardevFrontend f = s.frontend;
                        if (first && f != null) {
                            f.directInputReclaimed();
                        }
                    }
                    return h.allocate(alloc);
                }

                @Override
                public void readComplete() {
                    h.readComplete();
                }

                @Override
                public int guess() {
                    return h.guess();
                }

                @Override
                public void reset(final io.netty.channel.ChannelConfig config) {
                    h.reset(config);
                }

                @Override
                public void incMessagesRead(final int numMessages) {
                    h.incMessagesRead(numMessages);
                }

                @Override
                public void lastBytesRead(final int bytes) {
                    h.lastBytesRead(bytes);
                }

                @Override
                public int lastBytesRead() {
                    return h.lastBytesRead();
                }

                @Override
                public void attemptedBytesRead(final int bytes) {
                    h.attemptedBytesRead(bytes);
                }

                @Override
                public int attemptedBytesRead() {
                    return h.attemptedBytesRead();
                }

                @Override
                public boolean continueReading() {
                    return h.continueReading();
                }

                @Override
                public boolean continueReading(final io.netty.util.UncheckedBooleanSupplier maybeMoreDataSupplier) {
                    return h.continueReading(maybeMoreDataSupplier);
                }
            };
        }
    }

    /**
     * While input is paused the transport does not read, so it would not see the peer leave; QEMU watches its
     * sockets for hang-up for the same reason. Without this, a replaced peer waits in the backlog and guest
     * output goes into the dead connection. Polls the socket every {@link #HANGUP_POLL_MS} while paused.
     * (A peer that closed with data still queued towards us counts as gone only once that data is read, because
     * it still belongs to the port; a reset is seen at once.)
     */
    private void watchHangup(final Channel c) {
        if (hangupWatch != null || !(c instanceof UnixChannel unix)) {
            return;
        }
        hangupWatch = c.eventLoop().scheduleAtFixedRate(() -> {
            if (s.connection != c || s.inputWanted() || !c.isActive()) {
                hangupWatch.cancel(false);
                hangupWatch = null;
                return;
            }
            if (Sockets.peerGone(unix.fd().intValue())) {
                LOG.log(Level.INFO, "chardev ''{0}'': peer hung up while input was paused", s.id);
                hangupWatch.cancel(false);
                hangupWatch = null;
                c.close();
            }
        }, HANGUP_POLL_MS, HANGUP_POLL_MS, TimeUnit.MILLISECONDS);
    }
}
