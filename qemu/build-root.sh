#!/usr/bin/env bash
# Build the ext4 root filesystem the boot tests switch to: busybox-static and
# one init script, /sbin/modseal-test-init, which reports what the initramfs
# left behind (PCRs, loaded modules, modseal's measurement log) on the serial
# console as MODSEAL-* lines and powers the VM off.
#
#   qemu/build-root.sh OUT.img [EXTRA_DIR]
#
# EXTRA_DIR's contents are copied over the image root last (tests add files,
# e.g. a static binary or /etc/modseal-test/extra.sh, which the init sources
# before it reports MODSEAL-ROOT: done).
#
# Uses `mkfs.ext4 -d`, so no loop mount is needed; runs as root only so that
# the image's files are root-owned and /dev/console can be created.
set -euo pipefail

usage() { echo "usage: $0 OUT.img [EXTRA_DIR]" >&2; exit 64; }
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
extra=${2:-}
[ -z "$extra" ] || [ -d "$extra" ] || { echo "build-root: $extra is not a directory" >&2; exit 64; }
# Absolute, because the image is staged from another working directory.
[ -z "$extra" ] || extra=$(cd "$extra" && pwd)
outdir=$(cd "$(dirname "$1")" && pwd) || { echo "build-root: no directory for $1" >&2; exit 64; }
out=$outdir/$(basename "$1")
[ "$(id -u)" -eq 0 ] || { echo "build-root: must run as root (file ownership, device nodes)" >&2; exit 1; }

busybox=/bin/busybox
[ -x "$busybox" ] || { echo "build-root: $busybox missing (install busybox-static)" >&2; exit 1; }
# A dynamic busybox would need the host's libc in the image.
if command -v file >/dev/null && ! file -bL "$busybox" | grep -q 'static'; then
    echo "build-root: $busybox is not statically linked (install busybox-static)" >&2
    exit 1
fi
command -v mkfs.ext4 >/dev/null || { echo "build-root: mkfs.ext4 missing (install e2fsprogs)" >&2; exit 1; }

stage=$(mktemp -d)
tmp=""
cleanup() {
    rm -rf "$stage"
    [ -z "$tmp" ] || rm -f "$tmp"
}
trap cleanup EXIT

cd "$stage"
mkdir -p bin sbin etc proc sys dev run tmp usr/lib usr/bin usr/sbin etc/modseal-test
chmod 1777 tmp
cp "$busybox" bin/busybox
# Every applet, so extra.sh hooks are not limited to a hand-picked list.
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "bin/$applet"
done
# The kernel opens /dev/console for PID 1 before devtmpfs is mounted.
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null c 1 3

# systemd's switch-root refuses a root without os-release.
cat >usr/lib/os-release <<'EOF'
NAME="modseal test root"
ID=modseal-test
PRETTY_NAME="modseal test root"
EOF
ln -s ../usr/lib/os-release etc/os-release

cat >sbin/modseal-test-init <<'EOF'
#!/bin/sh
# PID 1 of the boot-test root. No `set -e`: if PID 1 exits the kernel panics,
# so every step must fall through to the power-off at the end.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH

mounted() { grep -q "^[^ ]* $1 " /proc/mounts 2>/dev/null; }

# After a switch-root (systemd or classic dracut) these were moved over
# already; mount only what is missing (e.g. when booted without initramfs).
[ -e /proc/self ] || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
# /run is left alone: the initramfs's /run holds modseal's measurement log.

# systemd's switch-root hands over no usable console.
exec </dev/console >/dev/console 2>&1
# Keep kernel messages off the console so they cannot split the lines below;
# panics and the power-down line are emergency level and still appear.
dmesg -n 1 2>/dev/null

echo "MODSEAL-ROOT: reached"

pcrs=/sys/class/tpm/tpm0/pcr-sha256
if [ -d "$pcrs" ]; then
    for i in $(seq 0 23); do
        echo "MODSEAL-PCR: $i $(tr 'A-F' 'a-f' <"$pcrs/$i")"
    done
else
    echo "MODSEAL-PCR: none"
fi

while read -r name _; do
    echo "MODSEAL-LOADED: $name"
done </proc/modules

# The firmware's TCG event log (UEFI boots only): what the firmware and the
# kernel's EFI stub measured before the initramfs ran.
mounted /sys/kernel/security || mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
fwlog=/sys/kernel/security/tpm0/binary_bios_measurements
if [ -r "$fwlog" ]; then
    echo "MODSEAL-FWLOG-BEGIN"
    base64 <"$fwlog"
    echo "MODSEAL-FWLOG-END"
else
    echo "MODSEAL-FWLOG: missing"
fi

log=/run/log/modseal/tpm2-measure.log
if [ -f "$log" ]; then
    echo "MODSEAL-LOG-BEGIN"
    base64 <"$log"
    echo "MODSEAL-LOG-END"
else
    echo "MODSEAL-LOG: missing"
fi

echo "MODSEAL-CMDLINE: $(cat /proc/cmdline)"

# A subshell, so an `exit` in the hook cannot end PID 1.
if [ -f /etc/modseal-test/extra.sh ]; then
    ( . /etc/modseal-test/extra.sh )
    echo "MODSEAL-EXTRA: rc=$?"
fi

echo "MODSEAL-ROOT: done"
sync
poweroff -f
# Only reached if power-off failed; -no-reboot turns a reboot into QEMU's exit.
reboot -f
while :; do sleep 60; done
EOF
chmod 755 sbin/modseal-test-init

[ -z "$extra" ] || cp -a "$extra/." "$stage/"

# Room for what EXTRA_DIR adds, at least 64 MiB.
size_mib=$(( $(du -sm "$stage" | cut -f1) + 32 ))
[ "$size_mib" -ge 64 ] || size_mib=64

# Next to OUT so the final rename stays on one filesystem (atomic).
tmp=$(mktemp "$out.XXXXXX")
mkfs.ext4 -q -F -L modseal-root -d "$stage" "$tmp" "${size_mib}M"
chmod 644 "$tmp"
mv -f "$tmp" "$out"
tmp=""
echo "build-root: wrote $out (${size_mib} MiB)"
