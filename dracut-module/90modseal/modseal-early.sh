#!/bin/sh
# modseal early stage for a dracut initramfs without systemd: runs as a
# pre-udev hook, so before udev can load a module. Hooks are sourced by
# /init, where `die` stops the boot (a kernel panic, or rd.shell).
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! /usr/bin/modseal boot --stage early --cmdline /proc/cmdline --kmsg; then
    die "modseal: early stage failed in enforce mode: boot stopped (the modseal: lines above name each module and why)"
fi
