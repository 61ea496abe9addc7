#!/usr/bin/env bash
# The benchmark in one command: builds the bridge jar and vsb-frontend, then runs BenchMain, which starts the
# bridge, runs vsb-frontend --bench against it and beside the raw baselines, prints the table, writes
# native-test/target/bench/bench.csv and draws the PNG plots. Options: ./native-test/bench.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
# One reactor build: the classpath of native-test's test classes is only resolvable beside its modules.
mvn -B -q -DskipTests package dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile=target/bench.classpath
exec java -Dbridge.jar=bridge-core/target/vhost-serial-bridge.jar -Dnative.dir=native-test/target/native \
    -cp "native-test/target/test-classes:$(cat native-test/target/bench.classpath)" \
    org.vsbridge.nativetest.bench.BenchMain "$@"
