#!/usr/bin/env bash
# make-fixtures.sh OUTDIR — a corpus of signed (and mis-signed) kernel modules,
# made with the kernel's own scripts/sign-file and with `openssl cms`.
#
# Every case is made by one shell function, case_<name>; its commands are the
# recipe. The script writes:
#   OUTDIR/cases.tsv    header, then one row per case:
#                       name  module-file  trust-files  cert-files  expected-verdict  note
#                       (file lists comma-separated, relative to OUTDIR, "-" for none)
#   OUTDIR/recipes.sh   the helper and case functions as run (declare -f)
#   OUTDIR/modules/     the module files (all named *.ko, *.ko.gz, *.ko.xz, *.ko.zst)
#   OUTDIR/keys/        keys and certificates (PEM; a few DER)
#   OUTDIR/trust/       trust bundles
#   OUTDIR/work/        payloads and detached signatures used on the way
#
# Verdicts are those of DESIGN.md: ok, unsigned, unknown-key, bad-signature,
# malformed, unsupported-algorithm, denied, untrusted-chain.
#
# The set of cases and file names is the same on every run; keys are fresh.
# Environment: SIGN_FILE (default /usr/lib/linux-kbuild-6.1/scripts/sign-file),
# FIXTURES_NO_BOMB=1 leaves out the 2 GiB decompression bomb (saves ~10 s).
set -euo pipefail
export LC_ALL=C
# Bytes are written with printf "\\xHH" formats built on the fly:
# shellcheck disable=SC2059

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

SIGN_FILE=${SIGN_FILE:-/usr/lib/linux-kbuild-6.1/scripts/sign-file}
for tool in openssl gcc gzip xz zstd od dd head tail sha256sum cmp; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "make-fixtures: required tool '$tool' is missing (run scripts/setup.sh)" >&2
        exit 1
    }
done
[ -x "$SIGN_FILE" ] || {
    echo "make-fixtures: $SIGN_FILE missing (apt-get install linux-kbuild-6.1; see scripts/setup.sh)" >&2
    exit 1
}

start=$(date +%s)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
cd "$OUT"
rm -rf modules keys trust work cases.tsv cases.tsv.new recipes.sh
mkdir -p modules keys trust work

MAGIC='~Module signature appended~'   # followed by "\n"

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# row NAME MODULE TRUST CERTS VERDICT NOTE: one line of cases.tsv.
row() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >> cases.tsv.new
}

# be32 N: N as 4 big-endian bytes.
be32() {
    printf "\\x$(printf %02x $(( ($1 >> 24) & 255 )))\\x$(printf %02x $(( ($1 >> 16) & 255 )))"
    printf "\\x$(printf %02x $(( ($1 >> 8) & 255 )))\\x$(printf %02x $(( $1 & 255 )))"
}

# patch_byte IN OFFSET VALUE OUT: OUT = IN with the byte at OFFSET set to VALUE.
patch_byte() {
    python3 - "$@" <<'PY'
import sys
src, off, val, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
b = bytearray(open(src, 'rb').read())
b[off] = val
open(dst, 'wb').write(bytes(b))
PY
}

