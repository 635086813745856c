#!/usr/bin/env bash
# Writes a copy of an initramfs image with a second cpio archive appended,
# holding DIR's files: what an attacker who can write the image on disk does
# without unpacking it. The kernel unpacks concatenated archives in order and
# a later entry replaces an earlier one of the same name (init/initramfs.c),
# so a file in DIR replaces the image's file at the same path.
#
#   qemu/overlay.sh IMAGE DIR OUT
#
# IMAGE must be an uncompressed cpio (qemu/build-initramfs.sh makes one).
# Entries are newc, owned by root, with DIR's modes; DIR's paths are the
# image's real ones: a directory entry over one of the image's symlinks
# (lib -> usr/lib) would replace the symlink.
set -euo pipefail

usage() { echo "usage: $0 IMAGE DIR OUT" >&2; exit 64; }
[ $# -eq 3 ] || usage
image=$1 dir=$2 out=$3
[ -f "$image" ] || { echo "overlay: $image: no such file" >&2; exit 64; }
[ -d "$dir" ] || { echo "overlay: $dir: not a directory" >&2; exit 64; }
command -v cpio >/dev/null || { echo "overlay: cpio missing (apt-get install cpio)" >&2; exit 1; }

tmp=$out.tmp
trap 'rm -f "$tmp"' EXIT
cp "$image" "$tmp"
# Each archive's first header must start 4-byte aligned.
size=$(stat -c %s "$tmp")
pad=$(( (4 - size % 4) % 4 ))
[ "$pad" -eq 0 ] || head -c "$pad" /dev/zero >>"$tmp"
# Sorted, so that a directory comes before its entries; no "." entry, which
# would change the mode of the image's root.
(cd "$dir" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) >>"$tmp"
mv "$tmp" "$out"
trap - EXIT
