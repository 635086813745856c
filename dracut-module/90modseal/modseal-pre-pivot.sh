#!/bin/sh
# modseal pre-pivot stage for a dracut initramfs without systemd: the last
# pre-pivot hook, so the loaded-module set it reconciles is final.
type die >/dev/null 2>&1 || . /lib/dracut-lib.sh

if ! /usr/bin/modseal boot --stage pre-pivot --cmdline /proc/cmdline --kmsg; then
    die "modseal: pre-pivot stage failed in enforce mode: boot stopped (the modseal: lines above name each module and why)"
fi
