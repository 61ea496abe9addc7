package org.vsbridge.chardev;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The {@code -chardev} option parser (QemuOpts syntax) on arbitrary strings: it either
 * builds options or refuses with a {@link ChardevException} and a message; any other exception is a bug.
 */
class ChardevCliFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void parse(final FuzzedDataProvider data) {
        final String defaultId = data.consumeBoolean() ? data.consumeString(8) : null;
        final String spec = data.consumeRemainingAsString();
        try {
            assertNotNull(ChardevCli.parse(spec, defaultId));
        } catch (final ChardevException e) {
            assertNotNull(e.getMessage(), "a refusal says why");
        }
        try {
            for (final ChardevOptions o : ChardevCli.parseAll(spec, defaultId)) {
                assertNotNull(o.backend());
            }
        } catch (final ChardevException e) {
            assertNotNull(e.getMessage());
        }
    }
}
