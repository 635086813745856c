#!/usr/bin/env bash
# Compressed trees against the decompressors themselves, in one run (warm
# cache), printing two ratios:
#  (a) `modseal verify` (all cores) over the suite's `.ko.xz` tree against
#      `xz -dc` of every module piped into `sha256sum`;
#  (b) the same over a `.ko.zst` tree made the kernel's way (the signed
#      modules, decompressed and recompressed with Kbuild's
#      `zstd -T0 --rm -f -q`) against `zstd -dc | sha256sum`.
# Both references use `xargs -n 100 -P $(nproc)`, so they get every core.
# Runs alternate (reference, modseal, reference, ...) so that drift in the
# machine's load hits both sides; each ratio is of the medians.
#
#   scripts/bench-decompress.sh [SUITE]   (default: trixie; needs scripts/fetch-kernels.sh)
#   ROUNDS=N (default 7), MODSEAL_BIN=path (skip the release build)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
suite=${1:-trixie}
rounds=${ROUNDS:-7}
env_file=.cache/kernels/$suite/env
[ -f "$env_file" ] || { echo "bench-decompress: $env_file missing: run scripts/fetch-kernels.sh $suite" >&2; exit 1; }
# shellcheck disable=SC1090
. "$env_file"
for tool in hyperfine jq xz zstd sha256sum; do
    command -v "$tool" >/dev/null || { echo "bench-decompress: $tool missing" >&2; exit 1; }
done

if [ -n "${MODSEAL_BIN:-}" ]; then
    bin=$MODSEAL_BIN
else
    # The static tpm2-tss/OpenSSL that scripts/setup.sh builds (scripts/build-tss.sh).
    # shellcheck disable=SC1091
    . "$repo/.cache/tss-musl/env"
    cargo build --release --locked --target x86_64-unknown-linux-musl >/dev/null
    bin=${CARGO_TARGET_DIR:-$repo/target}/x86_64-unknown-linux-musl/release/modseal
fi
work=${CARGO_TARGET_DIR:-$repo/target}/bench-decompress/$suite
mkdir -p "$work"
cert=$work/signing-cert.pem
"$bin" keys from-kernel "$VMLINUZ" > "$cert" 2>/dev/null

xz_tree=$MODULES
n_xz=$(find "$xz_tree" -name '*.ko.xz' -type f | wc -l)
[ "$n_xz" -gt 0 ] || { echo "bench-decompress: no .ko.xz under $xz_tree" >&2; exit 1; }

# The .ko.zst tree, made once: Kbuild signs the plain .ko, then runs
# `zstd -T0 --rm -f -q` on it (scripts/Makefile.modinst), so the signature
# stays inside the compressed file.
zst_tree=$work/zst-tree
if [ ! -f "$work/zst-tree.done" ]; then
    echo "bench-decompress: making $zst_tree from $n_xz modules" >&2
    rm -rf "$zst_tree"
    (cd "$xz_tree" && find . -name '*.ko.xz' -type f -print0) |
        ZST_TREE=$zst_tree XZ_TREE=$xz_tree xargs -0 -n 50 -P "$(nproc)" sh -c '
            for f; do
                out=$ZST_TREE/${f%.xz}
                mkdir -p "$(dirname "$out")"
                xz -dc "$XZ_TREE/$f" > "$out"
                zstd -T0 --rm -f -q "$out"
            done' sh
    touch "$work/zst-tree.done"
fi

# One alternating round: one run of each command per hyperfine call.
# Arguments: name of the reference, the reference, name of modseal's, modseal's.
measure() {
    local tag=$1 ref_name=$2 ref=$3 ms_name=$4 ms=$5 i
    hyperfine --runs 1 --warmup 1 -N -n "$ref_name" "bash -c '$ref'" \
        -n "$ms_name" "bash -c '$ms'" --export-json "$work/$tag.0.json" --style none >/dev/null
    for i in $(seq 1 "$rounds"); do
        hyperfine --runs 1 --style none -N -n "$ref_name" "bash -c '$ref'" \
            -n "$ms_name" "bash -c '$ms'" --export-json "$work/$tag.$i.json" >/dev/null
    done
    jq -s -r --arg tag "$tag" '
        def median: sort | if length % 2 == 1 then .[length/2|floor]
                           else (.[length/2-1] + .[length/2]) / 2 end;
        [.[].results[]] | group_by(.command)
        | map({key: .[0].command, value: ([.[].times[]] | median)}) | from_entries
        | to_entries as $e
        | ($e[0].value) as $a | ($e[1].value) as $b
        | "\($tag): " + ($e | map("\(.key) \(.value * 1000 | round) ms") | join(", "))
          + ", ratio \(if ($e[0].key | startswith("modseal")) then $a / $b else $b / $a end * 100 | round / 100)"
    ' $(for i in $(seq 1 "$rounds"); do echo "$work/$tag.$i.json"; done)
}

n_zst=$(find "$zst_tree" -name '*.ko.zst' -type f | wc -l)
echo "bench-decompress: $suite $KVER: $n_xz .ko.xz, $n_zst .ko.zst, $(nproc) cores, $rounds rounds, binary $(stat -c %s "$bin") bytes"
measure xz \
    "xz -dc | sha256sum" "find $xz_tree -name \"*.ko.xz\" -print0 | xargs -0 -n 100 -P $(nproc) xz -dc | sha256sum" \
    "modseal verify (xz)" "$bin verify --trust $cert $xz_tree > /dev/null"
measure zst \
    "zstd -dc | sha256sum" "find $zst_tree -name \"*.ko.zst\" -print0 | xargs -0 -n 100 -P $(nproc) zstd -dc | sha256sum" \
    "modseal verify (zst)" "$bin verify --trust $cert $zst_tree > /dev/null"
