package org.vsbridge.chardev;

import java.util.List;

/**
 * The backend part of a chardev's configuration: QAPI's {@code ChardevBackend} union, one record per
 * {@link ChardevKind}. Values are resolved (defaults applied: the CLI and QMP defaults differ, the parsers know
 * which applies); optional members that have no default stay null. The common members ({@code logfile},
 * {@code logappend}) live in {@link ChardevOptions}.
 */
public sealed interface ChardevBackend {

    ChardevKind kind();

    /** {@code ChardevFile}: output to {@code out} (truncated unless {@code append}), input from {@code in} if set. */
    record File(String out, String in, boolean append) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.FILE;
        }
    }

    /** {@code ChardevHostdev} as {@code serial}: a host tty. */
    record Serial(String device) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.SERIAL;
        }
    }

    /** {@code ChardevHostdev} as {@code parallel}: a host parallel port. */
    record Parallel(String device) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.PARALLEL;
        }
    }

    /** {@code ChardevHostdev} as {@code pipe}: {@code device} itself, or {@code device.in}/{@code device.out}. */
    record Pipe(String device) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.PIPE;
        }
    }

    /**
     * {@code ChardevSocket}. {@code server}: listen (else connect); {@code waitForClient}: a server blocks its
     * creation until the first client connects; {@code reconnectMs}: client reconnect delay, 0 = never.
     */
    record Socket(SocketAddressLegacy addr, String tlsCreds, String tlsAuthz, boolean server, boolean waitForClient,
                  boolean nodelay, boolean telnet, boolean tn3270, boolean websocket, long reconnectMs)
        implements ChardevBackend {

        /** A plain socket without telnet, websocket, TLS or reconnect. */
        public Socket(final SocketAddressLegacy addr, final boolean server, final boolean waitForClient,
                      final boolean nodelay) {
            this(addr, null, null, server, waitForClient, nodelay, false, false, false, 0);
        }

        @Override
        public ChardevKind kind() {
            return ChardevKind.SOCKET;
        }
    }

    /** {@code ChardevUdp}: datagrams to {@code remote}, from {@code local} (null = any). */
    record Udp(SocketAddressLegacy remote, SocketAddressLegacy local) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.UDP;
        }
    }

    /** {@code pty}: a pseudo terminal; {@code path} (QEMU 9.2+) is a symlink to create, or null. */
    record Pty(String path) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.PTY;
        }
    }

    /** {@code null}: discards output, never has input. */
    record Null() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.NULL;
        }
    }

    /** {@code ChardevMux}: several frontends over the chardev {@code chardev}. */
    record Mux(String chardev) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.MUX;
        }
    }

    /** {@code ChardevHub} (QEMU 10.0): output to all of {@code chardevs}, their input merged. */
    record Hub(List<String> chardevs) implements ChardevBackend {
        public Hub {
            chardevs = List.copyOf(chardevs);
        }

        @Override
        public ChardevKind kind() {
            return ChardevKind.HUB;
        }
    }

    /** {@code msmouse}. */
    record Msmouse() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.MSMOUSE;
        }
    }

    /** {@code wctablet}. */
    record Wctablet() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.WCTABLET;
        }
    }

    /** {@code braille}. */
    record Braille() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.BRAILLE;
        }
    }

    /** {@code testdev}. */
    record Testdev() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.TESTDEV;
        }
    }

    /** {@code ChardevStdio}: the process's stdin/stdout; {@code signal} (default true) lets ^C reach the process. */
    record Stdio(boolean signal) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.STDIO;
        }
    }

    /** {@code console} (Windows). */
    record Console() implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.CONSOLE;
        }
    }

    /** {@code ChardevSpiceChannel}. */
    record Spicevmc(String type) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.SPICEVMC;
        }
    }

    /** {@code ChardevSpicePort}. */
    record Spiceport(String fqdn) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.SPICEPORT;
        }
    }

    /** {@code ChardevQemuVDAgent}; null = QEMU's default. */
    record QemuVdagent(Boolean mouse, Boolean clipboard) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.QEMU_VDAGENT;
        }
    }

    /** {@code ChardevDBus}. */
    record Dbus(String name) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.DBUS;
        }
    }

    /** {@code ChardevVC}; null = QEMU's default. */
    record Vc(Long width, Long height, Long cols, Long rows) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.VC;
        }
    }

    /** {@code ChardevRingbuf} as {@code ringbuf}: {@code size} bytes, a power of two. */
    record Ringbuf(long size) implements ChardevBackend {
        /** QEMU's default ring size. */
        public static final long DEFAULT_SIZE = 65536;

        @Override
        public ChardevKind kind() {
            return ChardevKind.RINGBUF;
        }
    }

    /** {@code ChardevRingbuf} as {@code memory}, the old name of {@code ringbuf}. */
    record Memory(long size) implements ChardevBackend {
        @Override
        public ChardevKind kind() {
            return ChardevKind.MEMORY;
        }
    }

    /** The ring size rule shared by both parsers and the factory (QEMU checks it when the ring is opened). */
    static void checkRingSize(final long size) throws ChardevException {
        if (size <= 0 || (size & (size - 1)) != 0) {
            throw new ChardevException("size of ringbuf chardev must be power of two");
        }
        if (size > RingbufChardev.MAX_SIZE) {
            throw new ChardevException("size of ringbuf chardev must be at most " + RingbufChardev.MAX_SIZE
                + " in this bridge");
        }
    }
}
