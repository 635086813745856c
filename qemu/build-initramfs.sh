#!/usr/bin/env bash
# Builds an initramfs with the machine's real dracut and this repository's
# dracut module, the way a user's `dracut` run would include it, but without
# touching the machine: dracut runs from a private copy of /usr/lib/dracut with
# 90modseal added (no dracut flag adds a module directory), and with
# `--conf FILE --confdir EMPTY` so the machine's own dracut config stays out.
#
#   qemu/build-initramfs.sh --kind systemd|classic --kver KVER --kmoddir DIR \
#       --confdir MODSEAL_ETC --out IMG [--binary MODSEAL] [--no-build-check] \
#       [--dracut-module DIR]… [--with "DRACUT_MODULES"] [--without-modseal]
#       [--kernel-image VMLINUZ]
#
# MODSEAL_ETC holds modseal.conf whose trust= and sealed= name the bundle and
# the enrollment (absolute paths, installed at the same paths in the image).
# --dracut-module adds another dracut module directory (NNname) to the build;
# --with adds dracut modules by name (e.g. kernel-modules: every storage
# driver, some 750 kernel modules, for timing a bigger image).
# --without-modseal leaves the modseal module out: an image as an attacker
# who skips the verification would build it.
# --kernel-image names the kernel's image for a trust bundle with
# kernel-signer CAs (modseal_kernel_image; by default the dracut module
# looks next to the module tree).
# The image is uncompressed: it boots faster under TCG.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { sed -n '8,11p' "$0" >&2; exit 64; }

kind="" kver="" kmoddir="" confdir="" out="" check=yes with="" modseal=modseal kimage=
binary=$repo/target/x86_64-unknown-linux-musl/release/modseal
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --kind) kind=$2; shift 2 ;;
        --kver) kver=$2; shift 2 ;;
        --kmoddir) kmoddir=$2; shift 2 ;;
        --confdir) confdir=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        --no-build-check) check=no; shift ;;
        --dracut-module) extra+=("$2"); shift 2 ;;
        --with) with=$2; shift 2 ;;
        --without-modseal) modseal=""; shift ;;
        --kernel-image) kimage=$2; shift 2 ;;
        *) usage ;;
    esac
done
if [ -z "$kind" ] || [ -z "$kver" ] || [ -z "$kmoddir" ] || [ -z "$confdir" ] || [ -z "$out" ]; then usage; fi
command -v dracut >/dev/null || { echo "build-initramfs: dracut not installed (apt-get install dracut-core)" >&2; exit 1; }
[ -d /usr/lib/dracut/modules.d ] || { echo "build-initramfs: /usr/lib/dracut/modules.d missing" >&2; exit 1; }
[ -x "$binary" ] || { echo "build-initramfs: $binary: not built (cargo build --release --target x86_64-unknown-linux-musl)" >&2; exit 1; }

# The dracut modules of each kind: the root is ext4 on virtio-blk.
case $kind in
    systemd) modules="systemd-initrd dracut-systemd rootfs-block $modseal" omit="" ;;
    classic) modules="base rootfs-block udev-rules $modseal" omit="systemd systemd-initrd dracut-systemd" ;;
    *) usage ;;
esac
modules+=${with:+ $with}

work=$(mktemp -d "${TMPDIR:-/tmp}/modseal-dracut.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -a /usr/lib/dracut "$work/base"
cp -a "$repo/dracut-module/90modseal" "$work/base/modules.d/90modseal"
for m in "${extra[@]}"; do
    cp -a "$m" "$work/base/modules.d/${m##*/}"
    modules+=" $(basename "$m" | sed 's/^[0-9][0-9]//')"
done
mkdir "$work/confdir"
cat >"$work/dracut.conf" <<EOF
modseal_binary="$binary"
modseal_confdir="$confdir"
modseal_build_check="$check"
modseal_kernel_image="$kimage"
EOF

mkdir -p "$(dirname "$out")"
# dracut writes $out only at the end, so a failed build leaves no image.
dracutbasedir=$work/base dracut --conf "$work/dracut.conf" --confdir "$work/confdir" \
    --force --no-hostonly --no-compress --no-early-microcode \
    --kver "$kver" --kmoddir "$kmoddir" \
    -m "$modules" ${omit:+--omit "$omit"} \
    --add-drivers "virtio_blk virtio_pci ext4" \
    "$out.tmp"
mv "$out.tmp" "$out"
