package org.vsbridge.chardev;

import io.netty.channel.Channel;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Turns a Netty epoll channel's half-close interest ({@code EPOLLRDHUP}) off and on. With auto-read off the
 * transport stops watching for input, but it still reads once when the peer half-closes; a connection whose input
 * is lent ({@link DirectInput}) must not be read by the event loop, so the loan turns this interest off too, and the
 * reader sees the end of the stream itself. Netty has no public switch for it: its channel's own flag methods are
 * called through method handles (the application runs on the class path, where they are reachable).
 */
final class EpollInterest {

    private static final Logger LOG = Logger.getLogger(EpollInterest.class.getName());

    /** Linux {@code EPOLLRDHUP}. */
    private static final int EPOLLRDHUP = 0x2000;
    /**
     * Linux {@code EPOLLERR}: epoll reports it whatever the mask, so asking for it changes nothing but keeps the
     * interest set from becoming empty, which Netty 4.2 answers with an {@code epoll_ctl(DEL)} that it does not
     * remember: the next change of interest then fails with ENOENT and closes the connection.
     */
    private static final int EPOLLERR = 0x008;

    private static final Class<?> EPOLL_CHANNEL;
    private static final MethodHandle SET_FLAG;
    private static final MethodHandle CLEAR_FLAG;

    static {
        Class<?> type = null;
        MethodHandle set = null;
        MethodHandle clear = null;
        try {
            type = Class.forName("io.netty.channel.epoll.AbstractEpollChannel");
            final MethodHandles.Lookup lookup = MethodHandles.privateLookupIn(type, MethodHandles.lookup());
            final MethodType flag = MethodType.methodType(void.class, int.class);
            set = lookup.findVirtual(type, "setFlag", flag);
            clear = lookup.findVirtual(type, "clearFlag", flag);
        } catch (final ReflectiveOperationException | RuntimeException | LinkageError e) {
            LOG.log(Level.FINE, "epoll half-close interest cannot be switched; no direct input", e);
            type = null;
            set = null;
            clear = null;
        }
        EPOLL_CHANNEL = type;
        SET_FLAG = set;
        CLEAR_FLAG = clear;
    }

    private EpollInterest() {
    }

    /** True when {@code c} is an epoll channel whose half-close interest can be switched. */
    static boolean switchable(final Channel c) {
        return EPOLL_CHANNEL != null && EPOLL_CHANNEL.isInstance(c);
    }

    /** Event loop of {@code c}: watch the peer's half-close ({@code on}) or not. False when that failed. */
    static boolean halfClose(final Channel c, final boolean on) {
        if (!switchable(c)) {
            return false;
        }
        try {
            if (on) {
                SET_FLAG.invoke(c, EPOLLRDHUP);
                CLEAR_FLAG.invoke(c, EPOLLERR);
            } else {
                SET_FLAG.invoke(c, EPOLLERR);
                CLEAR_FLAG.invoke(c, EPOLLRDHUP);
            }
            return true;
        } catch (final Throwable t) { // IOException from epoll_ctl, or the handle itself
            LOG.log(Level.FINE, "epoll half-close interest of " + c + " not switched", t);
            return false;
        }
    }
}
