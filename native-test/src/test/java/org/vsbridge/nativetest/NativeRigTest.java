package org.vsbridge.nativetest;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** A test class whose every test runs against a fresh standard {@link NativeRig} in its own directory. */
abstract class NativeRigTest {

    @TempDir
    Path dir;
    NativeRig rig;

    /** More bridge options for every test of the class (none by default). */
    List<String> bridgeOptions() {
        return List.of();
    }

    @BeforeEach
    void startRig() throws Exception {
        rig = NativeRig.start(dir, bridgeOptions());
    }

    @AfterEach
    void stopRig() {
        if (rig != null) {
            rig.close();
        }
    }
}