# patch_oid_last IN OID_HEX VALUE OUT: OUT = IN with the last arc byte of the
# (only) occurrence of the OID content OID_HEX set to VALUE.
patch_oid_last() {
    python3 - "$@" <<'PY'
import sys
src, oid, val, dst = sys.argv[1], bytes.fromhex(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
b = bytearray(open(src, 'rb').read())
assert b.count(oid) == 1, "OID must occur once"
b[b.index(oid) + len(oid) - 1] = val
open(dst, 'wb').write(bytes(b))
PY
}

# append_sig PAYLOAD P7 OUT [ALGO HASH ID_TYPE SIGNER_LEN KEY_ID_LEN PAD0 PAD1 PAD2 [SIG_LEN]]:
# OUT = PAYLOAD ‖ P7 ‖ struct module_signature ‖ magic, as sign-file writes it.
# The struct defaults to 00 00 02 00 00 00 00 00 + be32(size of P7).
append_sig() {
    local payload=$1 p7=$2 out=$3
    local algo=${4:-0} hash=${5:-0} id_type=${6:-2} signer_len=${7:-0} key_id_len=${8:-0}
    local pad0=${9:-0} pad1=${10:-0} pad2=${11:-0}
    local sig_len=${12:-$(stat -c %s "$p7")}
    {
        cat "$payload" "$p7"
        local b
        for b in "$algo" "$hash" "$id_type" "$signer_len" "$key_id_len" "$pad0" "$pad1" "$pad2"; do
            printf "\\x$(printf %02x "$b")"
        done
        be32 "$sig_len"
        printf '%s\n' "$MAGIC"
    } > "$out"
}

# split_sig SIGNED PAYLOAD_OUT P7_OUT: undo append_sig (well-formed input only).
split_sig() {
    local f=$1 payload=$2 p7=$3 size sig_len
    size=$(stat -c %s "$f")
    sig_len=$(be32_at_end "$f")
    head -c $(( size - 40 - sig_len )) "$f" > "$payload"
    tail -c $(( 40 + sig_len )) "$f" | head -c "$sig_len" > "$p7"
}

# be32_at_end FILE: the trailer's big-endian sig_len.
be32_at_end() {
    # shellcheck disable=SC2046
    set -- $(tail -c 32 "$1" | head -c 4 | od -An -tu1)
    echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
}

# flip FILE OFFSET: invert the byte at OFFSET (negative: from the end).
flip() {
    local f=$1 off=$2 size old
    size=$(stat -c %s "$f")
    [ "$off" -lt 0 ] && off=$(( size + off ))
    old=$(od -An -tu1 -j "$off" -N 1 "$f" | tr -d ' ')
    printf "\\x$(printf %02x $(( old ^ 255 )))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# cnf FILE CN EXTLINE…: an openssl req config shaped like the kernel's
# certs/default_x509.genkey, with the given lines in the extension section.
cnf() {
    local f=$1 cn=$2
    shift 2
    {
        echo "[ req ]"
        echo "default_bits = 2048"
        echo "distinguished_name = req_distinguished_name"
        echo "prompt = no"
        echo "string_mask = utf8only"
        echo "x509_extensions = myexts"
        echo "[ req_distinguished_name ]"
        echo "O = modseal fixtures"
        echo "CN = $cn"
        echo "emailAddress = fixtures@modseal.invalid"
        echo "[ myexts ]"
        printf '%s\n' "$@"
    } > "$f"
}

# The kernel's extensions (certs/default_x509.genkey).
KERNEL_EXTS=(
    "basicConstraints=critical,CA:FALSE"
    "keyUsage=digitalSignature"
    "subjectKeyIdentifier=hash"
    "authorityKeyIdentifier=keyid"
)
CA_EXTS=(
    "basicConstraints=critical,CA:TRUE"
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    "subjectKeyIdentifier=hash"
    "authorityKeyIdentifier=keyid"
)

# newkey_args ALG: openssl req -newkey arguments for rsa:BITS, ec:P-256, ec:P-384.
newkey_args() {
    case $1 in
        rsa:*) echo "-newkey $1" ;;
        ec:P-256) echo "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1" ;;
        ec:P-384) echo "-newkey ec -pkeyopt ec_paramgen_curve:secp384r1" ;;
        *) echo "make-fixtures: unknown key type $1" >&2; return 1 ;;
    esac
}

# selfsigned NAME ALG EXTLINE…: keys/NAME.key + keys/NAME.crt (self-signed).
selfsigned() {
    local name=$1 alg=$2
    shift 2
    cnf "work/$name.cnf" "modseal fixture $name" "$@"
    # shellcheck disable=SC2046
    openssl req -new -nodes -utf8 -x509 -days 36500 -config "work/$name.cnf" \
        $(newkey_args "$alg") -sha256 -keyout "keys/$name.key" -out "keys/$name.crt" 2>/dev/null
}

# issued NAME ALG ISSUER EXTLINE…: keys/NAME.key + keys/NAME.crt signed by keys/ISSUER.
issued() {
    local name=$1 alg=$2 issuer=$3
    shift 3
    cnf "work/$name.cnf" "modseal fixture $name" "$@"
    # shellcheck disable=SC2046
    openssl req -new -nodes -utf8 -config "work/$name.cnf" $(newkey_args "$alg") \
        -keyout "keys/$name.key" -out "work/$name.csr" 2>/dev/null
    openssl x509 -req -in "work/$name.csr" -days 36500 -sha256 \
        -CA "keys/$issuer.crt" -CAkey "keys/$issuer.key" -set_serial "0x$(openssl rand -hex 12)" \
        -extfile "work/$name.cnf" -extensions myexts -out "keys/$name.crt" 2>/dev/null
}

# skid NAME: subjectKeyIdentifier of keys/NAME.crt, lower-case hex, no colons.
skid() {
    openssl x509 -in "keys/$1.crt" -noout -ext subjectKeyIdentifier |
        sed -n '2p' | tr -d ' :\n' | tr 'A-F' 'a-f'
}

# serial NAME: serial of keys/NAME.crt as `openssl x509 -noout -serial` prints it.
serial() {
    openssl x509 -in "keys/$1.crt" -noout -serial | sed 's/^serial=//'
}

# bundle OUT DIRECTIVE-LINES CERT…: a modseal trust bundle.
bundle() {
    local out=$1 directives=$2
    shift 2
    {
        echo "# modseal trust bundle made by scripts/make-fixtures.sh"
        echo "modseal-trust-bundle v1"
        echo "# policy"
        [ -n "$directives" ] && printf '%s\n' "$directives"
        echo "# anchors"
        local c
        for c in "$@"; do cat "keys/$c.crt"; done
    } > "$out"
}

# sf HASH KEY IN OUT [-k]: sign with the kernel's sign-file (keys/KEY.{key,crt}).
sf() {
    local hash=$1 key=$2 in=$3 out=$4
    shift 4
    "$SIGN_FILE" "$@" "$hash" "keys/$key.key" "keys/$key.crt" "$in" "$out"
}

