package org.vsbridge.chardev;

import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelException;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.vsbridge.libc.ErrnoException;
import org.vsbridge.libc.Sockets;
import org.vsbridge.libc.Sys;

/**
 * Multipath TCP sockets ({@code mptcp=on}), as QEMU opens them: the same stream socket with protocol
 * {@code IPPROTO_MPTCP}, everything else as for TCP. Netty 4.2 cannot ask for that protocol, so the socket is made
 * here and handed to Netty's epoll channel as an unconnected (or unbound) socket of its own; Netty then binds,
 * listens or connects it as any other. The channel constructors that take such a socket are not public: they are
 * reached through method handles (the application runs on the class path, where they are reachable).
 */
final class Mptcp {

    private static final Logger LOG = Logger.getLogger(Mptcp.class.getName());

    /** Linux {@code IPPROTO_MPTCP}. */
    static final int IPPROTO_MPTCP = 262;
    private static final int EAFNOSUPPORT = 97;

    private static final MethodHandle NEW_SOCKET;
    private static final MethodHandle NEW_CLIENT;
    private static final MethodHandle NEW_SERVER;

    static {
        MethodHandle socket = null;
        MethodHandle client = null;
        MethodHandle server = null;
        try {
            final Class<?> linuxSocket = Class.forName("io.netty.channel.epoll.LinuxSocket");
            final MethodHandles.Lookup inPackage = MethodHandles.privateLookupIn(linuxSocket, MethodHandles.lookup());
            socket = inPackage.findStatic(linuxSocket, "newSocket", MethodType.methodType(linuxSocket, int.class));
            client = inPackage.findConstructor(EpollSocketChannel.class,
                MethodType.methodType(void.class, linuxSocket, boolean.class));
            server = inPackage.findConstructor(EpollServerSocketChannel.class,
                MethodType.methodType(void.class, linuxSocket, boolean.class));
        } catch (final ReflectiveOperationException | RuntimeException | LinkageError e) {
            LOG.log(Level.FINE, "Netty's epoll channels cannot take a socket made here; no mptcp", e);
            socket = null;
        }
        NEW_SOCKET = socket;
        NEW_CLIENT = client;
        NEW_SERVER = server;
    }

    private Mptcp() {
    }

    /** Refused by name where it cannot be done: it needs the epoll transport and Netty's channel constructors. */
    static void requireAvailable(final io.netty.channel.EventLoop loop) throws ChardevException {
        if (!Transports.isEpoll(loop)) {
            throw new ChardevException("'mptcp' sockets need the native epoll transport");
        }
        if (NEW_SOCKET == null) {
            throw new ChardevException("'mptcp' sockets cannot be made with this Netty");
        }
    }

    /**
     * Fails as QEMU does when the kernel has no MPTCP for {@code address}'s family (null: both families): QEMU's
     * {@code socket()} fails there, before any bind or connect.
     */
    static void probe(final InetAddress address) throws ChardevException {
        try {
            Sys.closeQuietly(socket(family(address), false));
        } catch (final ErrnoException e) {
            throw new ChardevException("Failed to create socket: " + e.reason());
        }
    }

    /** IPv4 for an IPv4 address; else IPv6, and for both families (null) IPv4 on a host without IPv6. */
    private static int family(final InetAddress address) {
        if (address instanceof Inet4Address) {
            return Sockets.AF_INET;
        }
        if (address == null) {
            try {
                Sys.closeQuietly(socket(Sockets.AF_INET6, false));
            } catch (final ErrnoException e) {
                if (e.errno() == EAFNOSUPPORT) {
                    return Sockets.AF_INET; // as Netty's plain sockets, which take IPv4 where IPv6 is missing
                }
            }
        }
        return Sockets.AF_INET6;
    }

    private static int socket(final int family, final boolean nonBlocking) throws ErrnoException {
        return Sockets.socket(family, Sockets.SOCK_STREAM | Sockets.SOCK_CLOEXEC
            | (nonBlocking ? Sockets.SOCK_NONBLOCK : 0), IPPROTO_MPTCP);
    }

    /** Listening channels for {@code host} (null: both families, as an empty host asks). */
    static ChannelFactory<ServerChannel> serverFactory(final InetAddress host) {
        final int family = family(host);
        return () -> (ServerChannel) wrap(NEW_SERVER, family);
    }

    /** Connecting channels to {@code remote}'s family. */
    static ChannelFactory<EpollSocketChannel> clientFactory(final InetAddress remote) {
        final int family = family(remote);
        return () -> (EpollSocketChannel) wrap(NEW_CLIENT, family);
    }

    private static Object wrap(final MethodHandle constructor, final int family) {
        final int fd;
        try {
            fd = socket(family, true);
        } catch (final ErrnoException e) {
            // QEMU's words when its socket() fails; EPROTONOSUPPORT on a kernel without MPTCP.
            throw new ChannelException("Failed to create socket: " + e.reason(), e);
        }
        try {
            return constructor.invoke(NEW_SOCKET.invoke(fd), false);
        } catch (final Throwable t) {
            Sys.closeQuietly(fd);
            throw new ChannelException("cannot hand an mptcp socket to Netty: " + t, t);
        }
    }
}
