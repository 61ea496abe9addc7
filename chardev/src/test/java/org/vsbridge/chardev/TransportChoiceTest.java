package org.vsbridge.chardev;

import io.netty.channel.EventLoopGroup;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.*;

/** The transport choice is said when it is not the expected one: NIO on Linux is a WARNING with Netty's reason. */
class TransportChoiceTest {

    @Test
    void theWarningCarriesNettysReasonAndTheMissingLibrary() {
        // As Netty reports a root file system without libdl: its own error, the loader's as the cause.
        final Throwable cause = new UnsatisfiedLinkError("failed to load the required native library");
        cause.initCause(new UnsatisfiedLinkError(
            "/tmp/libnetty_transport_native_epoll_x86_64.so: libdl.so.2: cannot open shared object file"));
        final String line = Transports.noEpollMessage(cause);
        assertTrue(line.startsWith("native epoll transport not available: java.lang.UnsatisfiedLinkError: failed to"
            + " load the required native library (java.lang.UnsatisfiedLinkError: "), line);
        assertTrue(line.contains("libdl.so.2: cannot open shared object file"), line);
        assertTrue(line.contains("using NIO"), line);
        assertTrue(Transports.noEpollMessage(null).contains("unknown reason"));
        assertTrue(Transports.noEpollMessage(new IllegalStateException("x"))
            .startsWith("native epoll transport not available: java.lang.IllegalStateException: x; using NIO"));
    }

    @Test
    void linuxIsTheSystemWhereEpollIsExpected() {
        assertTrue(Transports.isLinux("Linux"));
        assertFalse(Transports.isLinux("Mac OS X"));
        assertFalse(Transports.isLinux(null));
    }

    @Test
    void withEpollNothingIsSaid() {
        assumeLinuxWithEpoll();
        final List<String> lines = new ArrayList<>();
        final Handler handler = new Handler() {
            @Override
            public void publish(final LogRecord record) {
                if (record.getLevel().intValue() >= Level.INFO.intValue()) {
                    lines.add(record.getMessage());
                }
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        final Logger logger = Logger.getLogger(Transports.class.getName());
        logger.addHandler(handler);
        final EventLoopGroup group = Transports.newEventLoopGroup(1, "transport-test");
        try {
            assertTrue(Transports.isEpoll(group));
            assertEquals(List.of(), lines);
        } finally {
            logger.removeHandler(handler);
            group.shutdownGracefully(0, 0, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    private static void assumeLinuxWithEpoll() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Transports.isLinux(System.getProperty("os.name"))
            && Transports.epollAvailable(), "needs Linux with Netty's epoll library");
    }
}
