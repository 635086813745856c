#!/usr/bin/env bash
# check-fixtures.sh OUTDIR — check a corpus made by make-fixtures.sh with
# OpenSSL alone: for each case, cut the trailer off (decompressing first), then
#   1. openssl cms -verify -binary -inform DER -in SIG -content PAYLOAD \
#          -nointern -noverify -certfile TRUST+CERTS -signer SIGNER.pem
#      (the signature, with the signer looked up among the given certificates)
#   2. openssl verify -partial_chain -purpose any -CAfile TRUST \
#          -untrusted CERTS SIGNER.pem
#      (the signer's chain to an anchor; any anchor may be a leaf or an
#      intermediate, as in modseal: hence -partial_chain)
# and print OpenSSL's ok/fail beside the expected verdict. Two steps because
# `openssl cms -verify` builds chains only from certificates inside the
# message, never from -certfile (there is no -untrusted for cms in 3.0). OpenSSL does not
# know the kernel's trailer rules, algorithm policy, key usage rules or the
# trust bundle's deny lines, so those rows are expected to differ; the table
# marks every difference with "differs" and tests/corpus.rs names the expected
# ones. One kernel rule is named here as well: a module signature with signed
# attributes (attrs-*) is refused by the kernel (pkcs7_verify(): "has
# authattrs") and so by modseal, while OpenSSL verifies it; such a row is
# marked "differs (expected: ...)", and an attrs-* row that OpenSSL verifies but
# the table expects ok is marked "differs (modseal must refuse: ...)".
# Exit status: 0 (this script only reports).
set -euo pipefail
export LC_ALL=C

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
cd "$1"
[ -f cases.tsv ] || { echo "check-fixtures: no cases.tsv in $1" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MAGIC='~Module signature appended~'
LIMIT=$(( 64 << 20 ))
printf '%s\n' "$MAGIC" > "$tmp/magic"

# be32_at_end FILE: the big-endian u32 sig_len of the trailer.
be32_at_end() {
    local b
    # shellcheck disable=SC2046
    set -- $(tail -c 32 "$1" | head -c 4 | od -An -tu1)
    b=$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
    echo "$b"
}

# pem FILE…: every certificate in the files as PEM (DER files converted).
pem() {
    local f
    for f in "$@"; do
        if grep -q -- '-----BEGIN' "$f"; then
            cat "$f"
        else
            openssl x509 -inform DER -in "$f"
        fi
    done
}

# openssl_verdict MODULE TRUST CERTS: "ok" or "fail:<why>".
openssl_verdict() {
    local module=$1 trust=$2 certs=$3 raw=$tmp/raw size sig_len
    case $module in
        *.gz) (gzip -dc "$module" 2>/dev/null || true) | head -c $(( LIMIT + 1 )) > "$raw" ;;
        *.xz) (xz -dc "$module" 2>/dev/null || true) | head -c $(( LIMIT + 1 )) > "$raw" ;;
        *.zst) (zstd -dc "$module" 2>/dev/null || true) | head -c $(( LIMIT + 1 )) > "$raw" ;;
        *) cp "$module" "$raw" ;;
    esac
    size=$(stat -c %s "$raw")
    [ "$size" -le "$LIMIT" ] || { echo "fail:too-large"; return; }
    [ "$size" -ge 40 ] || { echo "fail:short"; return; }
    tail -c 28 "$raw" | cmp -s - "$tmp/magic" || { echo "fail:no-magic"; return; }
    sig_len=$(be32_at_end "$raw")
    [ "$sig_len" -gt 0 ] && [ "$sig_len" -le $(( size - 40 )) ] || { echo "fail:sig_len"; return; }
    head -c $(( size - 40 - sig_len )) "$raw" > "$tmp/payload"
    tail -c $(( 40 + sig_len )) "$raw" | head -c "$sig_len" > "$tmp/sig"
    local -a tf cf
    IFS=, read -r -a tf <<< "$trust"
    pem "${tf[@]}" > "$tmp/ca.pem"
    : > "$tmp/certs.pem"
    if [ "$certs" != - ]; then
        IFS=, read -r -a cf <<< "$certs"
        pem "${cf[@]}" > "$tmp/certs.pem"
    fi
    cat "$tmp/ca.pem" "$tmp/certs.pem" > "$tmp/all.pem"
    rm -f "$tmp/signer.pem"
    if ! openssl cms -verify -binary -inform DER -in "$tmp/sig" -content "$tmp/payload" \
        -nointern -noverify -certfile "$tmp/all.pem" -signer "$tmp/signer.pem" \
        -out /dev/null > "$tmp/err" 2>&1; then
        echo "fail:cms:$(reason "$tmp/err")"
        return
    fi
    local -a untrusted=()
    [ -s "$tmp/certs.pem" ] && untrusted=(-untrusted "$tmp/certs.pem")
    if openssl verify -partial_chain -purpose any -CAfile "$tmp/ca.pem" "${untrusted[@]}" \
        "$tmp/signer.pem" > "$tmp/err" 2>&1; then
        echo ok
    else
        echo "fail:chain:$(sed -n 's/^error [0-9]* at [0-9]* depth lookup: //p' "$tmp/err" | head -n1 | tr ' ' _)"
    fi
}

# reason ERRFILE: the reason text of OpenSSL's first error line.
reason() {
    sed -n 's/^[0-9A-F]*:error:[0-9A-F]*:[^:]*:[^:]*:\([^:]*\):.*/\1/p' "$1" | head -n1 | tr ' ' _
}

# signed_attrs_mark NAME VERDICT OPENSSL: the mark of an attrs-* row that
# OpenSSL verifies, else nothing.
SIGNED_ATTRS="the kernel refuses signed attributes in module signatures (pkcs7_verify: has authattrs)"
signed_attrs_mark() {
    case $1 in attrs-*) ;; *) return 0 ;; esac
    [ "$3" = ok ] || return 0
    if [ "$2" = bad-signature ]; then
        echo "differs (expected: $SIGNED_ATTRS)"
    else
        echo "differs (modseal must refuse: $SIGNED_ATTRS)"
    fi
}

agree=0
differ=0
expected=0
printf '%-28s %-22s %-36s %s\n' CASE EXPECTED OPENSSL ""
while IFS=$'\t' read -r name module trust certs verdict _note; do
    [ "$name" = name ] && continue
    o=$(openssl_verdict "$module" "$trust" "$certs")
    mark=$(signed_attrs_mark "$name" "$verdict" "$o")
    if [ -n "$mark" ]; then
        differ=$(( differ + 1 ))
        case $mark in "differs (expected:"*) expected=$(( expected + 1 )) ;; esac
    elif { [ "$verdict" = ok ] && [ "$o" = ok ]; } || { [ "$verdict" != ok ] && [ "$o" != ok ]; }; then
        agree=$(( agree + 1 ))
    else
        differ=$(( differ + 1 ))
        mark=differs
    fi
    printf '%-28s %-22s %-36s %s\n' "$name" "$verdict" "$o" "$mark"
done < cases.tsv
echo "check-fixtures: $agree agree with openssl cms -verify, $differ differ ($expected for signed attributes, as expected)"
