package org.vsbridge.core.objects;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import org.vsbridge.chardev.Authorizer;

/**
 * {@code authz-list}: the first rule whose {@code match} fits the identity decides ({@code allow} or
 * {@code deny}); no match: the list's {@code policy} (default deny). A rule's {@code format} is {@code exact}
 * (default) or {@code glob} (fnmatch: {@code *}, {@code ?}, {@code [...]}).
 */
final class AuthzList implements Authorizer {

    private record Rule(String match, Pattern glob, boolean allow) {
        boolean matches(final String identity) {
            return glob == null ? match.equals(identity) : glob.matcher(identity).matches();
        }
    }

    private final boolean defaultAllow;
    private final List<Rule> rules;

    private AuthzList(final boolean defaultAllow, final List<Rule> rules) {
        this.defaultAllow = defaultAllow;
        this.rules = List.copyOf(rules);
    }

    static AuthzList of(final ObjectSpec spec) throws ObjectException {
        spec.onlyKnown("policy", "rules");
        final boolean defaultAllow = policy(spec.string("policy", "deny"), "policy");
        final List<Rule> rules = new ArrayList<>();
        final JsonNode list = spec.props().get("rules");
        if (list != null) {
            if (!list.isArray()) {
                throw new ObjectException("Invalid parameter type for 'rules', expected: array");
            }
            for (int i = 0; i < list.size(); i++) {
                final JsonNode r = list.get(i);
                final JsonNode match = r.get("match");
                if (match == null || !match.isTextual()) {
                    throw new ObjectException("Parameter 'rules[" + i + "].match' is missing");
                }
                final boolean allow = policy(r.has("policy") ? r.get("policy").asText() : "deny",
                    "rules[" + i + "].policy");
                final String format = r.has("format") ? r.get("format").asText() : "exact";
                final Pattern glob = switch (format) {
                    case "exact" -> null;
                    case "glob" -> glob(match.asText());
                    default -> throw new ObjectException(
                        "Parameter 'rules[" + i + "].format' does not accept value '" + format + "'");
                };
                rules.add(new Rule(match.asText(), glob, allow));
            }
        }
        return new AuthzList(defaultAllow, rules);
    }

    private static boolean policy(final String value, final String name) throws ObjectException {
        return switch (value) {
            case "allow" -> true;
            case "deny" -> false;
            default -> throw new ObjectException("Parameter '" + name + "' does not accept value '" + value + "'");
        };
    }

    /** fnmatch without flags, as a regex. */
    static Pattern glob(final String glob) {
        final StringBuilder re = new StringBuilder();
        for (int i = 0; i < glob.length(); i++) {
            final char c = glob.charAt(i);
            switch (c) {
                case '*' -> re.append(".*");
                case '?' -> re.append('.');
                case '[' -> {
                    final int close = glob.indexOf(']', i + 2);
                    if (close < 0) {
                        re.append("\\[");
                    } else {
                        String set = glob.substring(i + 1, close);
                        if (set.startsWith("!")) {
                            set = "^" + set.substring(1);
                        }
                        re.append('[').append(set.replace("\\", "\\\\")).append(']');
                        i = close;
                    }
                }
                default -> re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(re.toString(), Pattern.DOTALL);
    }

    @Override
    public boolean isAllowed(final String identity) {
        for (final Rule r : rules) {
            if (r.matches(identity)) {
                return r.allow();
            }
        }
        return defaultAllow;
    }
}
