#!/usr/bin/env bash
# Boot one VM (QEMU under TCG, with a swtpm unless --no-tpm) and report how
# the boot ended, from markers in the serial log. Never hangs: a timeout
# bounds the wait, and QEMU and swtpm are killed by PID on every exit path.
#
#   qemu/boot.sh --kernel VMLINUZ --initrd IMG --root ROOT.img --serial LOG
#                [--append "EXTRA CMDLINE"] [--tpmstate DIR | --no-tpm]
#                [--timeout SECONDS] [--memory MiB] [--firmware uefi|bios]
#
# --firmware uefi (the default): q35 with OVMF (the code read-only, a fresh
# copy of the variables each boot) booting systemd-boot from an EFI system
# partition (a read-only FAT view of a directory holding the boot loader,
# the kernel, the initrd and a loader entry with the command line), as a
# real machine boots: the firmware measures the boot loader and the kernel
# image into PCR 4 (each its Authenticode digest), systemd-boot the command
# line into PCR 12, and the kernel's EFI stub the initrd and the command
# line into PCR 9. (QEMU's -kernel would rewrite the kernel's setup header
# before the firmware measures it.) bios: SeaBIOS on the i440fx machine with
# -kernel/-initrd, where PCRs 8 and 9 stay zero.
#
# --tpmstate DIR is reused as it is (a test may have enrolled into it);
# without --tpmstate or --no-tpm a fresh throwaway TPM is used.
# The root image is attached with snapshot=on: it is never written, so
# parallel boots may share it.
#
# Last line on stdout:
#   boot: result=<root|halted|panic|poweroff|timeout|exited> seconds=<s>
# Exit status: 0 for root, halted, panic, poweroff (a definite outcome the
# caller asserts on); 2 for timeout, or QEMU exiting without a marker;
# 64 for usage errors; 69 if qemu or swtpm is missing or cannot start.
set -euo pipefail

prog=boot
die() { echo "$prog: $1" >&2; exit "${2:-69}"; }
usage() {
    echo "$prog: $1" >&2
    echo "usage: $0 --kernel VMLINUZ --initrd IMG --root ROOT.img --serial LOG" \
        "[--append EXTRA] [--tpmstate DIR | --no-tpm] [--timeout S] [--memory MiB]" \
        "[--firmware uefi|bios]" >&2
    exit 64
}

kernel="" initrd="" root="" serial="" append="" tpmstate="" no_tpm="" timeout=300 memory=1024 firmware=uefi
while [ $# -gt 0 ]; do
    opt=$1
    case $opt in
        --no-tpm) no_tpm=1; shift; continue ;;
        --kernel|--initrd|--root|--serial|--append|--tpmstate|--timeout|--memory|--firmware)
            [ $# -ge 2 ] || usage "$opt needs a value" ;;
        *) usage "unknown argument: $opt" ;;
    esac
    case $opt in
        --kernel) kernel=$2 ;;
        --initrd) initrd=$2 ;;
        --root) root=$2 ;;
        --serial) serial=$2 ;;
        --append) append=$2 ;;
        --tpmstate) tpmstate=$2 ;;
        --timeout) timeout=$2 ;;
        --memory) memory=$2 ;;
        --firmware) firmware=$2 ;;
    esac
    shift 2
done
for v in kernel initrd root serial; do
    [ -n "${!v}" ] || usage "--$v is required"
done
for f in "$kernel" "$initrd" "$root"; do
    [ -f "$f" ] || usage "no such file: $f"
done
[ -z "$tpmstate" ] || [ -z "$no_tpm" ] || usage "--tpmstate and --no-tpm exclude each other"
[[ $timeout =~ ^[0-9]+$ ]] || usage "--timeout must be whole seconds"
[[ $memory =~ ^[0-9]+$ ]] || usage "--memory must be MiB"
case $firmware in uefi|bios) ;; *) usage "--firmware must be uefi or bios" ;; esac

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (install qemu-system-x86)"
[ -n "$no_tpm" ] || command -v swtpm >/dev/null || die "swtpm not found (install swtpm)"