# cms_sig HASH KEY IN P7 [extra openssl cms args]: detached PKCS#7 DER, no certificates.
cms_sig() {
    local hash=$1 key=$2 in=$3 p7=$4
    shift 4
    openssl cms -sign -binary -nocerts -outform DER -md "$hash" \
        -signer "keys/$key.crt" -inkey "keys/$key.key" -in "$in" -out "$p7" "$@"
}

# ---------------------------------------------------------------------------
# Keys and payloads
# ---------------------------------------------------------------------------

make_keys() {
    selfsigned rsa2048 rsa:2048 "${KERNEL_EXTS[@]}"
    selfsigned rsa3072 rsa:3072 "${KERNEL_EXTS[@]}"
    selfsigned rsa4096 rsa:4096 "${KERNEL_EXTS[@]}"
    selfsigned ecp256 ec:P-256 "${KERNEL_EXTS[@]}"
    selfsigned ecp384 ec:P-384 "${KERNEL_EXTS[@]}"
    selfsigned rsa1024 rsa:1024 "${KERNEL_EXTS[@]}"
    selfsigned other rsa:2048 "${KERNEL_EXTS[@]}"
    selfsigned ku-keyenc rsa:2048 "basicConstraints=critical,CA:FALSE" \
        "keyUsage=keyEncipherment" "subjectKeyIdentifier=hash" "authorityKeyIdentifier=keyid"
    selfsigned eku-server rsa:2048 "${KERNEL_EXTS[@]}" "extendedKeyUsage=serverAuth"
    selfsigned eku-code rsa:2048 "${KERNEL_EXTS[@]}" "extendedKeyUsage=codeSigning"
    # A module-signing CA and a leaf it issued.
    selfsigned ca rsa:3072 "${CA_EXTS[@]}"
    issued ca-leaf rsa:2048 ca "${KERNEL_EXTS[@]}"
    # Root → intermediate → leaf (chain of depth 2 under the anchor).
    selfsigned root2 ec:P-384 "${CA_EXTS[@]}"
    issued inter2 ec:P-384 root2 "${CA_EXTS[@]}"
    issued leaf2 ec:P-256 inter2 "${KERNEL_EXTS[@]}"
    # DER copy of an anchor.
    openssl x509 -in keys/rsa2048.crt -outform DER -out keys/rsa2048.der
}

make_payloads() {
    cat > work/fixture.c <<'C'
/* A tiny stand-in for a kernel module: an ELF relocatable with a .modinfo. */
static const char modinfo_license[] __attribute__((section(".modinfo"), used)) = "license=GPL";
static const char modinfo_desc[] __attribute__((section(".modinfo"), used)) =
    "description=modseal test fixture";
int modseal_fixture_answer(int x) { return x * 6 + 7; }
const char modseal_fixture_name[] = "modseal fixture";
C
    gcc -O2 -c work/fixture.c -o work/small.o
    # About 1 MiB: the same code plus 1 MiB of random data in .rodata.
    head -c 1048576 /dev/urandom > work/big.bin
    cat > work/big.c <<'C'
static const char modinfo_license[] __attribute__((section(".modinfo"), used)) = "license=GPL";
__asm__(".section .rodata\n.globl modseal_fixture_blob\nmodseal_fixture_blob:\n.incbin \"big.bin\"\n.previous\n");
int modseal_fixture_big(int x) { return x + 1; }
C
    (cd work && gcc -O2 -c big.c -o big.o)
}

# ---------------------------------------------------------------------------
# Cases: each function is the recipe of its row(s).
# ---------------------------------------------------------------------------

# RSA × hash matrix, signed by sign-file.
case_rsa_matrix() {
    local bits hash
    for bits in 2048 3072 4096; do
        for hash in sha256 sha384 sha512 sha3-256 sha3-384 sha3-512; do
            sf "$hash" "rsa$bits" work/small.o "modules/rsa$bits-$hash.ko"
            row "rsa$bits-$hash" "modules/rsa$bits-$hash.ko" "keys/rsa$bits.crt" - ok \
                "sign-file $hash, RSA-$bits"
        done
    done
}

# ECDSA × hash matrix, signed by sign-file.
case_ec_matrix() {
    local curve hash
    for curve in p256 p384; do
        for hash in sha256 sha384 sha512; do
            sf "$hash" "ec$curve" work/small.o "modules/ec$curve-$hash.ko"
            row "ec$curve-$hash" "modules/ec$curve-$hash.ko" "keys/ec$curve.crt" - ok \
                "sign-file $hash, ECDSA $curve"
        done
    done
}

case_large() {
    sf sha512 rsa4096 work/big.o modules/large-rsa4096-sha512.ko
    row large-rsa4096-sha512 modules/large-rsa4096-sha512.ko keys/rsa4096.crt - ok \
        "~1 MiB payload, sign-file sha512, RSA-4096"
    sf sha384 ecp384 work/big.o modules/large-ecp384-sha384.ko
    row large-ecp384-sha384 modules/large-ecp384-sha384.ko keys/ecp384.crt - ok \
        "~1 MiB payload, sign-file sha384, ECDSA P-384"
}

