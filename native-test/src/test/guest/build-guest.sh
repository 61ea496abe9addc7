#!/bin/bash
# Builds the Linux guest of the real-guest suite from Debian's packages:
#   OUTDIR/vmlinuz            the kernel of linux-image-amd64's current dependency
#   OUTDIR/initramfs.cpio.gz  busybox-static, /init, the vsbh helper and the virtio console modules
# A no-op when OUTDIR already holds a guest built from the same init, helper and script
# (OUTDIR/stamp). The downloaded .deb files stay in OUTDIR/debs, so a changed /init only
# repacks. Needs: apt-get, dpkg-deb, gcc with a static libc, gzip, flock.
set -euo pipefail

OUT=${1:?usage: build-guest.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
MODULES="virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.lock"
flock 9

want=$(cat "$0" "$HERE/init" "$HERE/vsbh.c" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$want" ] \
    && [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.cpio.gz" ]; then
    exit 0
fi

# Fetches package $1 into debs/ unless a .deb of it is already there.
fetch() {
    if ! ls "$OUT/debs/$1"_*.deb >/dev/null 2>&1; then
        # apt-get's progress goes to stderr: stdout of this function is the file name.
        (cd "$OUT/debs" && apt-get download "$1") >&2 \
            || (apt-get update && cd "$OUT/debs" && apt-get download "$1") >&2
    fi
    ls "$OUT/debs/$1"_*.deb | head -n 1
}

mkdir -p "$OUT/debs"
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
if [ -z "$kpkg" ]; then
    apt-get update
    kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1)
fi
[ -n "$kpkg" ] || { echo "build-guest: cannot resolve linux-image-amd64's kernel package" >&2; exit 1; }
kdeb=$(fetch "$kpkg")
bdeb=$(fetch busybox-static)

work="$OUT/work"
rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox" "$work/root"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"

kver=$(ls "$work/kernel/lib/modules" | head -n 1)
moddir="$work/kernel/lib/modules/$kver"
cp "$work/kernel/boot/vmlinuz-$kver" "$OUT/vmlinuz.new"

root="$work/root"
mkdir -p "$root/bin" "$root/sbin" "$root/dev" "$root/proc" "$root/sys" "$root/tmp" "$root/modules"
bb="$work/busybox/bin/busybox"
cp "$bb" "$root/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$HERE/init" "$root/init"
gcc -O2 -static -Wall -o "$root/bin/vsbh" "$HERE/vsbh.c"

# Finds the module file of $1 (names use '_' or '-' interchangeably).
module_file() {
    local alt=${1//_/-}
    find "$moddir/kernel" \( -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" \
        -o -name "$alt.ko" -o -name "$alt.ko.xz" -o -name "$alt.ko.zst" -o -name "$alt.ko.gz" \) | head -n 1
}

# Copies module $1 as plain .ko after its dependencies, appending it to modules/order.
declare -A placed=()
place() {
    local name=$1 src dst deps dep
    [ -n "${placed[$name]:-}" ] && return 0
    placed[$name]=1
    if grep -qE "/$name\.ko|/${name//_/-}\.ko" "$moddir/modules.builtin" 2>/dev/null; then
        return 0
    fi
    src=$(module_file "$name")
    [ -n "$src" ] || { echo "build-guest: module $name not found in $kver" >&2; exit 1; }
    dst="$root/modules/$name.ko"
    case "$src" in
        *.xz) xz -dc "$src" >"$dst" ;;
        *.zst) zstd -qdc "$src" >"$dst" ;;
        *.gz) gzip -dc "$src" >"$dst" ;;
        *) cp "$src" "$dst" ;;
    esac
    deps=$(tr '\0' '\n' <"$dst" | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' ')
    for dep in $deps; do
        place "${dep//-/_}"
    done
    echo "$name" >>"$root/modules/order"
}
: >"$root/modules/order"
for m in $MODULES; do
    place "$m"
done

(cd "$root" && find . | LC_ALL=C sort | "$bb" cpio -o -H newc 2>/dev/null) | gzip -9 >"$OUT/initramfs.cpio.gz.new"
mv "$OUT/vmlinuz.new" "$OUT/vmlinuz"
mv "$OUT/initramfs.cpio.gz.new" "$OUT/initramfs.cpio.gz"
echo "$kver" >"$OUT/kernel-version"
order=$(tr '\n' ' ' <"$root/modules/order")
rm -rf "$work"
echo "$want" >"$OUT/stamp"
echo "build-guest: kernel $kver, modules in load order: $order" >&2
