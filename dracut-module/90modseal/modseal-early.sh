#!/bin/sh
# modseal early stage for a dracut initramfs without systemd: the first
# cmdline hook (00-modseal-early.sh sorts before 00-watchdog.sh and
# 01-parse-kernel.sh, which modprobe for the watchdog and rd.driver.pre), so
# it runs before any hook or udev can load a module.
#
# Hooks are sourced by /init, PID 1. A failure never calls `die`: with
# rd.shell (dracut's default) that is a root shell from which the root could
# be mounted by hand. `modseal halt` stops the machine; should it return, the
# kernel powers off, and should that not happen either, PID 1 stays here.

if ! /usr/bin/modseal boot --initramfs --stage early --cmdline /proc/cmdline --kmsg; then
    /usr/bin/modseal halt --reason "early stage failed (the modseal: lines above name each module and why)"
    trap '' INT QUIT TERM HUP
    trap - EXIT
    echo o > /proc/sysrq-trigger
    while :; do sleep 1; done
fi