case_skid() {
    sf sha256 rsa2048 work/small.o modules/skid-rsa2048-sha256.ko -k
    row skid-rsa2048-sha256 modules/skid-rsa2048-sha256.ko keys/rsa2048.crt - ok \
        "sign-file -k: signer named by subjectKeyIdentifier"
    sf sha384 ecp384 work/small.o modules/skid-ecp384-sha384.ko -k
    row skid-ecp384-sha384 modules/skid-ecp384-sha384.ko keys/ecp384.crt - ok \
        "sign-file -k, ECDSA P-384"
}

# The openssl cms route with a hand-made trailer (no attributes, like sign-file).
case_cms_noattr() {
    cms_sig sha256 rsa2048 work/small.o work/cms-rsa2048-sha256.p7 -noattr
    append_sig work/small.o work/cms-rsa2048-sha256.p7 modules/cms-rsa2048-sha256.ko
    row cms-rsa2048-sha256 modules/cms-rsa2048-sha256.ko keys/rsa2048.crt - ok \
        "openssl cms -sign -noattr, trailer appended by hand"
    cms_sig sha3-256 rsa3072 work/small.o work/cms-rsa3072-sha3-256.p7 -noattr
    append_sig work/small.o work/cms-rsa3072-sha3-256.p7 modules/cms-rsa3072-sha3-256.ko
    row cms-rsa3072-sha3-256 modules/cms-rsa3072-sha3-256.ko keys/rsa3072.crt - ok \
        "openssl cms -sign -noattr -md sha3-256, trailer appended by hand"
    cms_sig sha256 ecp256 work/small.o work/cms-ecp256-sha256.p7 -noattr
    append_sig work/small.o work/cms-ecp256-sha256.p7 modules/cms-ecp256-sha256.ko
    row cms-ecp256-sha256 modules/cms-ecp256-sha256.ko keys/ecp256.crt - ok \
        "openssl cms -sign -noattr, ECDSA P-256"
}

# Signed attributes (contentType, signingTime, messageDigest, sMIMECapabilities).
# The kernel refuses them in a module signature before it looks at the signer
# (pkcs7_verify(): "Invalid module sig (has authattrs)", -EKEYREJECTED), so
# these are bad-signature although each signature is sound; OpenSSL verifies
# the first two (check-fixtures.sh and tests/corpus.rs expect that difference).
case_signed_attrs() {
    cms_sig sha256 rsa2048 work/small.o work/attrs-rsa2048-sha256.p7
    append_sig work/small.o work/attrs-rsa2048-sha256.p7 modules/attrs-rsa2048-sha256.ko
    row attrs-rsa2048-sha256 modules/attrs-rsa2048-sha256.ko keys/rsa2048.crt - bad-signature \
        "openssl cms -sign with signed attributes (the kernel refuses them)"
    cms_sig sha384 ecp384 work/small.o work/attrs-ecp384-sha384.p7
    append_sig work/small.o work/attrs-ecp384-sha384.p7 modules/attrs-ecp384-sha384.ko
    row attrs-ecp384-sha384 modules/attrs-ecp384-sha384.ko keys/ecp384.crt - bad-signature \
        "openssl cms -sign with signed attributes, ECDSA P-384 (the kernel refuses them)"
    # Same signature, payload changed: messageDigest no longer matches.
    cp work/small.o work/attrs-flipped.o
    flip work/attrs-flipped.o 64
    append_sig work/attrs-flipped.o work/attrs-rsa2048-sha256.p7 modules/attrs-payload-flip.ko
    row attrs-payload-flip modules/attrs-payload-flip.ko keys/rsa2048.crt - bad-signature \
        "signed attributes; payload byte 64 flipped after signing (refused for the attributes before the messageDigest is compared)"
}

# Compressed the kernel's way: sign, then compress.
case_compressed() {
    sf sha256 rsa2048 work/small.o work/comp.ko
    gzip -9 -n -c work/comp.ko > modules/comp-rsa2048-sha256.ko.gz
    row comp-gz modules/comp-rsa2048-sha256.ko.gz keys/rsa2048.crt - ok "signed, then gzip -9"
    xz --check=crc32 --lzma2=dict=1MiB -c work/comp.ko > modules/comp-rsa2048-sha256.ko.xz
    row comp-xz modules/comp-rsa2048-sha256.ko.xz keys/rsa2048.crt - ok \
        "signed, then xz --check=crc32 --lzma2=dict=1MiB"
    zstd -q -19 -c work/comp.ko > modules/comp-rsa2048-sha256.ko.zst
    row comp-zst modules/comp-rsa2048-sha256.ko.zst keys/rsa2048.crt - ok "signed, then zstd -19"
    sf sha384 ecp384 work/big.o work/comp-large.ko
    xz --check=crc32 --lzma2=dict=1MiB -c work/comp-large.ko > modules/comp-large-ecp384.ko.xz
    row comp-large-xz modules/comp-large-ecp384.ko.xz keys/ecp384.crt - ok \
        "~1 MiB payload, signed (ECDSA P-384), then xz like Debian trixie"
    # Corrupted xz: one byte flipped in the middle of the compressed stream.
    cp modules/comp-large-ecp384.ko.xz modules/corrupt-xz.ko.xz
    flip modules/corrupt-xz.ko.xz $(( $(stat -c %s modules/corrupt-xz.ko.xz) / 2 ))
    row corrupt-xz modules/corrupt-xz.ko.xz keys/ecp384.crt - malformed \
        "byte flipped in the middle of the xz stream"
    # Unsigned module, compressed.
    zstd -q -c work/small.o > modules/unsigned.ko.zst
    row unsigned-zst modules/unsigned.ko.zst keys/rsa2048.crt - unsigned "no signature, zstd"
}

