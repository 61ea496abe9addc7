package org.vsbridge.chardev;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Objects;

/**
 * One chardev's configuration: its id, its backend and the options every backend has ({@code ChardevCommon}).
 * Two front doors lead here: QEMU's {@code -chardev} syntax ({@link #parse(String)}) and the QAPI JSON of
 * {@code chardev-add} ({@link #fromQapi(String, JsonNode)}).
 *
 * @param logfile   file that records everything written to the chardev (guest output), or null
 * @param logappend append to {@code logfile} instead of truncating it
 */
public record ChardevOptions(String id, ChardevBackend backend, String logfile, boolean logappend) {

    public ChardevOptions {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(backend, "backend");
    }

    /** Options without a logfile. */
    public ChardevOptions(final String id, final ChardevBackend backend) {
        this(id, backend, null, false);
    }

    public ChardevKind kind() {
        return backend.kind();
    }

    /**
     * Parses QEMU's {@code -chardev} syntax, e.g. {@code socket,id=c0,path=/tmp/s,server=on,wait=off}: the driver
     * first, then {@code name=value} pairs; a doubled comma is a comma inside a value; bools take on/off, yes/no,
     * true/false. CLI defaults apply: {@code server} off, and {@code wait} on when {@code server=on}.
     */
    public static ChardevOptions parse(final String spec) throws ChardevException {
        return ChardevCli.parse(spec, null);
    }

    /**
     * Like {@link #parse(String)}, and {@code mux=on} yields QEMU's two chardevs: the backend as
     * {@code ID-base}, then a {@code mux} named {@code ID} on it (create them in this order). {@code defaultId}
     * names a spec without {@code id=} (null: such a spec is refused, as QEMU's {@code -chardev} refuses it).
     */
    public static java.util.List<ChardevOptions> parseAll(final String spec, final String defaultId)
        throws ChardevException {
        return ChardevCli.parseAll(spec, defaultId);
    }

    /**
     * Maps the QAPI form of {@code chardev-add}: {@code backend} is the {@code ChardevBackend} object
     * ({@code {"type":"socket","data":{...}}}). QMP defaults apply: {@code server} true, {@code wait} false.
     * Errors name members by path as QEMU does ("Parameter 'backend.data.x' is unexpected").
     */
    public static ChardevOptions fromQapi(final String id, final JsonNode backend) throws ChardevException {
        return ChardevQapi.parse(id, backend);
    }
}
