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

# The modules the jar needs; jdk.unsupported (sun.misc.Signal, Unsafe) is named explicitly in case a
# future jdeps stops seeing it through the shaded libraries.
modules=$("$jdk_bin/jdeps" --multi-release 17 --ignore-missing-deps --print-module-deps "$jar")
case ",$modules," in *,jdk.unsupported,*) ;; *) modules="$modules,jdk.unsupported" ;; esac
echo "jlink modules: $modules"
"$jdk_bin/jlink" --add-modules "$modules" --strip-debug --no-header-files --no-man-pages \
    --compress=2 --generate-cds-archive --output "$lib/runtime"

cp "$jar" "$lib/lib/vhost-serial-bridge.jar"
install -m 0755 "$root/packaging/bin/vhost-serial-bridge" "$lib/bin/vhost-serial-bridge"
ln -s ../lib/vhost-serial-bridge/bin/vhost-serial-bridge "$stage/usr/bin/vhost-serial-bridge"
install -m 0644 "$root/systemd/vhost-serial-bridge@.service" "$root/systemd/vhost-serial-bridge@.socket" \
    "$root/systemd/vhost-serial-bridge-qmp@.socket" "$stage/lib/systemd/system/"
install -m 0644 "$root/packaging/qemu/50-vhost-serial-bridge.json" "$stage/usr/share/qemu/vhost-user/"
install -m 0644 "$root/README.md" "$stage/usr/share/doc/vhost-serial-bridge/README.md"
install -m 0644 "$root/packaging/vm1.json" "$stage/usr/share/doc/vhost-serial-bridge/vm1.json.example"

# Smoke test of the staged tree: the bundled runtime runs the jar.
"$lib/bin/vhost-serial-bridge" --print-capabilities | grep -q '"console"'

mkdir -p "$out"
tar -C "$stage" --owner=0 --group=0 -czf "$out/vhost-serial-bridge-$pom_version-linux-$arch.tar.gz" .

if command -v dpkg-deb >/dev/null 2>&1; then
    mkdir -p "$stage/DEBIAN"
    size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
    cat > "$stage/DEBIAN/control" <<CONTROL
Package: vhost-serial-bridge
Version: $deb_version
Architecture: $arch
Maintainer: vhost-serial-bridge developers <vhost-serial-bridge@localhost>
Installed-Size: $size
Depends: libc6 (>= 2.31), systemd
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
    dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/vhost-serial-bridge_${deb_version}_$arch.deb" >/dev/null
    rm -rf "$stage/DEBIAN"
fi
ls -l "$out"/*.tar.gz "$out"/*.deb 2>/dev/null
