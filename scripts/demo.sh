#!/usr/bin/env bash
# The main job on its default input, from a fresh Debian 12 machine:
# set up, build the static binary, download the current Debian bookworm
# kernel, pull its module-signing certificate out of the kernel image with
# `modseal keys from-kernel`, and verify its whole module tree against it.
#
#   scripts/demo.sh [SUITE]     (default: bookworm; trixie works too)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
suite=${1:-bookworm}

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
cert=".cache/kernels/$suite/signing-cert.pem"

echo
echo "== modseal $($bin --version | cut -d' ' -f2): $(file -b "$bin" | grep -o 'stati[a-z-]* linked'), $(stat -c %s "$bin") bytes"
echo "== kernel: Debian $suite $KVER"
echo "== certificates built into $(basename "$VMLINUZ"):"
"$bin" keys from-kernel "$VMLINUZ" > "$cert"
openssl x509 -in "$cert" -noout -subject -serial -fingerprint -sha256 | sed 's/^/   /'

first=$(find "$MODULES" -name '*.ko*' -type f | sort | sed -n 1p)
echo "== one module, inspected:"
"$bin" inspect "$first" | sed 's/^/   /'

echo "== verifying every module under $MODULES"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
start=$(date +%s.%N)
set +e
"$bin" verify --trust "$cert" --json "$MODULES" > "$report"
status=$?
set -e
end=$(date +%s.%N)
jq -r '.modules | group_by(.verdict) | map("   \(.[0].verdict): \(length)") | .[]' "$report"
jq -r '.modules | map(select(.verdict == "ok")) | group_by([.signer, .hash_algo])
       | map("   signer \(.[0].signer), \(.[0].hash_algo): \(length) modules") | .[]' "$report"
jq -r '[.modules[] | select(.verdict != "ok")][:20][] | "   \(.path): \(.verdict): \(.reason)"' "$report"
jq -r '"== \(.verified) verified, \(.failed) failed"' "$report"
awk -v s="$start" -v e="$end" -v mb="$(du -sm "$MODULES" | cut -f1)" \
    'BEGIN { printf "   (%.2f s for %s MB of modules)\n", e - s, mb }'
exit "$status"
