#!/bin/sh
# Builds what a systemd host installs without a JDK:
#   target/vhost-serial-bridge_<version>_<arch>.deb      (dpkg -i it)
#   target/vhost-serial-bridge-<version>-linux-<arch>.tar.gz   (the same tree, to unpack at /)
# Both hold a jlink'ed Java runtime with only the modules the jar needs (found with jdeps), the
# self-contained jar, the launcher, the systemd units, the vhost-user backend descriptor for
# /usr/share/qemu/vhost-user/ and an example configuration.
#
# Usage (from the repository root, after `mvn -B -q package -DskipTests`):
#   packaging/build.sh
# Needs: a JDK 17+ (jdeps, jlink) and, for the .deb, dpkg-deb. Not part of `mvn verify`.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
jar="$root/bridge-core/target/vhost-serial-bridge.jar"
out="$root/packaging/target"
[ -f "$jar" ] || { echo "build.sh: $jar missing; run: mvn -B -q package -DskipTests" >&2; exit 1; }

jdk_bin=$(dirname "$(readlink -f "$(command -v jlink)")")
pom_version=$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$root/pom.xml" | sed -n 1p)
[ -n "$pom_version" ] || pom_version=0.0.0
deb_version=$(echo "$pom_version" | sed 's/-/~/')
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)

rm -rf "$out"
stage="$out/root"
lib="$stage/usr/lib/vhost-serial-bridge"
mkdir -p "$lib/bin" "$lib/lib" "$stage/lib/systemd/system" "$stage/usr/share/qemu/vhost-user" \
    "$stage/usr/share/doc/vhost-serial-bridge" "$stage/etc/vhost-serial-bridge" "$stage/usr/bin"

# The runtime's modules are those of packaging/jlink-modules. jdeps must find nothing else in the jar: a module it
# names that the file neither keeps nor leaves out (a "-" line, with the reason) stops the build.
modules_file="$root/packaging/jlink-modules"
keep=$(grep -v '^[[:space:]]*#' "$modules_file" | awk 'NF && $1 !~ /^-/ {print $1}')
left_out=$(grep -v '^[[:space:]]*#' "$modules_file" | awk '$1 ~ /^-/ {print substr($1, 2)}')
referenced=$("$jdk_bin/jdeps" --multi-release 17 --ignore-missing-deps --list-deps "$jar" | awk '{sub("/.*", "", $1); print $1}' | sort -u)
for m in $referenced; do
    if ! printf '%s\n' $keep $left_out | grep -qx "$m"; then
        echo "build.sh: jdeps finds module $m in the jar; add it to $modules_file (kept, or left out with a reason)" >&2
        exit 1
    fi
done
modules=$(printf '%s\n' $keep | paste -sd, -)
echo "jlink modules: $modules (left out: $(printf '%s\n' $left_out | paste -sd, -))"
"$jdk_bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --compress=2 --generate-cds-archive --output "$lib/runtime"
# The JDK's native code carries symbol tables; strip them as dh_strip would (dynamic symbols stay, JNI needs them).
find "$lib/runtime" -type f \( -name '*.so' -o -path '*/bin/*' -o -name jexec -o -name jspawnhelper \) | while read -r f; do
    if head -c 4 "$f" | grep -q 'ELF'; then
        strip --remove-section=.comment --remove-section=.note --strip-unneeded "$f"
    fi
done
# The launcher caps the heap at 64 MiB, so compressed oops are always on: the CDS archive for a JVM without them
# is never mapped (a heap set above 32 GiB through VSB_JAVA_OPTS just starts without the default archive).
rm -f "$lib/runtime/lib/server/classes_nocoops.jsa"
# jlink writes its legal notices and the CDS archive read-only; a package ships plain 0644 files.
find "$lib/runtime" -type f -perm 0444 -exec chmod 0644 {} +
# The bundled runtime must start with its CDS archive (a stripped libjvm.so still matches it).
"$lib/runtime/bin/java" -Xshare:on -version >/dev/null 2>&1 || { echo "build.sh: the runtime's CDS archive is unusable" >&2; exit 1; }

cp "$jar" "$lib/lib/vhost-serial-bridge.jar"
install -m 0755 "$root/packaging/bin/vhost-serial-bridge" "$lib/bin/vhost-serial-bridge"
ln -s ../lib/vhost-serial-bridge/bin/vhost-serial-bridge "$stage/usr/bin/vhost-serial-bridge"
install -m 0644 "$root/systemd/vhost-serial-bridge@.service" "$root/systemd/vhost-serial-bridge@.socket" \
    "$root/systemd/vhost-serial-bridge-qmp@.socket" "$stage/lib/systemd/system/"
