package org.vsbridge.chardev;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.netty.channel.EventLoopGroup;

class EpollSocketChardevTest extends SocketChardevTestBase {

    @Override
    EventLoopGroup newGroup() {
        assumeTrue(Transports.epollAvailable(), "epoll not available");
        final EventLoopGroup g = Transports.newEventLoopGroup(1, "test-epoll");
        assumeTrue(Transports.isEpoll(g));
        return g;
    }
}
