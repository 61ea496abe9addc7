package org.vsbridge.nativetest.diff;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One of the two programs under comparison (QEMU or the bridge) for one group of cases: its process, its QMP
 * connection, its private directory (every {@code @DIR@} of a case) and its own free TCP ports (every
 * {@code @PORTn@}: both run at once, so they cannot share a port). A case's outcome is a normalised string:
 * the directory and the ports turned back into their placeholders, kernel-chosen ports into {@code EPHEMERAL},
 * JSON re-serialised with lists of chardevs sorted by label.
 */
abstract class Side implements AutoCloseable {

    static final ObjectMapper JSON = new ObjectMapper();
    static final Duration REPLY = Duration.ofSeconds(10);
    private static final Pattern PORT = Pattern.compile("@PORT(\\d)@");
    private static final Pattern EPHEMERAL = Pattern.compile("(?<=[:=])(3[2-9]\\d{3}|[4-6]\\d{4})(?!\\d)");

    final String name;
    final Path dir;
    /** This side's loopback address for fixed ports (a service name's): QEMU 127.0.0.3, the bridge 127.0.0.2. */
    String loopback = "127.0.0.3";
    private int syncs;
    private final Map<String, Integer> ports = new LinkedHashMap<>();
    Process process;
    RawQmp qmp;

    Side(final String name, final Path dir) {
        this.name = name;
        this.dir = dir;
    }

    /** Starts the process and connects QMP (capabilities negotiated). */
    abstract void start(String machine) throws IOException;

    /** The outcome of {@code -chardev SPEC} on this side: {@code ok} or {@code error: MESSAGE}. */
    abstract String cli(String spec) throws IOException;

    /** A label this side lists in query-chardev that the cases did not create (QEMU's own monitor). */
    abstract boolean ownChardev(String label);

    void connect(final Path socket) throws IOException {
        qmp = RawQmp.connect(socket, process::isAlive, Duration.ofSeconds(60));
        final String r = qmp.send("{\"execute\":\"qmp_capabilities\"}", REPLY);
        if (!r.contains("\"return\"")) {
            throw new IOException(name + ": qmp_capabilities failed: " + r);
        }
    }

    /** The case text with this side's directory and ports. */
    String substitute(final String text) throws IOException {
        final Matcher m = PORT.matcher(text);
        final StringBuilder out = new StringBuilder();
        while (m.find()) {
            m.appendReplacement(out, String.valueOf(port(m.group(0))));
        }
        m.appendTail(out);
        return out.toString().replace("@DIR@", dir.toString()).replace("@LOOP@", loopback);
    }

    private int port(final String placeholder) throws IOException {
        Integer p = ports.get(placeholder);
        if (p == null) {
            try (ServerSocket s = new ServerSocket()) {
                s.setReuseAddress(true);
                s.bind(new InetSocketAddress("127.0.0.1", 0));
                p = s.getLocalPort();
            }
            // Stay out of the range the ephemeral normalisation rewrites.
            ports.put(placeholder, p);
        }
        return p;
    }

    /** Turns this side's directory and ports back into placeholders. */
    String normalise(final String text) {
        String s = text.replace(dir.toString(), "@DIR@").replace(loopback, "@LOOP@");
        for (final Map.Entry<String, Integer> e : ports.entrySet()) {
            s = s.replaceAll("(?<=[:=\"])" + e.getValue() + "(?!\\d)", e.getKey());
        }
        s = s.replaceAll("/dev/pts/\\d+", "/dev/pts/N");
        return EPHEMERAL.matcher(s).replaceAll("EPHEMERAL");
    }

    /** Sends a QMP command (bytes as given after substitution) and returns the normalised reply. */
    String qmp(final byte[] raw) throws IOException {
        return reply(qmp.send(raw, REPLY));
    }

    /**
     * Sends raw input, then a command with an id, and returns every reply before that command's: broken input may
     * get no reply or several (QEMU answers each error of its JSON lexer).
     */
    String raw(final byte[] bytes) throws IOException {
        final String sync = "sync-" + ++syncs;
        final byte[] marker = ("\n{\"execute\":\"query-commands\",\"id\":\"" + sync + "\"}")
            .getBytes(StandardCharsets.UTF_8);
        final byte[] both = java.util.Arrays.copyOf(bytes, bytes.length + marker.length);
        System.arraycopy(marker, 0, both, bytes.length, marker.length);
        final List<String> replies = new ArrayList<>();
        for (String line = qmp.send(both, REPLY); !line.contains("\"" + sync + "\""); line = qmp.next(REPLY)) {
            replies.add(reply(line));
        }
        return replies.isEmpty() ? "no reply" : String.join(" | ", replies);
    }