case_bomb() {
    if [ -n "${FIXTURES_NO_BOMB:-}" ]; then return 0; fi
    # 2 GiB of zeros in ~300 KiB of xz.
    head -c 2G /dev/zero | xz -T1 -0 --check=crc32 > modules/bomb.ko.xz
    row bomb-xz modules/bomb.ko.xz keys/rsa2048.crt - malformed \
        "decompression bomb: 2 GiB of zeros"
}

# A module-signing CA: the leaf is trusted through a chain to the anchor.
case_chains() {
    sf sha256 ca-leaf work/small.o modules/ca-leaf.ko
    row ca-leaf modules/ca-leaf.ko keys/ca.crt keys/ca-leaf.crt ok \
        "CA as anchor, CA-issued leaf given with --cert"
    row ca-leaf-no-cert modules/ca-leaf.ko keys/ca.crt - unknown-key \
        "CA as anchor, leaf certificate not given"
    row ca-leaf-no-anchor modules/ca-leaf.ko keys/rsa2048.crt keys/ca-leaf.crt untrusted-chain \
        "leaf given with --cert, its CA not among the anchors"
    row ca-leaf-as-anchor modules/ca-leaf.ko keys/ca-leaf.crt - ok \
        "the CA-issued leaf itself as the anchor"
    sf sha256 leaf2 work/small.o modules/chain2.ko
    row chain2 modules/chain2.ko keys/root2.crt keys/inter2.crt,keys/leaf2.crt ok \
        "root (anchor) -> intermediate -> leaf, ECDSA"
    row chain2-no-intermediate modules/chain2.ko keys/root2.crt keys/leaf2.crt untrusted-chain \
        "root (anchor) and leaf, intermediate missing"
    row chain2-intermediate-anchor modules/chain2.ko keys/inter2.crt keys/leaf2.crt ok \
        "the intermediate CA as the anchor"
}

# Trust given as files of other shapes.
case_trust_forms() {
    sf sha256 rsa2048 work/small.o modules/trust-forms.ko
    row trust-der modules/trust-forms.ko keys/rsa2048.der - ok "anchor as a DER certificate"
    cat keys/other.crt keys/eku-code.crt keys/rsa2048.crt > trust/multi.pem
    row trust-multi-pem modules/trust-forms.ko trust/multi.pem - ok \
        "anchor third in a PEM file of three certificates"
    row trust-two-files modules/trust-forms.ko keys/other.crt,keys/rsa2048.crt - ok \
        "two --trust files, anchor in the second"
}

