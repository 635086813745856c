#!/bin/sh
# Seed corpora for the fuzz targets, made by the real tools the way Kbuild
# runs them (needs gzip, xz-utils, zstd, lz4, openssl). Re-runnable; the
# corpora are not committed.
#   sh fuzz/make-seeds.sh && cd fuzz && cargo +nightly fuzz run decompress
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# decompress: one small stream per format and framing option.
d="$here/corpus/decompress"
mkdir -p "$d"
head -c 3000 "$here/../src/image/decompress.rs" > "$tmp/plain"
gzip -9 -n -c "$tmp/plain" > "$d/gzip"
xz --check=crc32 --lzma2=dict=1MiB -c "$tmp/plain" > "$d/xz-module"
xz --check=crc32 --x86 --lzma2=dict=1MiB -c "$tmp/plain" > "$d/xz-x86"
xz -c "$tmp/plain" > "$d/xz-crc64"
zstd -q -c "$tmp/plain" > "$d/zstd"
lz4 -l -9 -c "$tmp/plain" > "$d/lz4-legacy"
lz4 -c "$tmp/plain" > "$d/lz4-frame"
lz4 -BD -BX --content-size -c "$tmp/plain" > "$d/lz4-frame-linked"

# kernel_image: a vmlinux stand-in holding one certificate, bare and inside
# bzImages with each payload compression plus Kbuild's size_append.
k="$here/corpus/kernel_image"
mkdir -p "$k"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj /CN=fuzz -keyout /dev/null -outform DER > "$tmp/cert.der" 2>/dev/null
{ printf '\177ELF'; head -c 60 /dev/zero; cat "$tmp/cert.der"; head -c 100 /dev/zero; } > "$k/vmlinux"

# u32 little-endian, as raw bytes.
le32() {
    printf "$(printf '\\%03o\\%03o\\%03o\\%03o' \
        $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"
}

# bzImage with setup_sects=4, protocol 2.15, payload at offset 0x40 of the
# protected-mode code (which starts at (4+1)*512).
bzimage() {
    payload=$1
    len=$(wc -c < "$payload")
    head -c $((0x1f1)) /dev/zero
    printf '\004'                       # 0x1f1 setup_sects
    head -c $((0x202 - 0x1f2)) /dev/zero
    printf 'HdrS\017\002'               # 0x202 magic, 0x206 version 0x020f
    head -c $((0x248 - 0x208)) /dev/zero
    le32 $((0x40))                      # 0x248 payload_offset
    le32 "$len"                         # 0x24c payload_length
    head -c $((5 * 512 + 0x40 - 0x250)) /dev/zero
    cat "$payload"
}

size=$(wc -c < "$k/vmlinux")
for c in "gz:gzip -9 -n" "xz:xz --check=crc32 --x86 --lzma2=,dict=32MiB" \
         "zst:zstd -19 -q" "lz4:lz4 -l -9 -c"; do
    name=${c%%:*}
    ${c#*:} < "$k/vmlinux" > "$tmp/payload"
    le32 "$size" >> "$tmp/payload"
    bzimage "$tmp/payload" > "$k/bzimage-$name"
done
# pe: the systemd EFI stub (an unsigned PE32+) and the first 64 KiB of the
# real bookworm kernel (a signed one, cut: the parser must name the cut).
p="$here/corpus/pe"
mkdir -p "$p"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ ! -f "$stub" ] || cp "$stub" "$p/systemd-stub"
vmlinuz=$(sed -n 's/^VMLINUZ=//p' "$here/../.cache/kernels/bookworm/env" 2>/dev/null || true)
[ -z "$vmlinuz" ] || [ ! -f "$vmlinuz" ] || head -c 65536 "$vmlinuz" > "$p/vmlinuz-head"
# authenticode: the stub, unsigned and signed with a throwaway key (sbsign);
# small, and whole (the digest covers the whole file, so a cut kernel would
# never get past the digest check).
a="$here/corpus/authenticode"
mkdir -p "$a"
if [ -f "$stub" ] && command -v sbsign >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=fuzz-signer -days 1 \
        -addext extendedKeyUsage=codeSigning \
        -keyout "$tmp/sb.key" -out "$tmp/sb.pem" 2>/dev/null
    cp "$stub" "$a/stub-unsigned"
    sbsign --key "$tmp/sb.key" --cert "$tmp/sb.pem" --output "$a/stub-signed" "$stub" 2>/dev/null
fi
# trust: a bundle with an anchor and a kernel signer, and a derived anchor.
t="$here/corpus/trust"
mkdir -p "$t"
pem=$(openssl x509 -inform der -in "$tmp/cert.der")
printf 'modseal-trust-bundle v1\nmode enforce\n%s\nkernel-signer\n%s\n' "$pem" "$pem" > "$t/bundle-kernel-signer"
printf 'modseal-derived-anchor v1\nrelease 6.1.0-41-amd64\nkernel-sha256 %s\nimage-signer fuzz\n%s\n' \
    "$(printf '%064d' 0)" "$pem" > "$t/derived-anchor"
# module_signature and trust: the ML-DSA modules and certificates of Linux
# 7.x's sign-file (scripts/make-mldsa-fixtures.sh; OpenSSL >= 3.5 is not in
# bookworm, so they are copied when that folder exists, not made here).
m="$here/corpus/module_signature"
t="$here/corpus/trust"
mkdir -p "$m" "$t"
mldsa=${MODSEAL_MLDSA_FIXTURES:-$here/../target/mldsa-fixtures}
if [ -f "$mldsa/sign-file-attributes.txt" ]; then
    for l in 44 65 87; do
        cp "$mldsa/mldsa$l-sha512.ko" "$mldsa/mldsa$l-sha512.p7s" "$m/"
        cp "$mldsa/cert-$l.der" "$t/mldsa$l-cert.der"
    done
    cp "$mldsa/mldsa65-keyid.ko" "$mldsa/mldsa65-tampered.ko" "$m/"
    { echo modseal-trust-bundle v1; echo mldsa-authattrs waive; cat "$mldsa/cert-65.pem"; } \
        > "$t/mldsa-bundle"
fi
echo "seeds in $d, $k, $p, $a, $m and $t"
