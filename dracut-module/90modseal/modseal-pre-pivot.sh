#!/bin/sh
# modseal pre-pivot stage for a dracut initramfs without systemd: the last
# pre-pivot hook (99-zz-modseal-pre-pivot.sh sorts after 99-watchdog.sh, which
# may modprobe), so the loaded-module set it reconciles is final as far as
# the pre-pivot hooks go.
#
# A failure halts as in modseal-early.sh: never `die` (a shell with rd.shell),
# never a return to /init.

if ! /usr/bin/modseal boot --initramfs --stage pre-pivot --cmdline /proc/cmdline --kmsg; then
    /usr/bin/modseal halt --reason "pre-pivot stage failed (the modseal: lines above name each module and why)"
    trap '' INT QUIT TERM HUP
    trap - EXIT
    echo o > /proc/sysrq-trigger
    while :; do sleep 1; done
fi