# Trust bundles with policy.
case_bundles() {
    sf sha256 rsa2048 work/small.o modules/bundle.ko
    bundle trust/plain.bundle "" rsa2048 other
    row bundle-ok modules/bundle.ko trust/plain.bundle - ok "trust bundle, no policy lines"
    bundle trust/deny-other.bundle "deny-key-id $(skid other)
deny-serial $(serial other)" rsa2048
    row bundle-deny-unrelated modules/bundle.ko trust/deny-other.bundle - ok \
        "bundle denying another key's key id and serial"
    bundle trust/deny-key-id.bundle "deny-key-id $(skid rsa2048)" rsa2048
    row bundle-deny-key-id modules/bundle.ko trust/deny-key-id.bundle - denied \
        "bundle: deny-key-id = signer's subjectKeyIdentifier"
    # sign-file without -k names the signer by issuer and serial; verify
    # prints that serial as key_id, and a deny-key-id of it denies.
    bundle trust/deny-key-id-serial.bundle "deny-key-id $(serial rsa2048)" rsa2048
    row bundle-deny-key-id-serial modules/bundle.ko trust/deny-key-id-serial.bundle - denied \
        "bundle: deny-key-id = the serial an issuer+serial signature names (verify's key_id)"
    bundle trust/deny-serial.bundle "deny-serial $(serial rsa2048)" rsa2048
    row bundle-deny-serial modules/bundle.ko trust/deny-serial.bundle - denied \
        "bundle: deny-serial = signer certificate's serial"
    bundle trust/deny-module.bundle "deny-module-sha256 $(sha256sum modules/bundle.ko | cut -d' ' -f1)" rsa2048
    row bundle-deny-module modules/bundle.ko trust/deny-module.bundle - denied \
        "bundle: deny-module-sha256 = SHA-256 of the module file"
    # A module the deny-module line does not name passes.
    sf sha256 rsa2048 work/big.o modules/bundle-other-module.ko
    row bundle-deny-module-other modules/bundle-other-module.ko trust/deny-module.bundle - ok \
        "bundle with deny-module-sha256 of another module"
    # The file hash changes with recompression or bytes outside what is
    # signed; the decompressed module's and the signed content's do not.
    gzip -9 -n -c modules/bundle.ko > modules/bundle-recompressed.ko.gz
    row bundle-deny-module-recompressed modules/bundle-recompressed.ko.gz trust/deny-module.bundle - denied \
        "deny-module-sha256 of the .ko file still denies it gzipped"
    split_sig modules/bundle.ko work/bundle.payload work/bundle.p7
    bundle trust/deny-payload.bundle "deny-module-sha256 $(sha256sum work/bundle.payload | cut -d' ' -f1)" rsa2048
    { cat work/bundle.p7; printf 'JUNK'; } > work/bundle-junk.p7
    append_sig work/bundle.payload work/bundle-junk.p7 modules/bundle-junk.ko
    row bundle-deny-payload-junk modules/bundle-junk.ko trust/deny-payload.bundle - denied \
        "deny-module-sha256 of the signed content denies a copy with bytes added after the PKCS#7"
    sf sha256 ca-leaf work/small.o modules/bundle-ca-leaf.ko
    bundle trust/ca.bundle "" ca
    row bundle-ca-leaf modules/bundle-ca-leaf.ko trust/ca.bundle keys/ca-leaf.crt ok \
        "bundle with the CA as anchor, leaf with --cert"
    bundle trust/ca-deny-leaf.bundle "deny-key-id $(skid ca-leaf)" ca
    row bundle-ca-deny-leaf modules/bundle-ca-leaf.ko trust/ca-deny-leaf.bundle keys/ca-leaf.crt denied \
        "bundle with the CA as anchor, deny-key-id of the leaf (the signer)"
}

# Key usage and extended key usage.
case_usage() {
    sf sha256 ku-keyenc work/small.o modules/ku-keyenc.ko
    row ku-keyenc modules/ku-keyenc.ko keys/ku-keyenc.crt - untrusted-chain \
        "keyUsage keyEncipherment only (no digitalSignature)"
    sf sha256 eku-server work/small.o modules/eku-server.ko
    row eku-server modules/eku-server.ko keys/eku-server.crt - untrusted-chain \
        "extendedKeyUsage serverAuth only"
    sf sha256 eku-code work/small.o modules/eku-code.ko
    row eku-code modules/eku-code.ko keys/eku-code.crt - ok "extendedKeyUsage codeSigning"
}

# Keys and algorithms that must not verify.
case_rejects() {
    sf sha256 rsa2048 work/small.o modules/wrong-key.ko
    row wrong-key modules/wrong-key.ko keys/other.crt - unknown-key \
        "signed by key A (rsa2048), only cert B (other) trusted"
    sf sha256 rsa2048 work/small.o modules/wrong-key-skid.ko -k
    row wrong-key-skid modules/wrong-key-skid.ko keys/other.crt - unknown-key \
        "signed by key A by SKID, only cert B trusted"
    cp work/small.o modules/unsigned.ko
    row unsigned modules/unsigned.ko keys/rsa2048.crt - unsigned "plain ELF, no signature"
    sf sha1 rsa2048 work/small.o modules/rsa2048-sha1.ko
    row rsa2048-sha1 modules/rsa2048-sha1.ko keys/rsa2048.crt - unsupported-algorithm \
        "sign-file sha1"
    sf sha1 ecp256 work/small.o modules/ecp256-sha1.ko
    row ecp256-sha1 modules/ecp256-sha1.ko keys/ecp256.crt - unsupported-algorithm \
        "sign-file sha1, ECDSA P-256"
    sf sha224 rsa2048 work/small.o modules/rsa2048-sha224.ko
    row rsa2048-sha224 modules/rsa2048-sha224.ko keys/rsa2048.crt - unsupported-algorithm \
        "sign-file sha224: not in DESIGN.md's list (the kernel would accept it)"
    sf sha256 rsa1024 work/small.o modules/rsa1024-sha256.ko
    row rsa1024-sha256 modules/rsa1024-sha256.ko keys/rsa1024.crt - unsupported-algorithm \
        "RSA-1024 key"
    echo "this is not a kernel module" > modules/text.ko
    row text-file modules/text.ko keys/rsa2048.crt - unsigned "a text file named .ko"
}

