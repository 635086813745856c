#!/usr/bin/env bash
# The project's test command (README and .ci/run):
#   0. style: `cargo fmt --check` and `cargo clippy --all-targets -- -D warnings`
#      (the lints lib.rs denies are enforced only when clippy runs), and the
#      fuzz targets compile;
#   1. release build of the static musl binary, checked to be statically linked;
#   1b. the Debian package from it (scripts/build-deb.sh), linted (no lintian
#      error); in stage 3 tests/deb.rs installs it into a fresh bookworm root
#      and tests/mkosi_boot.rs into the mkosi image it boots (MODSEAL_DEB);
#   2. the fixture corpus (scripts/make-fixtures.sh) and its OpenSSL check;
#   3. `cargo test --release` (all tests) against that binary (MODSEAL_BIN);
#   4. every fuzz target for a bounded time, if fuzz/ has a cargo-fuzz project;
#   5. a summary.
# Runs scripts/setup.sh first (idempotent: packages, musl target, kernels),
# so on a fresh Debian 12 machine this one command sets up and tests.
# SKIP_SETUP=1 skips that step.
#
# Environment: FUZZ_SECONDS (default 60 per target; 0 skips fuzzing),
# MODSEAL_FIXTURES (default target/fixtures, remade on every run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
TARGET=x86_64-unknown-linux-musl
BIN=$repo/target/$TARGET/release/modseal
DEB_DIR=$repo/target/deb/pkg
export MODSEAL_FIXTURES=${MODSEAL_FIXTURES:-$repo/target/fixtures}
LOGS=$repo/target/test-logs
mkdir -p "$LOGS"

declare -a SUMMARY=()
failed=0

# stage NAME FUNCTION: run FUNCTION in a subshell with `set -e` in force,
# record its outcome and time, and go on with the next stage.
stage() {
    local name=$1 fn=$2 t0 rc
    t0=$(date +%s)
    echo
    echo "=== $name"
    set +e
    ( set -euo pipefail; "$fn" )
    rc=$?
    set -e
    local dt=$(( $(date +%s) - t0 ))
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("ok      $name (${dt}s)")
    else
        SUMMARY+=("FAILED  $name (${dt}s, exit $rc)")
        failed=$(( failed + 1 ))
    fi
    return 0
}

style() {
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings
    # The fuzz targets are a crate of their own: a library change that
    # breaks one must fail here, not twenty minutes later in the fuzz stage.
    if [ -f fuzz/Cargo.toml ]; then
        cargo check --manifest-path fuzz/Cargo.toml --bins
    fi
}

build_musl() {
    # shellcheck disable=SC1091
    . "$repo/.cache/tss-musl/env"
    cargo build --release --target "$TARGET"
    [ -x "$BIN" ] || { echo "no binary at $BIN" >&2; return 1; }
    local f l
    f=$(file -b "$BIN")
    l=$(ldd "$BIN" 2>&1 || true)
    echo "file: $f"
    echo "ldd: $l"
    case $f in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) echo "$BIN is not statically linked" >&2; return 1 ;;
    esac
    case $l in
        *"statically linked"* | *"not a dynamic executable"*) ;;
        *) echo "ldd lists shared libraries for $BIN" >&2; return 1 ;;
    esac
    echo "size: $(stat -c %s "$BIN") bytes"
}

package() {
    [ -x "$BIN" ] || { echo "no musl binary; the build stage failed" >&2; return 1; }
    local tool missing=()
    for tool in lintian debootstrap; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
    rm -rf "$DEB_DIR"
    "$repo/scripts/build-deb.sh" --binary "$BIN" --out "$DEB_DIR"
    local deb
    deb=$(find "$DEB_DIR" -name 'modseal_*_amd64.deb' | head -n 1)
    [ -n "$deb" ] || { echo "build-deb.sh made no package in $DEB_DIR" >&2; return 1; }
    dpkg-deb -c "$deb" > "$LOGS/deb-contents.txt"
    dpkg-deb -f "$deb" Installed-Size | sed 's/^/Installed-Size: /'
    lintian --fail-on error --pedantic --display-info "$deb" 2>&1 | tee "$LOGS/lintian.txt"
}

fixtures() {
    "$repo/scripts/make-fixtures.sh" "$MODSEAL_FIXTURES"
    "$repo/scripts/check-fixtures.sh" "$MODSEAL_FIXTURES" > "$LOGS/check-fixtures.txt"
    tail -n 1 "$LOGS/check-fixtures.txt"
}

cargo_tests() {
    [ -x "$BIN" ] || { echo "no musl binary; the build stage failed" >&2; return 1; }
    export MODSEAL_BIN=$BIN
    # tests/deb.rs and tests/mkosi_boot.rs (through mkosi/build.sh) install
    # the package the package stage built and linted (else each builds one
    # itself from MODSEAL_BIN).
    local deb
    deb=$(find "$DEB_DIR" -name 'modseal_*_amd64.deb' 2>/dev/null | head -n 1)
    [ -n "$deb" ] && export MODSEAL_DEB=$deb
    cargo test --release 2>&1 | tee "$LOGS/cargo-test.txt"
}

fuzz() {
    if [ ! -f fuzz/Cargo.toml ]; then
        echo "no fuzz/Cargo.toml: nothing to fuzz"
        return 0
    fi
    if [ "$FUZZ_SECONDS" = 0 ]; then
        echo "FUZZ_SECONDS=0: fuzzing skipped"
        return 0
    fi
    if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install --locked cargo-fuzz || cargo install cargo-fuzz
    fi
    local targets t bad=0
    targets=$(cargo +nightly fuzz list)
    [ -n "$targets" ] || { echo "cargo fuzz list: no targets" >&2; return 1; }
    for t in $targets; do
        echo "--- fuzz $t (${FUZZ_SECONDS}s)"
        local rc=0
        cargo +nightly fuzz run "$t" -- -max_total_time="$FUZZ_SECONDS" > "$LOGS/fuzz-$t.txt" 2>&1 || rc=$?
        grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|==[0-9]+== ?ERROR|SUMMARY)' "$LOGS/fuzz-$t.txt" || true
        if [ "$rc" -ne 0 ]; then
            echo "fuzz target $t failed (exit $rc); see $LOGS/fuzz-$t.txt" >&2
            tail -n 40 "$LOGS/fuzz-$t.txt" >&2
            bad=1
        fi
    done
    return "$bad"
}

t_start=$(date +%s)
if [ -z "${SKIP_SETUP:-}" ]; then
    "$repo/scripts/setup.sh"
fi
stage "style (fmt, clippy)" style
stage "build static musl binary" build_musl
stage "Debian package (build, lintian)" package
stage "fixture corpus" fixtures
stage "cargo test --release" cargo_tests
stage "fuzz (${FUZZ_SECONDS}s per target)" fuzz

passed_total=0
failed_total=0
if [ -f "$LOGS/cargo-test.txt" ]; then
    while read -r p f; do
        passed_total=$(( passed_total + p ))
        failed_total=$(( failed_total + f ))
    done < <(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$LOGS/cargo-test.txt")
fi

echo
echo "=== summary ($(( $(date +%s) - t_start ))s)"
printf '  %s\n' "${SUMMARY[@]}"
echo "  binary: $BIN"
echo "  fixtures: $MODSEAL_FIXTURES ($(( $(wc -l < "$MODSEAL_FIXTURES/cases.tsv" 2>/dev/null || echo 1) - 1 )) cases)"
echo "  logs: $LOGS"
echo "tests: $passed_total passed, $failed_total failed"
[ "$failed" -eq 0 ]
