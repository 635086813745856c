#!/usr/bin/env bash
# How long modseal's boot stages take in a real boot under QEMU TCG, for both
# kinds of dracut image and both storage-key templates, in one run:
#
#   scripts/bench-boot.sh [SUITE]   (default bookworm; needs scripts/fetch-kernels.sh SUITE)
#   ROUNDS=N (default 3), MODSEAL_BIN=path (skip the release build),
#   SRKS="ecc-p256 rsa-2048" (the templates to enroll), KINDS="systemd classic"
#
# For each template, the trust bundle (the kernel's own signing key) is
# sealed into one swtpm state with `modseal enroll --srk T`, as a user does;
# for each kind, dracut builds one image through the modseal module (the
# suite's smallest bootable image: rootfs-block on virtio, ~19 modules).
# Each image boots ROUNDS times under OVMF with that TPM, one boot at a time
# (two boots would share the machine's cores and time each other). The
# numbers are the stages' own: each stage's summary line in the kernel log
# ends with "N TPM commands; M ms; pass" (the time from the stage's start to
# its summary, unseal, checks and measurement included).
#
# Output: one line per template, kind and stage with the TPM command count,
# the median, minimum and maximum milliseconds, and each boot's wait for the
# kernel's random pool (included in the times; 0 when RDRAND is credited, as
# qemu/boot.sh's CPU has it); the serial logs stay under target/bench-boot/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
suite=${1:-bookworm}
rounds=${ROUNDS:-3}
srks=${SRKS:-ecc-p256 rsa-2048}
kinds=${KINDS:-systemd classic}
die() { echo "bench-boot: $*" >&2; exit 1; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number, not: $rounds"
env_file=.cache/kernels/$suite/env
[ -f "$env_file" ] || die "$env_file missing: run scripts/fetch-kernels.sh $suite"
for tool in qemu-system-x86_64 swtpm swtpm_ioctl dracut zstd; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/setup.sh installs it)"
done
# shellcheck disable=SC1090
. "$env_file"

if [ -n "${MODSEAL_BIN:-}" ]; then
    bin=$MODSEAL_BIN
else
    # shellcheck disable=SC1091
    . "$repo/.cache/tss-musl/env"
    cargo build --release --locked --target x86_64-unknown-linux-musl >/dev/null
    bin=$repo/target/x86_64-unknown-linux-musl/release/modseal
fi
[ -x "$bin" ] || die "$bin: not built"
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

work=${CARGO_TARGET_DIR:-$repo/target}/bench-boot/$suite
rm -rf "$work"
mkdir -p "$work"
log() { echo "bench-boot: $*" >&2; }

"$bin" keys from-kernel "$VMLINUZ" > "$work/kernel-signing.pem"
"$bin" bundle --anchor "$work/kernel-signing.pem" --out "$work/trust.bundle" >/dev/null
qemu/firmware-pcrs.sh --kernel "$VMLINUZ" --out "$work/firmware-probe" >/dev/null
pcr7=$(sed -n 's/^7 //p' "$work/firmware-probe/pcrs")
[ -n "$pcr7" ] || die "the firmware probe gave no PCR 7"
moddir=$(qemu/kernel-tree.sh "$suite" "$work/kernel")
mkdir -p "$work/root-extra"
qemu/build-root.sh "$work/root.img" "$work/root-extra" >/dev/null

swtpm_ctrl=""
stop_swtpm() {
    [ -z "$swtpm_ctrl" ] || swtpm_ioctl --tcp "127.0.0.1:$swtpm_ctrl" -s 2>/dev/null || true
    swtpm_ctrl=""
}
trap stop_swtpm EXIT

# Seals the bundle into DIR/tpm with the given template; the configuration
# (trust=, sealed=) goes to DIR/etc.
enroll() {
    local srk=$1 dir=$2 port
    mkdir -p "$dir/tpm" "$dir/etc"
    port=$((20000 + RANDOM % 20000))
    swtpm socket --tpm2 --tpmstate "dir=$dir/tpm" --flags not-need-init,startup-clear \
        --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
        --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" --daemon
    swtpm_ctrl=$((port + 1))
    cp "$work/trust.bundle" "$dir/etc/trust.bundle"
    "$bin" enroll --tcti "swtpm:host=127.0.0.1,port=$port" --trust "$dir/etc/trust.bundle" \
        --srk "$srk" --pcrs 7,8 --pcr-value "7=$pcr7" --out "$dir/etc/sealed" >/dev/null
    stop_swtpm
    printf 'trust = %s\nsealed = %s\n' "$dir/etc/trust.bundle" "$dir/etc/sealed" > "$dir/etc/modseal.conf"
}