# Broken trailers, all derived from one good RSA-2048/SHA-256 module.
case_trailers() {
    sf sha256 rsa2048 work/small.o work/base.ko
    split_sig work/base.ko work/base.payload work/base.p7
    local size p7len
    size=$(stat -c %s work/base.ko)
    p7len=$(stat -c %s work/base.p7)

    # Bytes after the DER ContentInfo but inside sig_len: the kernel's ASN.1
    # decoder stops at the end of the top-level element and loads the module.
    { cat work/base.p7; printf 'JUNK'; } > work/base-junk.p7
    append_sig work/base.payload work/base-junk.p7 modules/trailer-junk-after-p7.ko
    row trailer-junk-after-p7 modules/trailer-junk-after-p7.ko keys/rsa2048.crt - ok \
        "4 bytes after the PKCS#7 DER inside sig_len (ignored, as by the kernel)"

    # SignedData version 3 with a version-1 (issuer+serial) SignerInfo: the
    # kernel's pkcs7_note_signerinfo_version() refuses the mismatch. The
    # version is outside what the signature covers. Offsets: ContentInfo
    # SEQUENCE (4) + OID (11) + [0] (4) + SignedData SEQUENCE (4) + 02 01.
    patch_byte work/base.p7 25 3 work/sdv3.p7
    append_sig work/base.payload work/sdv3.p7 modules/pkcs7-sd-v3-si-v1.ko
    row pkcs7-sd-v3-si-v1 modules/pkcs7-sd-v3-si-v1.ko keys/rsa2048.crt - malformed \
        "SignedData version 3 with a version 1 SignerInfo"
    # sha256WithRSAEncryption instead of rsaEncryption as the SignerInfo's
    # signature algorithm (unsigned bytes): the kernel takes only rsaEncryption.
    patch_oid_last work/base.p7 "2a864886f70d010101" 11 work/rsaoid.p7
    append_sig work/base.payload work/rsaoid.p7 modules/pkcs7-sha256withrsa-oid.ko
    row pkcs7-sha256withrsa-oid modules/pkcs7-sha256withrsa-oid.ko keys/rsa2048.crt - unsupported-algorithm \
        "SignerInfo signatureAlgorithm sha256WithRSAEncryption (kernel: rsaEncryption only)"

    append_sig work/base.payload work/base.p7 modules/trailer-siglen-huge.ko 0 0 2 0 0 0 0 0 $(( size + 1 ))
    row trailer-siglen-huge modules/trailer-siglen-huge.ko keys/rsa2048.crt - malformed \
        "sig_len larger than the file"
    append_sig work/base.payload work/base.p7 modules/trailer-siglen-max.ko 0 0 2 0 0 0 0 0 4294967295
    row trailer-siglen-max modules/trailer-siglen-max.ko keys/rsa2048.crt - malformed \
        "sig_len 0xffffffff"
    append_sig work/base.payload work/base.p7 modules/trailer-siglen-zero.ko 0 0 2 0 0 0 0 0 0
    row trailer-siglen-zero modules/trailer-siglen-zero.ko keys/rsa2048.crt - malformed "sig_len 0"
    append_sig work/base.payload work/base.p7 modules/trailer-siglen-short.ko 0 0 2 0 0 0 0 0 $(( p7len - 1 ))
    row trailer-siglen-short modules/trailer-siglen-short.ko keys/rsa2048.crt - malformed \
        "sig_len one less than the PKCS#7 size (blob misaligned)"
    append_sig work/base.payload work/base.p7 modules/trailer-id-type-0.ko 0 0 0
    row trailer-id-type-0 modules/trailer-id-type-0.ko keys/rsa2048.crt - malformed \
        "id_type 0 (PKEY_ID_PGP)"
    append_sig work/base.payload work/base.p7 modules/trailer-id-type-1.ko 0 0 1
    row trailer-id-type-1 modules/trailer-id-type-1.ko keys/rsa2048.crt - malformed \
        "id_type 1 (PKEY_ID_X509)"
    append_sig work/base.payload work/base.p7 modules/trailer-algo.ko 1 0 2
    row trailer-algo modules/trailer-algo.ko keys/rsa2048.crt - malformed "algo byte 1"
    append_sig work/base.payload work/base.p7 modules/trailer-hash.ko 0 4 2
    row trailer-hash modules/trailer-hash.ko keys/rsa2048.crt - malformed "hash byte 4"
    append_sig work/base.payload work/base.p7 modules/trailer-signer-len.ko 0 0 2 5
    row trailer-signer-len modules/trailer-signer-len.ko keys/rsa2048.crt - malformed "signer_len 5"
    append_sig work/base.payload work/base.p7 modules/trailer-key-id-len.ko 0 0 2 0 8
    row trailer-key-id-len modules/trailer-key-id-len.ko keys/rsa2048.crt - malformed "key_id_len 8"
    append_sig work/base.payload work/base.p7 modules/trailer-pad0.ko 0 0 2 0 0 1 0 0
    row trailer-pad0 modules/trailer-pad0.ko keys/rsa2048.crt - malformed "__pad[0] = 1"
    append_sig work/base.payload work/base.p7 modules/trailer-pad2.ko 0 0 2 0 0 0 0 128
    row trailer-pad2 modules/trailer-pad2.ko keys/rsa2048.crt - malformed "__pad[2] = 0x80"
    head -c $(( size - 1 )) work/base.ko > modules/trailer-magic-truncated.ko
    row trailer-magic-truncated modules/trailer-magic-truncated.ko keys/rsa2048.crt - unsigned \
        "last byte of the magic (the newline) missing"
    tail -c 30 work/base.ko > modules/trailer-short-file.ko
    row trailer-short-file modules/trailer-short-file.ko keys/rsa2048.crt - malformed \
        "30 bytes: the magic and 2 bytes of the struct, file shorter than the trailer"
    printf '%s\n' "$MAGIC" > modules/trailer-magic-only.ko
    row trailer-magic-only modules/trailer-magic-only.ko keys/rsa2048.crt - malformed \
        "the magic alone (28 bytes)"
    : > modules/empty.ko
    row empty modules/empty.ko keys/rsa2048.crt - unsigned "empty file: no magic, so no signature"
    head -c "$p7len" /dev/urandom > work/random.p7
    append_sig work/base.payload work/random.p7 modules/p7-random.ko
    row p7-random modules/p7-random.ko keys/rsa2048.crt - malformed \
        "PKCS#7 blob replaced by random bytes of the same length"
    head -c $(( p7len - 1 )) work/base.p7 > work/truncated.p7
    append_sig work/base.payload work/truncated.p7 modules/p7-truncated.ko
    row p7-truncated modules/p7-truncated.ko keys/rsa2048.crt - malformed \
        "PKCS#7 truncated by one byte, sig_len adjusted"
}

