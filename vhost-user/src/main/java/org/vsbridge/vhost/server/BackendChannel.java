package org.vsbridge.vhost.server;

import org.vsbridge.libc.FdList;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;
import org.vsbridge.vhost.protocol.MessageHeader;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.logging.Logger;

/**
 * The backend request channel (SET_BACKEND_REQ_FD, protocol feature BACKEND_REQ): a socket on which the backend
 * sends requests to the frontend. Only CONFIG_CHANGE_MSG is used. Messages go out from one thread of their own
 * ({@code vsb-backend-req-<name>}) because the frontend answers them on its main loop, which may itself be
 * waiting for us (QEMU blocks on GET_VRING_BASE): a device worker that waited for that ack could deadlock.
 * With REPLY_ACK the message asks for an ack and the thread waits for it, bounded by {@link #ACK_TIMEOUT_MS}.
 */
final class BackendChannel implements AutoCloseable {

    private static final Logger LOG = Logger.getLogger(BackendChannel.class.getName());

    /** Backend-to-frontend request id (vhost-user spec, "Back-end message types"). */
    static final int CONFIG_CHANGE_MSG = 2;
    /** Safety net for a frontend that never acks; not a protocol timeout. */
    static final int ACK_TIMEOUT_MS = 5_000;

    private final String name;
    private final int fd;
    private final boolean replyAck;
    private final ExecutorService sender;
    private volatile boolean closed;

    BackendChannel(final String name, final int fd, final boolean replyAck) {
        this.name = name;
        this.fd = fd;
        this.replyAck = replyAck;
        this.sender = Executors.newSingleThreadExecutor(r -> {
            final Thread t = new Thread(r, "vsb-backend-req-" + name);
            t.setDaemon(true);
            return t;
        });
    }

    /** Any thread: send CONFIG_CHANGE_MSG soon. False when the channel is closed. */
    boolean configChanged() {
        if (closed) {
            return false;
        }
        try {
            sender.execute(this::sendConfigChange);
            return true;
        } catch (final RejectedExecutionException e) {
            return false;
        }
    }

    private void sendConfigChange() {
        if (closed) {
            return;
        }
        final ByteBuffer msg = ByteBuffer.allocate(MessageHeader.LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        msg.putInt(CONFIG_CHANGE_MSG)
            .putInt(MessageHeader.VERSION | (replyAck ? MessageHeader.FLAG_NEED_REPLY : 0))
            .putInt(0);
        try {
            Sockets.sendMsg(fd, msg.array(), 0, MessageHeader.LENGTH);
            if (!replyAck) {
                LOG.fine(() -> name + ": CONFIG_CHANGE_MSG sent");
                return;
            }
            final long ack = readAck();
            if (ack == 0) {
                LOG.fine(() -> name + ": CONFIG_CHANGE_MSG acked");
            } else {
                LOG.warning(() -> name + ": frontend failed CONFIG_CHANGE_MSG (ack " + ack + ")");
            }
        } catch (final IOException e) {
            LOG.warning(() -> name + ": CONFIG_CHANGE_MSG on the backend request channel failed: "
                + e.getMessage());
        }
    }

    /** The u64 reply to CONFIG_CHANGE_MSG: header {request 2, flags 0x5, size 8} then the value. */
    private long readAck() throws IOException {
        final byte[] reply = new byte[MessageHeader.LENGTH + 8];
        final FdList fds = new FdList();
        int got = 0;
        while (got < reply.length) {
            if (Sys.pollReadable(new int[] {fd}, ACK_TIMEOUT_MS) == 0) {
                throw new IOException("no ack within " + ACK_TIMEOUT_MS + " ms");
            }
            final int n = Sockets.recvMsg(fd, reply, got, reply.length - got, fds);
            final int stray = fds.closeAll();
            if (stray > 0) {
                LOG.warning(() -> name + ": closed " + stray + " fd(s) sent with a backend request reply");
            }
            if (n == 0) {
                throw new IOException("frontend closed the backend request channel");
            }
            got += n;
        }
        final ByteBuffer b = ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN);
        final int request = b.getInt(0);
        final int flags = b.getInt(4);
        final int size = b.getInt(8);
        if (request != CONFIG_CHANGE_MSG || (flags & MessageHeader.FLAG_REPLY) == 0 || size != 8) {
            throw new IOException("unexpected reply: request " + request + ", flags 0x" + Integer.toHexString(flags)
                + ", size " + size);
        }
        return b.getLong(MessageHeader.LENGTH);
    }

    @Override
    public void close() {
        closed = true;
        sender.shutdown();
        // Wake a sender blocked on the ack, then close once it has left the fd.
        Sockets.shutdownQuietly(fd);
        try {
            sender.awaitTermination(ACK_TIMEOUT_MS + 1000L, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (final InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Sys.closeQuietly(fd);
    }
}