    String reply(final String line) {
        final JsonNode n;
        try {
            n = JSON.readTree(line);
        } catch (final IOException e) {
            return "unparsable reply: " + normalise(line);
        }
        if (n.has("error")) {
            return normalise("error " + n.path("error").path("class").asText() + ": "
                + n.path("error").path("desc").asText());
        }
        if (n.has("return")) {
            return normalise("return " + canonical(n.get("return")));
        }
        return normalise("reply " + line);
    }

    /** JSON with lists of labelled objects sorted by label, QEMU's own monitor left out, the version blanked. */
    String canonical(final JsonNode ret) {
        if (ret instanceof ArrayNode a && a.size() > 0 && a.get(0).has("label")) {
            final List<JsonNode> items = new ArrayList<>();
            a.forEach(i -> {
                if (!ownChardev(i.path("label").asText())) {
                    items.add(sortedObject(i));
                }
            });
            items.sort(Comparator.comparing(i -> i.path("label").asText()));
            return JSON.valueToTree(items).toString();
        }
        if (ret.has("qemu") && ret.has("package") && ret.path("qemu").has("major")) {
            return "VERSION";
        }
        return sortedObject(ret).toString();
    }

    private static JsonNode sortedObject(final JsonNode n) {
        if (!(n instanceof ObjectNode o)) {
            return n;
        }
        final ObjectNode out = JSON.createObjectNode();
        final List<String> names = new ArrayList<>();
        o.fieldNames().forEachRemaining(names::add);
        names.sort(null);
        names.forEach(k -> out.set(k, sortedObject(o.get(k))));
        return out;
    }

    /** The filename query-chardev gives for {@code label}, or null. */
    String filename(final String label) throws IOException {
        final JsonNode r = JSON.readTree(qmp.send("{\"execute\":\"query-chardev\"}", REPLY));
        for (final JsonNode c : r.path("return")) {
            if (label.equals(c.path("label").asText())) {
                return c.path("filename").asText();
            }
        }
        return null;
    }

    /**
     * What a peer sees when it connects to chardev {@code label}'s listening address (from its query-chardev
     * filename): the first bytes sent to it, in hex, read until 300 ms pass without more (at most 2 s).
     */
    String peer(final String label) throws IOException {
        final String f = filename(label);
        if (f == null) {
            return "no chardev " + label;
        }
        final Matcher unix = Pattern.compile("unix:([^,]+)").matcher(f);
        final Matcher tcp = Pattern.compile("tcp:([^:,]+):(\\d+)").matcher(f);
        final SocketChannel ch;
        if (unix.find()) {
            ch = SocketChannel.open(StandardProtocolFamily.UNIX);
            ch.connect(UnixDomainSocketAddress.of(unix.group(1)));
        } else if (tcp.find()) {
            ch = SocketChannel.open(new InetSocketAddress(tcp.group(1), Integer.parseInt(tcp.group(2))));
        } else {
            return "no address in " + normalise(f);
        }
        try (ch; Selector sel = Selector.open()) {
            ch.configureBlocking(false);
            ch.register(sel, SelectionKey.OP_READ);
            final ByteBuffer b = ByteBuffer.allocate(256);
            final long end = System.nanoTime() + Duration.ofSeconds(2).toNanos();
            while (System.nanoTime() < end && b.hasRemaining()) {
                // The quiet period ends the read: it bounds a read of bytes that may never come, nothing is
                // proven by it (both sides get the same period).
                if (sel.select(300) == 0) {
                    break;
                }
                sel.selectedKeys().clear();
                if (ch.read(b) < 0) {
                    return "peer: " + HexFormat.of().formatHex(b.array(), 0, b.position()) + " then closed";
                }
            }
            return "peer: " + HexFormat.of().formatHex(b.array(), 0, b.position());
        }
    }

    String exists(final String path) {
        return Files.exists(Path.of(path), java.nio.file.LinkOption.NOFOLLOW_LINKS) ? "exists" : "absent";
    }

    @Override
    public void close() throws IOException {
        if (qmp != null) {
            qmp.close();
        }
        if (process != null && process.isAlive()) {
            process.destroy();
            try {
                if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                }
            } catch (final InterruptedException e) {
                Thread.currentThread().interrupt();
                process.destroyForcibly();
            }
        }
    }

    static String utf8(final byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }
}
