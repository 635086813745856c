#!/usr/bin/env bash
# The main job on its default input, from a fresh Debian 12 machine: set up,
# build the static binary, download the current Debian kernel, and boot it in
# QEMU (TCG, UEFI firmware) with an swtpm TPM through an initramfs that the
# real dracut built with the modseal dracut module. Then show what modseal did
# in the guest: its kernel-log lines, the verification report from the event
# log, PCR 12 as read in the guest, the value `modseal predict` expects,
# whether the event log replays to it, what the firmware and the kernel's EFI
# stub measured before the initramfs (PCRs 4 and 9), and the
# remote-attestation verdict: the guest quotes PCRs 4, 9 and 12 with a nonce
# the host chose (`modseal quote`, AK provisioned before the boot) and the
# host decides with `modseal attest`, under a policy it made from its own
# files (bundle, initrd, kernel) before the boot.
#
#   scripts/demo.sh [SUITE] [KIND]   SUITE bookworm (default) | trixie
#                                    KIND  systemd (default) | classic
#
# Everything it makes is under .cache/demo/SUITE-KIND/ (rebuilt each run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
suite=${1:-bookworm}
kind=${2:-systemd}

SETUP_NO_KERNELS=1 scripts/setup.sh
scripts/fetch-kernels.sh "$suite"
. "$HOME/.cargo/env" 2>/dev/null || true
# The static tpm2-tss/OpenSSL that scripts/setup.sh builds (scripts/build-tss.sh).
# shellcheck disable=SC1091
. "$repo/.cache/tss-musl/env"
cargo build --release --locked --target x86_64-unknown-linux-musl
bin=$repo/target/x86_64-unknown-linux-musl/release/modseal

# shellcheck disable=SC1090
. ".cache/kernels/$suite/env"
work=$repo/.cache/demo/$suite-$kind
rm -rf "$work"
mkdir -p "$work/etc"
step() { printf '\n== %s\n' "$*"; }
indent() { sed 's/^/   /'; }

step "modseal $($bin --version | cut -d' ' -f2): $(file -b "$bin" | grep -o 'stati[a-z-]* linked'), $(stat -c %s "$bin") bytes"
step "kernel: Debian $suite $KVER; its module-signing certificate, from the kernel image:"
"$bin" keys from-kernel "$VMLINUZ" > "$work/etc/kernel-signing.pem"
openssl x509 -in "$work/etc/kernel-signing.pem" -noout -subject -fingerprint -sha256 | indent
"$bin" bundle --anchor "$work/etc/kernel-signing.pem" --out "$work/etc/trust.bundle"

step "what the UEFI firmware (OVMF) measures before any initramfs: a probe boot"
qemu/firmware-pcrs.sh --kernel "$VMLINUZ" --out "$work/firmware-probe"
pcr7=$(sed -n 's/^7 //p' "$work/firmware-probe/pcrs")
echo "   PCR 7 (Secure Boot state and keys): $pcr7"
step "enrolling: sealing the bundle's digest in the TPM the VM will use (PCRs 7 and 8; never 9, which holds the initrd itself)"
# A host-side swtpm on the VM's state directory: same seeds, same SRK.
mkdir -p "$work/tpm"
port=$(( 20000 + RANDOM % 20000 ))
swtpm socket --tpm2 --tpmstate "dir=$work/tpm" --flags not-need-init,startup-clear \
    --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
    --daemon --pid "file=$work/host-swtpm.pid"
trap 'swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s 2>/dev/null || true' EXIT
"$bin" enroll --tcti "swtpm:host=127.0.0.1,port=$port" --trust "$work/etc/trust.bundle" \
    --pcrs 7,8 --pcr-value "7=$pcr7" --out "$work/etc/sealed" | indent
step "provisioning the attestation key (persistent in the TPM; the verifier keeps ak.pem)"
"$bin" quote --tcti "swtpm:host=127.0.0.1,port=$port" --nonce 00 --no-log --no-firmware-log \
    --ak-dir "$work/verifier/ak" --out "$work/provision-quote" | indent
swtpm_ioctl --tcp "127.0.0.1:$((port + 1))" -s
trap - EXIT
cat > "$work/etc/modseal.conf" <<EOF
trust = $work/etc/trust.bundle
sealed = $work/etc/sealed
EOF

step "building the initramfs with dracut ($kind) and the modseal dracut module"
moddir=$(qemu/kernel-tree.sh "$suite" "$work/kernel")
qemu/build-initramfs.sh --kind "$kind" --kver "$KVER" --kmoddir "$moddir" \
    --confdir "$work/etc" --out "$work/initrd.img" --binary "$bin" 2>&1 |
    grep 'modseal' | grep -v Executing | indent
echo "   $(stat -c %s "$work/initrd.img") bytes"
# The test root: the static binary and the guest half of an attestation
# request (qemu/guest/quote.sh), which quotes when the command line carries a nonce.
mkdir -p "$work/root-extra/usr/bin" "$work/root-extra/etc/modseal-test"
cp "$bin" "$work/root-extra/usr/bin/modseal"
cp qemu/guest/quote.sh "$work/root-extra/etc/modseal-test/extra.sh"
qemu/build-root.sh "$work/root.img" "$work/root-extra" >/dev/null
nonce=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')