# Tampering after signing.
case_tamper() {
    sf sha256 rsa2048 work/small.o modules/payload-flip.ko
    flip modules/payload-flip.ko 100
    row payload-flip modules/payload-flip.ko keys/rsa2048.crt - bad-signature \
        "payload byte 100 flipped after signing"
    sf sha512 rsa4096 work/big.o modules/large-payload-flip.ko
    flip modules/large-payload-flip.ko 524288
    row large-payload-flip modules/large-payload-flip.ko keys/rsa4096.crt - bad-signature \
        "~1 MiB payload, byte 512 KiB flipped after signing"
    sf sha256 rsa2048 work/small.o modules/sigvalue-flip.ko
    flip modules/sigvalue-flip.ko -41
    row sigvalue-flip modules/sigvalue-flip.ko keys/rsa2048.crt - bad-signature \
        "last byte of the PKCS#7 (RSA signature value) flipped"
    sf sha256 ecp256 work/small.o modules/ec-sigvalue-flip.ko
    flip modules/ec-sigvalue-flip.ko -41
    row ec-sigvalue-flip modules/ec-sigvalue-flip.ko keys/ecp256.crt - bad-signature \
        "last byte of the PKCS#7 (ECDSA s) flipped"
    sf sha256 rsa2048 work/small.o work/compflip.ko
    flip work/compflip.ko 100
    xz --check=crc32 --lzma2=dict=1MiB -c work/compflip.ko > modules/payload-flip.ko.xz
    row payload-flip-xz modules/payload-flip.ko.xz keys/rsa2048.crt - bad-signature \
        "payload byte flipped after signing, then xz"
}

# ---------------------------------------------------------------------------

printf 'name\tmodule-file\ttrust-files\tcert-files\texpected-verdict\tnote\n' > cases.tsv.new
make_keys
make_payloads
CASES=(case_rsa_matrix case_ec_matrix case_large case_skid case_cms_noattr case_signed_attrs
       case_compressed case_bomb case_chains case_trust_forms case_bundles case_usage
       case_rejects case_trailers case_tamper)
for c in "${CASES[@]}"; do "$c"; done

# Every file named in the table must exist.
tail -n +2 cases.tsv.new | while IFS=$'\t' read -r name module trust certs _verdict _note; do
    for f in $module ${trust//,/ } ${certs//,/ }; do
        [ "$f" = - ] && continue
        [ -e "$f" ] || { echo "make-fixtures: $name: $f missing" >&2; exit 1; }
    done
done
# Names must be unique.
dups=$(tail -n +2 cases.tsv.new | cut -f1 | sort | uniq -d)
[ -z "$dups" ] || { echo "make-fixtures: duplicate case names: $dups" >&2; exit 1; }
mv cases.tsv.new cases.tsv

{
    echo "#!/usr/bin/env bash"
    echo "# The functions scripts/make-fixtures.sh ran to make this corpus (declare -f)."
    echo "# sign-file: $SIGN_FILE; $(openssl version)"
    declare -f row be32 append_sig split_sig be32_at_end flip cnf newkey_args selfsigned issued skid serial \
        bundle sf cms_sig make_keys make_payloads "${CASES[@]}"
} > recipes.sh

n=$(( $(wc -l < cases.tsv) - 1 ))
echo "make-fixtures: $n cases, $(find modules -type f | wc -l) module files in $OUT ($(( $(date +%s) - start )) s)"
