package org.vsbridge.chardev;

import static org.vsbridge.chardev.ByteBufs.run;

import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * What chardev tests with real peers share: one event loop, a factory whose objects (TLS credentials,
 * authorizers, chardevs for a mux) are what the test puts in {@link #objects}, and the chardevs it created, all
 * closed by {@link #close()}.
 */
final class ChardevRig implements AutoCloseable {

    final EventLoopGroup group;
    final ChardevFactory factory;
    final Map<String, Object> objects = new ConcurrentHashMap<>();

    ChardevRig(final String name) {
        group = Transports.newEventLoopGroup(1, name);
        factory = new ChardevFactory(group, new ChardevObjects() {
            @Override
            public TlsCredentials tlsCreds(final String id) throws ChardevException {
                if (objects.get(id) instanceof TlsCredentials t) {
                    return t;
                }
                return ChardevObjects.super.tlsCreds(id);
            }

            @Override
            public Authorizer authz(final String id) throws ChardevException {
                if (objects.get(id) instanceof Authorizer a) {
                    return a;
                }
                return ChardevObjects.super.authz(id);
            }

            @Override
            public Chardev chardev(final String id) {
                return objects.get(id) instanceof Chardev c ? c : null;
            }
        });
    }

    /** A chardev from its {@code -chardev} spec, closed with the rig. */
    Chardev create(final String spec) throws ChardevException {
        final ChardevOptions o = ChardevOptions.parse(spec);
        final Chardev c = factory.create(o);
        objects.put(o.id(), c);
        return c;
    }

    /** A chardev from its QMP {@code chardev-add} backend (JSON), closed with the rig. */
    Chardev createQapi(final String id, final String backendJson) throws Exception {
        final ChardevOptions o = ChardevQapi.parse(id, new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(backendJson));
        final Chardev c = factory.create(o);
        objects.put(o.id(), c);
        return c;
    }

    static RecordingFrontend attach(final Chardev c) throws Exception {
        final RecordingFrontend fe = new RecordingFrontend(c);
        run(c, () -> c.attach(fe));
        return fe;
    }

    /** The port a tcp server chardev listens on. */
    static int port(final Chardev c) {
        return ((InetSocketAddress) ((SocketChardev) c).localAddress()).getPort();
    }

    @Override
    public void close() {
        for (final Object o : objects.values()) {
            if (o instanceof Chardev c) {
                c.close();
            }
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