# "<stage> stage: …; N TPM commands; M ms; pass" → "stage N M W", one per
# stage, W the milliseconds the stage waited for the kernel's random pool
# (its "waited W ms" line; 0 without one), which M includes.
stage_times() {
    local text stage rest wait
    text=$(tr -d '\r' < "$1")
    printf '%s\n' "$text" | sed -n \
        's/^.*modseal: \([a-z-]*\) stage: .*; \([0-9]*\) TPM commands; \([0-9]*\) ms; pass$/\1 \2 \3/p' |
        while read -r stage rest; do
            wait=$(printf '%s\n' "$text" |
                sed -n "s/^.*modseal: $stage stage: waited \([0-9]*\) ms for the kernel's random pool.*/\1/p")
            echo "$stage $rest ${wait:-0}"
        done
}

results=$work/results
: > "$results"
for srk in $srks; do
    dir=$work/$srk
    log "enrolling with an $srk storage key"
    enroll "$srk" "$dir"
    for kind in $kinds; do
        log "$srk $kind: building the image"
        qemu/build-initramfs.sh --kind "$kind" --kver "$KVER" --kmoddir "$moddir" \
            --confdir "$dir/etc" --out "$dir/$kind.img" --binary "$bin" > "$dir/$kind.dracut.log" 2>&1 ||
            die "dracut failed: see $dir/$kind.dracut.log"
        for round in $(seq "$rounds"); do
            serial=$dir/$kind.$round.serial
            qemu/boot.sh --kernel "$VMLINUZ" --initrd "$dir/$kind.img" --root "$work/root.img" \
                --serial "$serial" --tpmstate "$dir/tpm" --timeout 600 > "$serial.result"
            grep -q 'result=root' "$serial.result" || die "$srk $kind round $round did not reach the root: see $serial"
            lines=$(stage_times "$serial")
            [ "$(printf '%s\n' "$lines" | grep -c .)" -eq 2 ] ||
                die "$srk $kind round $round: expected two passing stages in $serial"
            printf '%s\n' "$lines" | sed "s/^/$srk $kind /" >> "$results"
            log "$srk $kind round $round: $(printf '%s' "$lines" | tr '\n' ' ')"
        done
    done
done

echo "modseal boot stages under QEMU TCG (Debian $suite $KVER, OVMF, swtpm), $rounds boots each"
echo "binary: $(stat -c %s "$bin") bytes (limit 4194304), $(zstd -19 -c "$bin" | wc -c) with zstd -19 (what an initramfs grows by)"
printf '%-9s %-8s %-10s %13s %8s %8s %8s %15s\n' srk image stage tpm-commands median-ms min-ms max-ms entropy-wait-ms
for srk in $srks; do
    for kind in $kinds; do
        for stage in early pre-pivot; do
            awk -v s="$srk" -v k="$kind" -v st="$stage" '$1 == s && $2 == k && $3 == st { print $4, $5, $6 }' "$results" |
                sort -n -k2 | awk -v s="$srk" -v k="$kind" -v st="$stage" '
                    { c[NR] = $1; ms[NR] = $2; w = w sep $3; sep = "," }
                    END {
                        if (NR == 0) exit 1
                        cmds = c[1]; for (i = 2; i <= NR; i++) if (c[i] != cmds) cmds = cmds "/" c[i]
                        med = (NR % 2) ? ms[(NR + 1) / 2] : (ms[NR / 2] + ms[NR / 2 + 1]) / 2
                        printf "%-9s %-8s %-10s %13s %8s %8s %8s %15s\n", s, k, st, cmds, med, ms[1], ms[NR], w
                    }' || die "no times for $srk $kind $stage"
        done
    done
done
