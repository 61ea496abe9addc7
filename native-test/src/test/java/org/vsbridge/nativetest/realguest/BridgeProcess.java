package org.vsbridge.nativetest.realguest;

import java.io.IOException;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The real bridge, started as {@code java -jar bridge.jar} with one console port and two named
 * ports. Its stdout and stderr go to a log file that failing tests print.
 */
final class BridgeProcess implements AutoCloseable {
    private final Process process;
    private final Path log;
    private final List<String> command;

    private BridgeProcess(final Process process, final Path log, final List<String> command) {
        this.process = process;
        this.log = log;
        this.command = command;
    }

    /**
     * Starts the bridge and waits until its vhost-user socket accepts a connection.
     *
     * @param layout socket paths and the TCP port of the named port 2
     */
    static BridgeProcess start(final Path jar, final PortLayout layout, final Path log, final List<String> options)
        throws IOException, InterruptedException {
        final String java = ProcessHandle.current().info().command().orElse("java");
        // Exactly as a user runs it: the jar's manifest must carry what the JVM needs.
        final List<String> cmd = new ArrayList<>(List.of(java));
        // -Dvsb.bridgeJvm='-Dvsb.directOutput=false ...': JVM options for A/B runs of the benchmark.
        for (final String opt : System.getProperty("vsb.bridgeJvm", "").trim().split("\\s+")) {
            if (!opt.isEmpty()) {
                cmd.add(opt);
            }
        }
        cmd.addAll(List.of("-jar", jar.toString(),
            "--socket-path", layout.vhostSocket().toString(),
            "--chardev", "socket,id=c0," + layout.console().chardevAddress() + ",server=on,wait=off",
            "--device", "virtconsole,chardev=c0,id=con0",
            "--chardev", "socket,id=c1," + layout.port1().chardevAddress() + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c1,name=" + PortLayout.PORT1_NAME + ",id=" + PortLayout.PORT1_ID,
            "--chardev", "socket,id=c2," + layout.port2().chardevAddress() + ",server=on,wait=off",
            "--device", "virtserialport,chardev=c2,name=" + PortLayout.PORT2_NAME + ",id=" + PortLayout.PORT2_ID,
            "--qmp", "unix:" + layout.qmp().unixPath() + ",server=on,wait=off"));
        cmd.addAll(options);
        final String level = System.getProperty("vsb.bridge.logLevel");
        if (level != null && !level.isBlank()) {
            cmd.addAll(List.of("--log-level", level));
        }
        final Process p = new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .start();
        final BridgeProcess bridge = new BridgeProcess(p, log, cmd);
        final long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new IOException("bridge exited with status " + p.exitValue() + " before listening:\n" + bridge.log());
            }
            try (SocketChannel probe = Endpoint.unix(layout.vhostSocket()).open()) {
                return bridge;
            } catch (final IOException notYet) {
                Thread.sleep(50);
            }
        }
        bridge.close();
        throw new IOException("bridge did not listen on " + layout.vhostSocket() + " within 30 s:\n" + bridge.log());
    }

    boolean isAlive() {
        return process.isAlive();
    }

    long pid() {
        return process.pid();
    }

    List<String> command() {
        return command;
    }

    /** The bridge's log so far. */
    String log() {
        try {
            return Files.exists(log) ? Files.readString(log) : "(no bridge log)";
        } catch (final IOException e) {
            return "(bridge log unreadable: " + e + ")";
        }
    }

    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
