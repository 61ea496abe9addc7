package org.vsbridge.core.config;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.vsbridge.core.cli.UsageException;

/**
 * The configuration-file loader on arbitrary text: a model or a {@link UsageException} naming the file (and the
 * position or key); anything else escaping is a bug. The port plan check runs on what loads.
 */
class ConfigFileFuzzTest {

    @FuzzTest(maxDuration = "60s")
    void load(final FuzzedDataProvider data) {
        final boolean inherited = data.consumeBoolean();
        final String text = data.consumeRemainingAsString();
        try {
            final ConfigFile.Settings settings = ConfigFile.parse("fuzz.json", text);
            assertNotNull(settings.config());
            ConfigFile.check(settings.config(), inherited);
        } catch (final UsageException e) {
            assertNotNull(e.getMessage(), "a refusal says why");
        }
    }
}
