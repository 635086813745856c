#!/usr/bin/env bash
# Installs modseal for users: the static binary and the dracut module in their
# standard places, the example dracut config and the README as documentation.
# It does not enable the module in dracut (that needs an enrollment first:
# see docs/dracut-module.md).
#
#   scripts/install.sh [--binary FILE]     (DESTDIR=… for staged installs)
#
# Default binary: the static build, target/x86_64-unknown-linux-musl/release/modseal.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$repo/target/x86_64-unknown-linux-musl/release/modseal
case ${1:-} in
    --binary) binary=$2 ;;
    "") ;;
    *) echo "usage: $0 [--binary FILE]" >&2; exit 64 ;;
esac
dest=${DESTDIR:-}
[ -x "$binary" ] || {
    echo "install: $binary: not built; run: cargo build --release --target x86_64-unknown-linux-musl" >&2
    exit 1
}
# The initramfs has no C library of the machine's: only a static binary works there.
if file -b "$binary" | grep -q 'dynamically linked'; then
    echo "install: $binary is dynamically linked; the initramfs needs the static musl build" >&2
    exit 1
fi

install -D -m 0755 "$binary" "$dest/usr/bin/modseal"
moddir=$dest/usr/lib/dracut/modules.d/90modseal
install -d "$moddir"
for f in "$repo"/dracut-module/90modseal/*; do
    case $f in
        *.sh) install -m 0755 "$f" "$moddir/" ;;
        *) install -m 0644 "$f" "$moddir/" ;;
    esac
done
install -D -m 0644 "$repo/dracut-module/modseal.conf" "$dest/usr/share/doc/modseal/dracut.conf.d-modseal.conf"
# Checks each new kernel's initramfs after a kernel update (does nothing
# until /etc/modseal/modseal.conf exists).
install -D -m 0755 "$repo/dracut-module/kernel/zz-modseal" "$dest/etc/kernel/postinst.d/zz-modseal"
install -D -m 0644 "$repo/README.md" "$dest/usr/share/doc/modseal/README.md"
install -d "$dest/usr/share/doc/modseal/docs"
install -m 0644 "$repo"/docs/*.md "$dest/usr/share/doc/modseal/docs/"
install -d -m 0755 "$dest/etc/modseal"
echo "installed: $dest/usr/bin/modseal, $moddir, $dest/usr/share/doc/modseal/"
echo "next: modseal enroll …, then copy dracut.conf.d-modseal.conf to /etc/dracut.conf.d/modseal.conf and rebuild the initramfs"
