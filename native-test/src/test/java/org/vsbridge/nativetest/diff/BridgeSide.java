package org.vsbridge.nativetest.diff;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import io.netty.channel.EventLoopGroup;
import org.vsbridge.chardev.Chardev;
import org.vsbridge.chardev.ChardevException;
import org.vsbridge.chardev.ChardevFactory;
import org.vsbridge.chardev.ChardevKind;
import org.vsbridge.chardev.ChardevOptions;
import org.vsbridge.chardev.Transports;
import org.vsbridge.nativetest.kit.BridgeProcess;

/**
 * The bridge jar (kit.BridgeProcess) with one device of 8 ports whose port 1 sits on the {@code null} chardev
 * {@code vsbport0}, and a QMP monitor.
 *
 * <p>A {@code -chardev} string is taken in this JVM by the two calls the bridge makes for {@code --chardev}:
 * {@link ChardevOptions#parseAll}, then {@link ChardevFactory#create} (the chardev is opened, then closed again);
 * mux and hub, which need the other chardevs of the bridge, and stdio, which would take this JVM's terminal, are
 * parsed only. The strings both sides accept are then given all at once to one more bridge process
 * ({@link #startWithChardevs}), whose query-chardev proves the command-line path end to end. A bridge process
 * per string would cost one to three seconds each, hundreds of them several minutes.
 */
final class BridgeSide extends Side {

    private BridgeProcess bridge;
    private EventLoopGroup group;
    private ChardevFactory factory;

    BridgeSide(final Path dir) {
        super("bridge", dir);
        loopback = "127.0.0.2";
    }

    @Override
    void start(final String machine) throws IOException {
        startWithChardevs(List.of());
    }

    /** Starts the bridge with {@code --chardev} for each of {@code specs} (after substitution). */
    void startWithChardevs(final List<String> specs) throws IOException {
        final Path sock = dir.resolve("qmp.sock");
        final List<String> args = new ArrayList<>(List.of("--socket-path", dir.resolve("vu.sock").toString(),
            "--qmp", "unix:" + sock + ",server=on,wait=off", "--chardev", "null,id=vsbport0"));
        for (final String s : specs) {
            args.addAll(List.of("--chardev", substitute(s)));
        }
        args.addAll(List.of("--device", "virtserialport,chardev=vsbport0", "--max-ports", "8"));
        bridge = BridgeProcess.start(dir, args);
        process = null;
        try {
            qmp = RawQmp.connect(sock, bridge::isAlive, java.time.Duration.ofSeconds(60));
        } catch (final IOException | RuntimeException e) {
            throw new IOException("bridge did not come up: " + e.getMessage() + "\n" + bridge.logTail(30), e);
        }
        final String r = qmp.send("{\"execute\":\"qmp_capabilities\"}", REPLY);
        if (!r.contains("\"return\"")) {
            throw new IOException("bridge: qmp_capabilities failed: " + r);
        }
    }

    String logTail() {
        return bridge == null ? "" : bridge.logTail(40);
    }

    @Override
    String cli(final String spec) {
        if (factory == null) {
            group = Transports.newEventLoopGroup(1, "diff-cli");
            factory = new ChardevFactory(group);
        }
        try {
            for (final ChardevOptions o : ChardevOptions.parseAll(spec, null)) {
                if (o.kind() == ChardevKind.MUX || o.kind() == ChardevKind.HUB || o.kind() == ChardevKind.STDIO) {
                    ChardevFactory.checkOpenable(o);
                    continue;
                }
                final Chardev c = factory.create(o);
                c.close();
            }
            return "ok";
        } catch (final ChardevException e) {
            return normalise("error: " + e.getMessage());
        } catch (final RuntimeException e) {
            return normalise("error: " + e);
        }
    }

    @Override
    boolean ownChardev(final String label) {
        return false;
    }

    @Override
    public void close() throws IOException {
        if (qmp != null) {
            qmp.close();
            qmp = null;
        }
        if (bridge != null) {
            bridge.close();
            bridge = null;
        }
        if (group != null) {
            group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).syncUninterruptibly();
            group = null;
            factory = null;
        }
    }
}
