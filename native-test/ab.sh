#!/usr/bin/env bash
# A/B of two commits' bridge jars under the same benchmark: builds each commit's jar in a temporary worktree, then
# runs BenchMain (this tree's frontend and harness, as bench.sh does) against them in interleaved pairs (old-new,
# new-old, ...), and prints per measurement the median and range of each jar's ratios to the bare baseline and the
# median of its bridge figures. Needs git and python3.
#   usage: native-test/ab.sh OLD_REV NEW_REV [PAIRS] [BenchMain options, e.g. --ports 8 -- --bench echo]
#   e.g.:  native-test/ab.sh 63e04c3 HEAD 5 --ports 8
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    sed -n '2,7s/^# \{0,1\}//p' "$0"
    exit 2
fi
old=$(git rev-parse --short "$1")
new=$(git rev-parse --short "$2")
shift 2
pairs=5
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    pairs=$1
    shift
fi
work=native-test/target/ab
git worktree prune
rm -rf "$work" && mkdir -p "$work"
trap 'git worktree remove --force "$work/src-$old" 2>/dev/null; git worktree remove --force "$work/src-$new" 2>/dev/null; git worktree prune' EXIT
for rev in "$old" "$new"; do
    src="$work/src-$rev"
    git worktree add -q --detach "$src" "$rev"
    (cd "$src" && mvn -B -q -DskipTests -Dfuzz.skip=true -Djacoco.skip=true package)
    cp "$src/bridge-core/target/vhost-serial-bridge.jar" "$work/$rev.jar"
    git worktree remove --force "$src"
done
mvn -B -q -DskipTests package dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile=target/bench.classpath
run() { # run JAR OUTDIR
    java -Dbridge.jar="$1" -Dnative.dir=native-test/target/native \
        -cp "native-test/target/test-classes:$(cat native-test/target/bench.classpath)" \
        org.vsbridge.nativetest.bench.BenchMain --runs 3 --out "$2" "${@:3}" > "$2.log" 2>&1
}
for i in $(seq 1 "$pairs"); do
    if (( i % 2 )); then order="A B"; else order="B A"; fi
    for side in $order; do
        jar=$work/$old.jar; [ "$side" = B ] && jar=$work/$new.jar
        echo "[ab] pair $i: $side ($( [ "$side" = A ] && echo "$old" || echo "$new"))"
        run "$jar" "$work/$side$i" "$@"
    done
done
python3 - "$work" "$old" "$new" <<'PY'
import glob, re, statistics as st, sys
work, old, new = sys.argv[1:]
rows = {}
for side in 'AB':
    for table in sorted(glob.glob(f'{work}/{side}*/table.md')):
        seen = set()
        for line in open(table):
            c = [x.strip() for x in line.split('|')]
            if len(c) < 8 or not re.match(r'^[\d.]+$', c[5] or 'x'):
                continue
            key = (c[1], c[2])
            while key in seen:
                key = (key[0], key[1] + "'")
            seen.add(key)
            if not re.match(r'^[\d.]+$', c[3].split()[0] if c[3] else 'x'):
                continue
            rows.setdefault(key, {}).setdefault(side, []).append((float(c[5]), float(c[3].split()[0])))
def ratio(v):
    r = [a for a, _ in v]
    return f'{st.median(r):.2f} ({min(r):.2f}-{max(r):.2f})'
print(f'| measurement | param | {old} ratio, median (min-max) | {new} ratio, median (min-max) | {old} bridge | {new} bridge |')
print('|---|---|---|---|---|---|')
for key, v in rows.items():
    if 'A' in v and 'B' in v:
        print(f"| {key[0]} | {key[1]} | {ratio(v['A'])} | {ratio(v['B'])} | "
              f"{st.median(b for _, b in v['A']):g} | {st.median(b for _, b in v['B']):g} |")
if not rows:
    sys.exit(f'no table was parsed: see the logs in {work}')
print(f"pairs: {len(next(iter(rows.values())).get('A', []))}; runs in {work}")
PY
