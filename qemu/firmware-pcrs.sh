#!/usr/bin/env bash
# What the firmware measures before any initramfs runs, read from a probe
# boot: the kernel is booted under UEFI (qemu/boot.sh) with a throwaway TPM
# and a tiny busybox initramfs whose init prints the PCRs and the firmware's
# TCG event log, then powers off.
#
#   qemu/firmware-pcrs.sh --kernel VMLINUZ --out DIR
#
# Writes DIR/pcrs (lines "N HEX", sha256 bank, PCRs 0-23), DIR/firmware.log
# (binary_bios_measurements) and DIR/serial.log. An enrollment seals to PCR 7
# with `modseal enroll --pcr-value 7=HEX` from DIR/pcrs: PCR 7 (Secure Boot
# state and keys) is measured by the firmware alone, so it is the same for
# every kernel and initrd booted under this firmware, on any swtpm.
set -euo pipefail

usage() { echo "usage: $0 --kernel VMLINUZ --out DIR" >&2; exit 64; }
kernel="" out=""
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) [ $# -ge 2 ] || usage; kernel=$2; shift 2 ;;
        --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
        *) usage ;;
    esac
done
[ -n "$kernel" ] && [ -n "$out" ] || usage
[ -f "$kernel" ] || { echo "firmware-pcrs: $kernel: no such file" >&2; exit 64; }
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "firmware-pcrs: $busybox missing (install busybox-static)" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/proc" "$stage/sys" "$stage/dev"
cp "$busybox" "$stage/bin/busybox"
for a in sh mount cat base64 echo poweroff seq tr; do ln -s busybox "$stage/bin/$a"; done
cat >"$stage/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t securityfs securityfs /sys/kernel/security
for i in $(seq 0 23); do
    echo "PROBE-PCR: $i $(tr 'A-F' 'a-f' </sys/class/tpm/tpm0/pcr-sha256/$i)"
done
echo "PROBE-FWLOG-BEGIN"
base64 </sys/kernel/security/tpm0/binary_bios_measurements
echo "PROBE-FWLOG-END"
echo "MODSEAL-ROOT: done"
poweroff -f
EOF
chmod 755 "$stage/init"
boot=$(mktemp -d)
trap 'rm -rf "$stage" "$boot"' EXIT
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$boot/initrd.img"
# qemu/boot.sh wants a root disk; the probe never mounts it.
truncate -s 1M "$boot/root.img"

"$here/boot.sh" --kernel "$kernel" --initrd "$boot/initrd.img" --root "$boot/root.img" \
    --serial "$out/serial.log" --timeout 300 --append "rdinit=/init" >/dev/null
tr -d '\r' <"$out/serial.log" >"$stage/serial.txt"
grep -q '^MODSEAL-ROOT: done' "$stage/serial.txt" || {
    echo "firmware-pcrs: the probe boot did not finish: see $out/serial.log" >&2
    exit 1
}
sed -n 's/^PROBE-PCR: //p' "$stage/serial.txt" >"$out/pcrs.tmp"
[ "$(wc -l <"$out/pcrs.tmp")" -eq 24 ] || {
    echo "firmware-pcrs: the probe printed no PCRs (no TPM?): see $out/serial.log" >&2
    exit 1
}
sed -n '/^PROBE-FWLOG-BEGIN$/,/^PROBE-FWLOG-END$/p' "$stage/serial.txt" |
    grep -E '^[A-Za-z0-9+/=]+$' | base64 -d >"$out/firmware.log.tmp"
mv "$out/firmware.log.tmp" "$out/firmware.log"
mv "$out/pcrs.tmp" "$out/pcrs"
