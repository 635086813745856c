#!/usr/bin/env bash
# A module tree dracut can take with --kmoddir: a hard-linked copy of an
# unpacked Debian kernel's modules (dracut needs modules.dep, which the
# package does not ship) with depmod run over it. Optional changes make the
# trees of the failing boot scenarios; a changed file is copied first, so the
# cached kernel stays untouched.
#
#   qemu/kernel-tree.sh SUITE OUTDIR [--flip MODULE] [--resign MODULE KEY CERT]
#
# SUITE names .cache/kernels/SUITE/env (scripts/fetch-kernels.sh). MODULE is
# a path relative to the module directory, e.g. kernel/drivers/block/virtio_blk.ko
# (a .ko.xz is decompressed, changed and recompressed). --flip changes one
# byte of the module's description text; --resign signs it again with the
# kernel's own sign-file. Prints the module directory (OUTDIR/lib/modules/KVER).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() { echo "usage: $0 SUITE OUTDIR [--flip MODULE] [--resign MODULE KEY CERT]" >&2; exit 64; }
[ $# -ge 2 ] || usage
suite=$1 out=$2
shift 2
env_file=${MODSEAL_KERNELS:-$repo/.cache/kernels}/$suite/env
[ -r "$env_file" ] || { echo "kernel-tree: $env_file missing: run scripts/fetch-kernels.sh $suite" >&2; exit 1; }
# shellcheck disable=SC1090
. "$env_file"
# 6.x packages keep System.map next to the image in boot/; Debian's 7.x
# packaging (linux-base-KVER) keeps it in the module directory.
sysmap=""
for m in "$(dirname "$VMLINUZ")/System.map-$KVER" "$MODULES/System.map"; do
    if [ -r "$m" ]; then sysmap=$m; break; fi
done
[ -n "$sysmap" ] || { echo "kernel-tree: no System.map-$KVER next to $VMLINUZ, nor $MODULES/System.map" >&2; exit 1; }
sign_file=/usr/lib/linux-kbuild-6.1/scripts/sign-file

rm -rf "$out"
mkdir -p "$out/lib/modules"
cp -al "$MODULES" "$out/lib/modules/$KVER"
moddir=$out/lib/modules/$KVER

# Runs "$@" on the uncompressed module FILE, keeping FILE's compression.
edit_module() {
    local rel=$1
    shift
    local f=$moddir/$rel
    [ -f "$f" ] || { echo "kernel-tree: $rel: no such module in $KVER" >&2; exit 1; }
    local plain=$out/.edit.ko
    case $f in
        *.ko.xz) xz -dc "$f" >"$plain" ;;
        *.ko.zst) zstd -qdc "$f" >"$plain" ;;
        *.ko.gz) gzip -dc "$f" >"$plain" ;;
        *.ko) cp "$f" "$plain" ;;
        *) echo "kernel-tree: $rel: not a module name" >&2; exit 1 ;;
    esac
    "$@" "$plain"
    rm -f "$f" # a hard link: never write through it
    case $f in
        *.ko.xz) xz --check=crc32 -c "$plain" >"$f" ;;
        *.ko.zst) zstd -q -c "$plain" >"$f" ;;
        *.ko.gz) gzip -n -c "$plain" >"$f" ;;
        *.ko) cp "$plain" "$f" ;;
    esac
    rm -f "$plain"
}

# Flips the case of one letter of the module's description (its .modinfo
# text): inside the signed bytes, so the signature breaks, while the module
# still loads on a kernel that does not enforce signatures (warn-mode boots).
flip_byte() {
    local off byte
    off=$(grep -abo 'description=[A-Za-z]' "$1" | head -n 1 | cut -d: -f1)
    [ -n "$off" ] || { echo "kernel-tree: no description= in the module" >&2; exit 1; }
    off=$((off + 12))
    byte=$(od -An -tu1 -j "$off" -N1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059
    printf "$(printf '\\%03o' $((byte ^ 0x20)))" | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
}

resign() {
    local key=$1 cert=$2 f=$3 size sig_len
    # Strip the old signature: the trailer is struct module_signature (12
    # bytes, sig_len big-endian in its last 4) and the 28-byte magic.
    size=$(stat -c %s "$f")
    sig_len=$(od -An -tu1 -j $((size - 32)) -N4 "$f" |
        awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    head -c $((size - 40 - sig_len)) "$f" >"$f.unsigned"
    "$sign_file" sha256 "$key" "$cert" "$f.unsigned" "$f.signed"
    mv "$f.signed" "$f"
    rm -f "$f.unsigned"
}

while [ $# -gt 0 ]; do
    case $1 in
        --flip) [ $# -ge 2 ] || usage; edit_module "$2" flip_byte; shift 2 ;;
        --resign) [ $# -ge 4 ] || usage; edit_module "$2" resign "$3" "$4"; shift 4 ;;
        *) usage ;;
    esac
done

depmod -b "$out" -F "$sysmap" "$KVER"
echo "$moddir"