install -m 0644 "$root/packaging/qemu/50-vhost-serial-bridge.json" "$stage/usr/share/qemu/vhost-user/"
doc="$stage/usr/share/doc/vhost-serial-bridge"
install -m 0644 "$root/README.md" "$doc/README.md"
# The README links into docs/ (and docs/performance.md to the plots in docs/bench/): the same tree beside it.
install -d "$doc/docs/bench/soak"
install -m 0644 "$root"/docs/*.md "$doc/docs/"
install -m 0644 "$root"/docs/bench/*.md "$root"/docs/bench/*.png "$root"/docs/bench/*.csv "$doc/docs/bench/"
install -m 0644 "$root"/docs/bench/soak/*.txt "$doc/docs/bench/soak/"
install -m 0644 "$root/packaging/vm1.json" "$doc/vm1.json.example"
install -m 0644 "$root/packaging/debian/copyright" "$doc/copyright"
# changelog.gz (lintian: a native package's changelog): one entry for this build, dated by the last commit so that
# two builds of one commit are the same.
when=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
commit=$(git -C "$root" log -1 --format=%h 2>/dev/null || echo unknown)
maintainer=${DEB_MAINTAINER:-"vhost-serial-bridge developers <vhost-serial-bridge@maintainer.invalid>"}
{
    echo "vhost-serial-bridge ($deb_version) unstable; urgency=medium"
    echo
    echo "  * Built from commit $commit; the changes are in the project's git history."
    echo
    echo " -- $maintainer  $(LC_ALL=C date -u -d "@$when" -R)"
} | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
mkdir -p "$stage/usr/share/lintian/overrides" "$stage/usr/share/man/man1"
install -m 0644 "$root/packaging/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/vhost-serial-bridge"
gzip -9n < "$root/packaging/man/vhost-serial-bridge.1" > "$stage/usr/share/man/man1/vhost-serial-bridge.1.gz"
chmod 0644 "$stage/usr/share/man/man1/vhost-serial-bridge.1.gz"

# Smoke test of the staged tree: the bundled runtime runs the jar.
"$lib/bin/vhost-serial-bridge" --print-capabilities | grep -q '"console"'
# The man page documents every option the packaged --help prints (ManPageTest checks the same in mvn test): each
# is the heading (.B or .BI after .TP) of an entry in the page.
documented=$(awk 'prev == ".TP" && /^\.BI? \\-\\-/ {print $2} {prev = $0}' "$root/packaging/man/vhost-serial-bridge.1" | sed 's/\\-/-/g')
for opt in $("$lib/bin/vhost-serial-bridge" --help | grep -o '^  --[a-z-]*' | tr -d ' '); do
    printf '%s\n' $documented | grep -qx -- "$opt" || {
        echo "build.sh: $opt (in --help) is not documented in packaging/man/vhost-serial-bridge.1" >&2
        exit 1
    }
done

mkdir -p "$out"
tar -C "$stage" --owner=0 --group=0 -czf "$out/vhost-serial-bridge-$pom_version-linux-$arch.tar.gz" .

if command -v dpkg-deb >/dev/null 2>&1; then
    mkdir -p "$stage/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    # The runtime's native code needs libc, libgcc, libstdc++ and zlib (libjvm.so, libjimage.so, libzip.so):
    # dpkg-shlibdeps (dpkg-dev) reads the versions from the ELF files; without it, the versions of Debian 12.
    depends="libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 5), zlib1g (>= 1:1.2.2)"
    if command -v dpkg-shlibdeps >/dev/null 2>&1; then
        shl=$(mktemp -d)
        mkdir "$shl/debian"
        printf 'Source: vhost-serial-bridge\n\nPackage: vhost-serial-bridge\nArchitecture: any\n' > "$shl/debian/control"
        found=$(cd "$shl" && find "$lib/runtime" -type f \( -name '*.so' -o -path '*/bin/*' -o -name jexec \
            -o -name jspawnhelper \) -exec dpkg-shlibdeps -O -l"$lib/runtime/lib" -l"$lib/runtime/lib/server" {} + \
            2>/dev/null | sed -n 's/^shlibs:Depends=//p')
        rm -rf "$shl"
        [ -n "$found" ] && depends=$found
    fi
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: vhost-serial-bridge
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $depends, systemd
Section: admin
Priority: optional
Description: vhost-user virtio-console device with QEMU-style chardevs
 The device half of a virtio-console (multiport virtio-serial) device behind
 the vhost-user protocol: QEMU (vhost-user-test-device-pci, virtio-id=3) or
 another frontend owns the guest; this daemon wires its ports to sockets,
 files and ring buffers and serves QMP. Ships its own Java runtime.
CONTROL
    cat > "$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTINST
    cat > "$stage/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
POSTRM
    chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/postrm"
    # md5sums of every shipped file, for dpkg --verify and debsums.
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) \
        > "$stage/DEBIAN/md5sums"
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/vhost-serial-bridge_${deb_version}_$arch.deb" >/dev/null
    rm -rf "$stage/DEBIAN"
fi
ls -l "$out"/*.tar.gz "$out"/*.deb 2>/dev/null
