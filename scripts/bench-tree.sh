#!/usr/bin/env bash
# Whole-tree speed, side by side in one hyperfine run (warm cache):
# `openssl dgst -sha256` over every module file against `modseal verify`
# with one job and with all cores.
#
#   scripts/bench-tree.sh [SUITE]    (default: bookworm; needs scripts/fetch-kernels.sh)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
suite=${1:-bookworm}
env_file=.cache/kernels/$suite/env
[ -f "$env_file" ] || { echo "bench-tree: $env_file missing: run scripts/fetch-kernels.sh $suite" >&2; exit 1; }
# shellcheck disable=SC1090
. "$env_file"
command -v hyperfine >/dev/null || { echo "bench-tree: hyperfine missing (scripts/setup.sh installs it)" >&2; exit 1; }

# The static tpm2-tss/OpenSSL that scripts/setup.sh builds (scripts/build-tss.sh).
# shellcheck disable=SC1091
. "$repo/.cache/tss-musl/env"
cargo build --release --locked --target x86_64-unknown-linux-musl >/dev/null
bin=$repo/target/x86_64-unknown-linux-musl/release/modseal
cert=.cache/kernels/$suite/signing-cert.pem
"$bin" keys from-kernel "$VMLINUZ" > "$cert" 2>/dev/null
list=$(mktemp)
trap 'rm -f "$list"' EXIT
find "$MODULES" -name '*.ko*' -type f -print0 > "$list"
echo "bench-tree: $suite $KVER: $(tr -cd '\0' < "$list" | wc -c) modules, $(du -sm "$MODULES" | cut -f1) MB, $(nproc) cores"

hyperfine --warmup 2 --runs "${RUNS:-10}" --export-markdown "${OUT:-/dev/stdout}" \
    -n 'openssl dgst -sha256' "xargs -0 openssl dgst -sha256 < $list > /dev/null" \
    -n 'modseal verify --jobs 1' "$bin verify --jobs 1 --trust $cert $MODULES > /dev/null" \
    -n 'modseal verify (all cores)' "$bin verify --trust $cert $MODULES > /dev/null"
