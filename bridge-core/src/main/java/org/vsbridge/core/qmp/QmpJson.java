package org.vsbridge.core.qmp;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.math.MathContext;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * QEMU's JSON dialect, read as QEMU's monitor reads it (qobject/json-lexer.c, json-streamer.c, json-parser.c) and
 * written as QEMU writes it. Jackson is not used for QMP input because it cannot be made to behave like QEMU on the
 * inputs QMP clients do send by mistake: QEMU accepts single-quoted strings and the {@code \'} escape, refuses
 * duplicate keys, noncharacters and lone surrogates, takes a raw {@code C0 80} as U+0000, and after a lexical error
 * skips input up to the next structural character and goes on; every error has QEMU's words.
 *
 * <p>Bytes go in one at a time ({@link #feed}); each complete top-level value, or each error, comes out through the
 * consumer given to the constructor, in order. Not thread-safe: one instance per connection.
 */
public final class QmpJson {

    /** What comes out: a value, or the text of a parse error ("JSON parse error, ..."), never both. */
    public record Message(JsonNode value, String error) {
    }

    private static final int MAX_TOKEN_COUNT = 2 << 20;
    private static final int MAX_NESTING = 1 << 10;
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;

    private enum Kind { LCURLY, RCURLY, LSQUARE, RSQUARE, COLON, COMMA, INTEGER, FLOAT, KEYWORD, STRING }

    private record Token(Kind kind, byte[] text) {
    }

    private enum State {
        START, RECOVERY, DQ, DQ_ESC, SQ, SQ_ESC, ZERO, EXP_DIGITS, EXP_SIGN, EXP_E, MANTISSA, MANTISSA_DIGITS,
        DIGITS, SIGN, KEYWORD
    }

    private final Consumer<Message> out;
    private final long maxSize;
    private final ByteArrayOutputStream token = new ByteArrayOutputStream();
    private final List<Token> tokens = new ArrayList<>();
    private State state = State.START;
    private int braces;
    private int brackets;
    private long size;

    /** @param maxSize the longest message, in bytes of its tokens (QEMU: 64 MiB) */
    public QmpJson(final long maxSize, final Consumer<Message> out) {
        this.maxSize = maxSize;
        this.out = out;
    }

    /** Feed bytes; messages are delivered as they complete. */
    public void feed(final byte[] bytes, final int from, final int to) {
        for (int i = from; i < to; i++) {
            feed(bytes[i] & 0xFF);
        }
    }

    /** Feed one byte (0-255). */
    public void feed(final int b) {
        boolean consumed = false;
        while (!consumed) {
            consumed = true;
            final State s = state;
            switch (s) {
                case START -> start(b);
                case RECOVERY -> {
                    if (b < 0x20 && b != '\t' || b >= 0xFE || structural(b)) {
                        state = State.START;
                        consumed = false;
                    }
                }
                case DQ, SQ -> {
                    if (b < 0x20 || b > 0xFD) {
                        error(b);
                    } else {
                        token.write(b);
                        if (b == '\\') {
                            state = s == State.DQ ? State.DQ_ESC : State.SQ_ESC;
                        } else if (b == (s == State.DQ ? '"' : '\'')) {
                            emit(Kind.STRING);
                        }
                    }
                }
                case DQ_ESC, SQ_ESC -> {
                    if (b < 0x20 || b > 0xFD) {
                        error(b);
                    } else {
                        token.write(b);
                        state = s == State.DQ_ESC ? State.DQ : State.SQ;
                    }
                }
                case ZERO -> {
                    if (digit(b)) {
                        error(b);
                    } else if (b == '.') {
                        append(b, State.MANTISSA);
                    } else {
                        emit(Kind.INTEGER);
                        consumed = false;
                    }
                }
                case DIGITS -> {
                    if (digit(b)) {
                        append(b, State.DIGITS);
                    } else if (b == 'e' || b == 'E') {
                        append(b, State.EXP_E);
                    } else if (b == '.') {
                        append(b, State.MANTISSA);
                    } else {
                        emit(Kind.INTEGER);
                        consumed = false;
                    }
                }
                case SIGN -> {
                    if (b == '0') {
                        append(b, State.ZERO);
                    } else if (b >= '1' && b <= '9') {
                        append(b, State.DIGITS);
                    } else {
                        error(b);
                    }
                }
                case MANTISSA -> {
                    if (digit(b)) {
                        append(b, State.MANTISSA_DIGITS);
                    } else {
                        error(b);
                    }
                }
                case MANTISSA_DIGITS -> {
                    if (digit(b)) {
                        append(b, State.MANTISSA_DIGITS);
                    } else if (b == 'e' || b == 'E') {
                        append(b, State.EXP_E);
                    } else {
                        emit(Kind.FLOAT);
                        consumed = false;
                    }
                }
                case EXP_E -> {
                    if (b == '-' || b == '+') {
                        append(b, State.EXP_SIGN);
                    } else if (digit(b)) {
                        append(b, State.EXP_DIGITS);
                    } else {
                        error(b);
                    }
                }
                case EXP_SIGN -> {
                    if (digit(b)) {
                        append(b, State.EXP_DIGITS);
                    } else {
                        error(b);
                    }
                }
                case EXP_DIGITS -> {
                    if (digit(b)) {
                        append(b, State.EXP_DIGITS);
                    } else {
                        emit(Kind.FLOAT);
                        consumed = false;
                    }
                }
                case KEYWORD -> {
                    if (b >= 'a' && b <= 'z') {
                        append(b, State.KEYWORD);
                    } else {
                        emit(Kind.KEYWORD);
                        consumed = false;
                    }
                }
                default -> throw new IllegalStateException(s.toString());
            }
        }
        // A single token may not grow without bound (QEMU's lexer: the same, at 64 MiB).
        if (token.size() + size > maxSize && state != State.START && state != State.RECOVERY) {
            token.reset();
            state = State.START;
            fail("JSON token size limit exceeded");
        }
    }

    private static boolean digit(final int b) {
        return b >= '0' && b <= '9';
    }

    private static boolean structural(final int b) {
        return b == '[' || b == ']' || b == '{' || b == '}' || b == ':' || b == ',';
    }

    private void start(final int b) {
        switch (b) {
            case '"' -> append(b, State.DQ);
            case '\'' -> append(b, State.SQ);
            case '0' -> append(b, State.ZERO);
            case '-' -> append(b, State.SIGN);
            case '{' -> single(b, Kind.LCURLY);
            case '}' -> single(b, Kind.RCURLY);
            case '[' -> single(b, Kind.LSQUARE);
            case ']' -> single(b, Kind.RSQUARE);
            case ',' -> single(b, Kind.COMMA);
            case ':' -> single(b, Kind.COLON);
            case ' ', '\t', '\r', '\n' -> {
            }
            default -> {
                if (b >= '1' && b <= '9') {
                    append(b, State.DIGITS);
                } else if (b >= 'a' && b <= 'z') {
                    append(b, State.KEYWORD);
                } else {
                    error(b);
                }
            }
        }
    }

    private void append(final int b, final State next) {
        token.write(b);
        state = next;
    }

    private void single(final int b, final Kind kind) {
        token.write(b);
        emit(kind);
    }

    /** A lexical error: the token so far with the offending byte is "stray"; then skip to a point to resume. */
    private void error(final int b) {
        token.write(b);
        final String text = new String(token.toByteArray(), StandardCharsets.UTF_8);
        token.reset();
        state = State.RECOVERY;
        fail("JSON parse error, stray '" + text + "'");
    }

    private void fail(final String message) {
        reset();
        out.accept(new Message(null, message));
    }

    private void reset() {
        braces = 0;
        brackets = 0;
        tokens.clear();
        size = 0;
    }

    /** The streamer: collect tokens until the brackets balance, then parse (json-streamer.c). */
    private void emit(final Kind kind) {
        final byte[] text = token.toByteArray();
        token.reset();
        state = State.START;
        switch (kind) {
            case LCURLY -> braces++;
            case RCURLY -> braces--;
            case LSQUARE -> brackets++;
            case RSQUARE -> brackets--;
            default -> {
            }
        }
        if (size + text.length + 1 > maxSize) {
            fail("JSON token size limit exceeded");
            return;
        }
        if (tokens.size() + 1 > MAX_TOKEN_COUNT) {
            fail("JSON token count limit exceeded");
            return;
        }
        if (braces + brackets > MAX_NESTING) {
            fail("JSON nesting depth limit exceeded");
            return;
        }
        tokens.add(new Token(kind, text));
        size += text.length;
        if ((braces > 0 || brackets > 0) && braces >= 0 && brackets >= 0) {
            return;
        }
        final Parser parser = new Parser(new ArrayList<>(tokens));
        reset();
        final JsonNode value = parser.value();
        out.accept(parser.error != null ? new Message(null, parser.error) : new Message(value, null));
    }

    /** The recursive-descent parser over one message's tokens (json-parser.c); the first error wins. */
    private static final class Parser {
        private final List<Token> tokens;
        private int next;
        String error;

        Parser(final List<Token> tokens) {
            this.tokens = tokens;
        }

        private Token peek() {
            return next < tokens.size() ? tokens.get(next) : null;
        }

        private Token pop() {
            return next < tokens.size() ? tokens.get(next++) : null;
        }

        private void fail(final String message) {
            if (error == null) {
                error = "JSON parse error, " + message;
            }
        }

        JsonNode value() {
            final Token t = peek();
            if (t == null) {
                fail("premature EOI");
                return null;
            }
            return switch (t.kind) {
                case LCURLY -> object();
                case LSQUARE -> array();
                case INTEGER, FLOAT -> number(pop());
                case STRING -> string(pop());
                case KEYWORD -> keyword(pop());
                default -> {
                    fail("expecting value");
                    yield null;
                }
            };
        }

        private JsonNode object() {
            pop();
            final ObjectNode object = NODES.objectNode();
            final Token peek = peek();
            if (peek == null) {
                fail("premature EOI");
                return null;
            }
            if (peek.kind == Kind.RCURLY) {
                pop();
                return object;
            }
            if (!pair(object)) {
                return null;
            }
            Token t = pop();
            while (true) {
                if (t == null) {
                    fail("premature EOI");
                    return null;
                }
                if (t.kind == Kind.RCURLY) {
                    return object;
                }
                if (t.kind != Kind.COMMA) {
                    fail("expected separator in dict");
                    return null;
                }
                if (!pair(object)) {
                    return null;
                }
                t = pop();
            }
        }

        private boolean pair(final ObjectNode object) {
            if (peek() == null) {
                fail("premature EOI");
                return false;
            }
            final JsonNode key = value();
            if (key == null || !key.isTextual()) {
                fail("key is not a string in object");
                return false;
            }
            final Token colon = pop();
            if (colon == null) {
                fail("premature EOI");
                return false;
            }
            if (colon.kind != Kind.COLON) {
                fail("missing : in object pair");
                return false;
            }
            final JsonNode value = value();
            if (value == null) {
                fail("Missing value in dict");
                return false;
            }
            if (object.has(key.asText())) {
                fail("duplicate key");
                return false;
            }
            object.set(key.asText(), value);
            return true;
        }

        private JsonNode array() {
            pop();
            final ArrayNode array = NODES.arrayNode();
            final Token peek = peek();
            if (peek == null) {
                fail("premature EOI");
                return null;
            }
            if (peek.kind == Kind.RSQUARE) {
                pop();
                return array;
            }
            JsonNode element = value();
            if (element == null) {
                fail("expecting value");
                return null;
            }
            array.add(element);
            Token t = pop();
            while (true) {
                if (t == null) {
                    fail("premature EOI");
                    return null;
                }
                if (t.kind == Kind.RSQUARE) {
                    return array;
                }
                if (t.kind != Kind.COMMA) {
                    fail("expected separator in list");
                    return null;
                }
                element = value();
                if (element == null) {
                    fail("expecting value");
                    return null;
                }
                array.add(element);
                t = pop();
            }
        }

        private JsonNode keyword(final Token t) {
            final String word = new String(t.text, StandardCharsets.US_ASCII);
            switch (word) {
                case "true":
                    return NODES.booleanNode(true);
                case "false":
                    return NODES.booleanNode(false);
                case "null":
                    return NODES.nullNode();
                default:
                    fail("invalid keyword '" + word + "'");
                    return null;
            }
        }

        /** int64 if it fits, else uint64, else a double (QEMU's QNum). */
        private static JsonNode number(final Token t) {
            final String text = new String(t.text, StandardCharsets.US_ASCII);
            if (t.kind == Kind.INTEGER) {
                final BigInteger n = new BigInteger(text);
                if (n.bitLength() < 64) {
                    return NODES.numberNode(n.longValue());
                }
                if (n.signum() > 0 && n.bitLength() == 64) {
                    return NODES.numberNode(n);
                }
            }
            return NODES.numberNode(Double.parseDouble(text));
        }

        private JsonNode string(final Token t) {
            final byte[] s = t.text;
            final byte quote = s[0];
            final StringBuilder sb = new StringBuilder();
            int i = 1;
            while (s[i] != quote) {
                if (s[i] == '\\') {
                    final int begin = i;
                    i++;
                    final byte e = s[i++];
                    switch (e) {
                        case '"', '\'', '\\', '/' -> sb.append((char) e);
                        case 'b' -> sb.append('\b');
                        case 'f' -> sb.append('\f');
                        case 'n' -> sb.append('\n');
                        case 'r' -> sb.append('\r');
                        case 't' -> sb.append('\t');
                        case 'u' -> {
                            int cp = hex4(s, i);
                            i += 4;
                            if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < s.length && s[i] == '\\' && s[i + 1] == 'u') {
                                final int low = hex4(s, i + 2);
                                if (low >= 0xDC00 && low <= 0xDFFF) {
                                    cp = 0x10000 + ((cp & 0x3FF) << 10) + (low & 0x3FF);
                                    i += 6;
                                } else {
                                    cp = -1;
                                }
                            }
                            if (!validCodePoint(cp)) {
                                // QEMU prints the escape as written, up to where it read (the token's end at most).
                                fail(new String(s, begin, Math.min(i, s.length) - begin, StandardCharsets.UTF_8)
                                    + " is not a valid Unicode character");
                                return null;
                            }
                            sb.appendCodePoint(cp);
                        }
                        default -> {
                            fail("invalid escape sequence in string");
                            return null;
                        }
                    }
                } else {
                    final int[] next = new int[1];
                    final int cp = codePoint(s, i, next);
                    if (cp < 0) {
                        fail("invalid UTF-8 sequence in string");
                        return null;
                    }
                    sb.appendCodePoint(cp);
                    i = next[0];
                }
            }
            return NODES.textNode(sb.toString());
        }

        private static int hex4(final byte[] s, final int from) {
            int cp = 0;
            for (int k = 0; k < 4; k++) {
                if (from + k >= s.length) {
                    return -1;
                }
                final int d = Character.digit(s[from + k], 16);
                if (d < 0 || s[from + k] > 'f') {
                    return -1;
                }
                cp = cp << 4 | d;
            }
            return cp;
        }

        /** QEMU's idea of a character: no surrogates, no noncharacters, at most U+10FFFF. */
        private static boolean validCodePoint(final int cp) {
            return cp >= 0 && cp <= 0x10FFFF && (cp & 0xFFFFF800) != 0xD800
                && !(cp >= 0xFDD0 && cp <= 0xFDEF) && (cp & 0xFFFE) != 0xFFFE;
        }

        private static final int[] MIN_CP = {0x80, 0x800, 0x10000, 0x200000, 0x4000000};

        /** One modified-UTF-8 character at {@code from} (overlong forms refused except C0 80); -1 if invalid. */
        private static int codePoint(final byte[] s, final int from, final int[] end) {
            int p = from;
            final int first = s[p++] & 0xFF;
            int cp;
            if (first < 0x80) {
                cp = first;
            } else if (first >= 0xFE || (first & 0x40) == 0) {
                cp = -1;
            } else {
                int len = 0;
                int mask = 0x80;
                while ((first & mask) != 0) {
                    len++;
                    mask >>= 1;
                }
                cp = first & (mask - 1);
                for (int k = 1; k < len; k++) {
                    final int b = p < s.length ? s[p] & 0xFF : 0;
                    if ((b & 0xC0) != 0x80) {
                        end[0] = p;
                        return -1;
                    }
                    p++;
                    cp = cp << 6 | b & 0x3F;
                }
                if (!validCodePoint(cp) || cp < MIN_CP[len - 2] && !(cp == 0 && len == 2)) {
                    cp = -1;
                }
            }
            end[0] = p;
            return cp;
        }
    }

    // ---- output, as QEMU writes it (qobject/qjson.c) ----

    /** One value in QEMU's compact form: {@code {"a": 1, "b": [1, 2]}}, non-ASCII as {@code \\uXXXX}. */
    public static String write(final JsonNode node) {
        final StringBuilder sb = new StringBuilder();
        write(node, sb);
        return sb.toString();
    }

    private static void write(final JsonNode node, final StringBuilder sb) {
        if (node == null || node.isNull() || node.isMissingNode()) {
            sb.append("null");
        } else if (node.isObject()) {
            sb.append('{');
            // QEMU writes an object's members in its QDict order, not in the order they were added.
            final List<String> keys = new ArrayList<>();
            node.fieldNames().forEachRemaining(keys::add);
            boolean first = true;
            for (final String key : QmpOrder.qdict(keys)) {
                if (!first) {
                    sb.append(", ");
                }
                first = false;
                writeString(key, sb);
                sb.append(": ");
                write(node.get(key), sb);
            }
            sb.append('}');
        } else if (node.isArray()) {
            sb.append('[');
            for (int i = 0; i < node.size(); i++) {
                if (i > 0) {
                    sb.append(", ");
                }
                write(node.get(i), sb);
            }
            sb.append(']');
        } else if (node.isTextual()) {
            writeString(node.asText(), sb);
        } else if (node.isBoolean()) {
            sb.append(node.asBoolean());
        } else if (node.isIntegralNumber()) {
            sb.append(node.bigIntegerValue());
        } else if (node.isNumber()) {
            sb.append(formatDouble(node.doubleValue()));
        } else {
            writeString(node.asText(), sb);
        }
    }

    private static void writeString(final String s, final StringBuilder sb) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            final char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20 || c > 0x7E) {
                        sb.append(String.format("\\u%04X", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /** C's {@code %.17g}, which QEMU uses for doubles ({@code inf}, {@code nan} included, as QEMU writes them). */
    static String formatDouble(final double d) {
        if (Double.isNaN(d)) {
            return "nan";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "inf" : "-inf";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0" : "0";
        }
        final BigDecimal rounded = new BigDecimal(d).round(new MathContext(17));
        final int exponent = rounded.precision() - rounded.scale() - 1;
        if (exponent < -4 || exponent >= 17) {
            final BigDecimal mantissa = rounded.movePointLeft(exponent).stripTrailingZeros();
            String m = mantissa.toPlainString();
            return m + "e" + (exponent < 0 ? "-" : "+") + (Math.abs(exponent) < 10 ? "0" : "") + Math.abs(exponent);
        }
        final String plain = rounded.stripTrailingZeros().toPlainString();
        return plain;
    }
}