step "the verifier's policy, made from the host's files before the boot (modseal attest --make-policy)"
# The bundle it expects (it made it), the modules inside the image verified
# against it, the initrd's SHA-256, the kernel's and the boot loader's
# (systemd-boot: qemu/boot.sh boots through it) Authenticode digests: what the
# firmware and the EFI stub will measure into PCRs 4 and 9.
mkdir -p "$work/verifier"
"$bin" attest --make-policy --trust "$work/etc/trust.bundle" --initrd "$work/initrd.img" \
    --kernel "$VMLINUZ" --boot-app /usr/lib/systemd/boot/efi/systemd-bootx64.efi \
    > "$work/verifier/policy"
grep -v '^#' "$work/verifier/policy" | indent

step "booting Debian $suite $KVER under QEMU (TCG, UEFI firmware) with swtpm"
qemu/boot.sh --kernel "$VMLINUZ" --initrd "$work/initrd.img" --root "$work/root.img" \
    --serial "$work/serial.log" --tpmstate "$work/tpm" --timeout 600 \
    --append "modseal.test.nonce=$nonce" | indent
echo "   kernel log lines from modseal (serial console):"
grep -a 'modseal: ' "$work/serial.log" | sed 's/^.*\] //' | indent | indent

# What the guest reported from the real root.
tr -d '\r' < "$work/serial.log" > "$work/serial.txt"
grep -q '^MODSEAL-ROOT: done' "$work/serial.txt" || {
    echo "the guest did not reach its root: see $work/serial.log" >&2
    exit 1
}
pcr=$(sed -n 's/^MODSEAL-PCR: 12 //p' "$work/serial.txt")
sed -n '/^MODSEAL-FWLOG-BEGIN$/,/^MODSEAL-FWLOG-END$/p' "$work/serial.txt" |
    grep -E '^[A-Za-z0-9+/=]+$' | base64 -d > "$work/binary_bios_measurements"
sed -n '/^MODSEAL-LOG-BEGIN$/,/^MODSEAL-LOG-END$/p' "$work/serial.txt" |
    grep -E '^[A-Za-z0-9+/=]+$' | base64 -d > "$work/tpm2-measure.log"

step "verification report (event log copied out of the guest: modseal log show --modules)"
"$bin" log show --modules "$work/tpm2-measure.log" | grep -v '^  sha' | indent

mkdir -p "$work/unpacked"
(cd "$work/unpacked" && cpio -idm --quiet --no-absolute-filenames < "$work/initrd.img")
image_modules=$work/unpacked/usr/lib/modules/$KVER
[ -d "$image_modules" ] || image_modules=$work/unpacked/lib/modules/$KVER
# systemd-boot measured the command line into PCR 12 before the initramfs
# ran: modseal's records extend that value (the firmware log has it).
from=$("$bin" log show --firmware "$work/binary_bios_measurements" | sed -n 's/^pcr 12 sha256 //p')
from=${from:-$(printf '0%.0s' $(seq 64))}
predicted=$("$bin" predict --trust "$work/etc/trust.bundle" --modules "$image_modules" \
    --root "$work/unpacked" --mode enforce --stage early --stage pre-pivot --from "$from" 2>/dev/null)
replayed=$("$bin" log replay --from "$from" "$work/tpm2-measure.log" | sed -n 's/^pcr 12 sha256 //p')

step "PCR 12 (sha256)"
echo "   before modseal:        $from (systemd-boot's measurement of the command line)"
echo "   read in the guest:     $pcr"
echo "   modseal predict:       $predicted"
echo "   event log replays to:  $replayed"
local_ok=no
if [ -n "$pcr" ] && [ "$pcr" = "$predicted" ] && [ "$pcr" = "$replayed" ]; then
    local_ok=yes
    echo "   all three agree"
else
    echo "   they differ"
fi

step "what the firmware and the kernel's EFI stub measured before the initramfs ($(stat -c %s "$work/binary_bios_measurements")-byte firmware log)"
"$bin" log show --firmware "$work/binary_bios_measurements" |
    grep -E '^event [0-9]+: PCR (4|9),|^pcr (4|9) sha256 ' | cut -c1-150 | indent
for i in 4 9; do
    echo "   PCR $i read in the guest: $(sed -n "s/^MODSEAL-PCR: $i //p" "$work/serial.txt")"
done

step "remote attestation: the guest's quote of PCRs 4, 9 and 12 (nonce $nonce) checked by modseal attest"
mkdir -p "$work/verifier/quote"
awk -v dir="$work/verifier/quote" '
    /^MODSEAL-FILE-BEGIN / { file = dir "/" $2 ".b64"; printf "" > file; next }
    /^MODSEAL-FILE-END$/ { close(file); file = ""; next }
    file != "" && /^[A-Za-z0-9+\/=]+$/ { print >> file }' "$work/serial.txt"
for f in "$work/verifier/quote"/*.b64; do
    base64 -d "$f" > "${f%.b64}"
    rm -f "$f"
done
grep '^MODSEAL-QUOTE' "$work/serial.txt" | indent
set +e
"$bin" attest --ak "$work/verifier/ak/ak.pem" --quote "$work/verifier/quote" \
    --nonce "$nonce" --policy "$work/verifier/policy" | indent
attest=${PIPESTATUS[0]}
set -e

if [ "$local_ok" = yes ] && [ "$attest" = 0 ]; then
    step "verdict: GOOD: every initramfs module verified, PCR 12 = prediction = replayed log, and the remote verifier trusts the quote: the kernel, the initrd and every module it verified"
else
    step "verdict: BAD (local check: $local_ok, attest exit $attest)"
    exit 1
fi