# QEMU option values use ',' as separator; a literal comma is written twice.
qesc() { printf '%s' "${1//,/,,}"; }
# Microseconds since the epoch; EPOCHREALTIME's decimal point follows the locale.
now_us() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((10#$t)); }

qemu_pid="" swtpm_pid="" tmp_tpm="" qemu_err="" vars="" esp=""
stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
    stop "$qemu_pid"
    stop "$swtpm_pid"
    [ -z "$tmp_tpm" ] || rm -rf "$tmp_tpm"
    [ -z "$qemu_err" ] || rm -f "$qemu_err"
    [ -z "$vars" ] || rm -f "$vars"
    [ -z "$esp" ] || rm -rf "$esp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# If this script is SIGKILLed its traps cannot run: the parent-death signal
# still takes the children down with it.
pdeath=()
if command -v setpriv >/dev/null; then pdeath=(setpriv --pdeathsig KILL); fi

tpm_args=()
if [ -z "$no_tpm" ]; then
    if [ -z "$tpmstate" ]; then
        tmp_tpm=$(mktemp -d)
        tpmstate=$tmp_tpm
    fi
    mkdir -p "$tpmstate"
    # swtpm resolves relative paths against its own working directory.
    tpmstate=$(cd "$tpmstate" && pwd)
    sock=$tpmstate/swtpm.sock
    [ "${#sock}" -lt 108 ] || die "socket path too long for a unix socket: $sock" 64
    # A socket left by a killed run would make the wait below succeed early.
    rm -f "$sock"
    # Not --daemon: $! is then swtpm itself, no pid file to trust.
    # --terminate: swtpm ends when QEMU closes the connection.
    "${pdeath[@]}" swtpm socket --tpm2 --tpmstate "dir=$tpmstate" \
        --ctrl "type=unixio,path=$sock" --log "file=$tpmstate/swtpm.log" \
        --terminate </dev/null >>"$tpmstate/swtpm.log" 2>&1 &
    swtpm_pid=$!
    for _ in $(seq 100); do
        [ -S "$sock" ] && break
        kill -0 "$swtpm_pid" 2>/dev/null || die "swtpm exited at start; see $tpmstate/swtpm.log"
        sleep 0.1
    done
    [ -S "$sock" ] || die "swtpm socket $sock did not appear within 10 s"
    tpm_args=(-chardev "socket,id=chrtpm,path=$(qesc "$sock")"
              -tpmdev "emulator,id=tpm0,chardev=chrtpm" -device "tpm-tis,tpmdev=tpm0")
fi

# rd.shell=0: a failed initramfs halts (systemd) or panics (classic) instead
# of waiting at an emergency shell; rd.timeout (systemd) and rd.retry
# (classic) bound the wait for a root that never appears.
cmdline="console=ttyS0 root=/dev/vda rw rootfstype=ext4 init=/sbin/modseal-test-init"
cmdline+=" rd.shell=0 rd.timeout=60 rd.retry=30 panic=-1 loglevel=6${append:+ $append}"

# The root disk comes first: it is /dev/vda.
boot_args=(-machine pc -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
    -drive "file=$(qesc "$root"),format=raw,if=virtio,snapshot=on")
if [ "$firmware" = uefi ]; then
    ovmf=/usr/share/OVMF
    sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
    for f in "$ovmf/OVMF_CODE_4M.fd" "$ovmf/OVMF_VARS_4M.fd"; do
        [ -f "$f" ] || die "$f not found (install ovmf)"
    done
    [ -f "$sdboot" ] || die "$sdboot not found (install systemd-boot-efi)"
    # The firmware writes its variables (boot entries, the memory map of
    # the last boot): each boot starts from the pristine template, so boots
    # measure the same and parallel boots never share a file.
    vars=$(mktemp)
    cp "$ovmf/OVMF_VARS_4M.fd" "$vars"
    esp=$(mktemp -d)
    mkdir -p "$esp/EFI/BOOT" "$esp/loader/entries"
    cp "$sdboot" "$esp/EFI/BOOT/BOOTX64.EFI"
    # Hard links where the files allow it: the initrd may be tens of MB.
    ln -f "$kernel" "$esp/vmlinuz" 2>/dev/null || cp "$kernel" "$esp/vmlinuz"
    ln -f "$initrd" "$esp/initrd.img" 2>/dev/null || cp "$initrd" "$esp/initrd.img"
    printf 'timeout 0\ndefault modseal.conf\neditor no\nrandom-seed-mode off\n' >"$esp/loader/loader.conf"
    printf 'title modseal test\nlinux /vmlinuz\ninitrd /initrd.img\noptions %s\n' "$cmdline" \
        >"$esp/loader/entries/modseal.conf"
    boot_args=(-machine q35
        -drive "if=pflash,format=raw,unit=0,readonly=on,file=$(qesc "$ovmf/OVMF_CODE_4M.fd")"
        -drive "if=pflash,format=raw,unit=1,file=$(qesc "$vars")"
        -drive "file=$(qesc "$root"),format=raw,if=virtio,snapshot=on"
        -drive "file=fat:$(qesc "$esp"),format=raw,if=virtio,readonly=on")
fi

# -display none rather than -nographic: -nographic would put the monitor and
# serial on our terminal; here the whole console goes to the log only.
: >"$serial"
# QEMU's own messages are shown only when it exits unexplained; otherwise
# they are just "terminating on signal" from our kill.
qemu_err=$(mktemp)
# -cpu qemu64,+rdrand: TCG's default CPU lacks RDRAND, which every x86 machine
# modseal boots on has and Debian's kernels credit at boot
# (random.trust_cpu): without it the kernel's random pool is not ready when
# the initramfs runs, and the first getrandom() waits for jitter entropy
# (1-2 s under TCG) inside whatever asked first.
"${pdeath[@]}" qemu-system-x86_64 -accel tcg -cpu qemu64,+rdrand "${boot_args[@]}" -m "$memory" -smp 1 \
    -no-reboot -nic none -display none -monitor none -serial "file:$serial" \
    "${tpm_args[@]}" </dev/null >"$qemu_err" 2>&1 &
qemu_pid=$!
start=$(now_us)

# The root's init prints MODSEAL-ROOT: done and powers off, so root-done is
# checked before the power-down line it causes.
classify() {
    if grep -aq 'MODSEAL-ROOT: done' "$serial"; then echo root
    elif grep -aq 'Kernel panic' "$serial"; then echo panic
    elif grep -aq 'reboot: System halted' "$serial"; then echo halted
    elif grep -aq 'reboot: Power down' "$serial"; then echo poweroff
    fi
}

result=""
while :; do
    result=$(classify)
    [ -z "$result" ] || break
    if ! kill -0 "$qemu_pid" 2>/dev/null; then
        # QEMU may have written its last lines between the two checks.
        result=$(classify)
        result=${result:-exited}
        break
    fi
    if [ $(( $(now_us) - start )) -ge $(( timeout * 1000000 )) ]; then
        result=timeout
        break
    fi
    sleep 0.5
done
end=$(now_us)

# Give QEMU a moment to exit on its own, so the log ends where the guest
# stopped; a halted guest idles forever, so it gets no grace.
case $result in
    root|panic|poweroff) grace=10 ;;
    *) grace=0 ;;
esac
for _ in $(seq "$grace"); do
    kill -0 "$qemu_pid" 2>/dev/null || break
    sleep 0.5
done
stop "$qemu_pid"
qemu_pid=""

[ "$result" != exited ] || sed 's/^/qemu: /' "$qemu_err" >&2
us=$(( end - start ))
echo "boot: result=$result seconds=$(( us / 1000000 )).$(( us / 100000 % 10 ))"
case $result in
    root|halted|panic|poweroff) exit 0 ;;
    *) exit 2 ;;
esac
