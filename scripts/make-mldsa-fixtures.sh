#!/usr/bin/env bash
# Make ML-DSA module-signature fixtures with the tools a Linux 7.x build uses:
# Debian's linux-kbuild-7.* `sign-file` and trixie's OpenSSL (>= 3.5, the
# first with ML-DSA). Both need trixie's glibc, so they run in a trixie root
# made with debootstrap.
#
#   scripts/make-mldsa-fixtures.sh ROOT OUT
#
# ROOT: the trixie root (made when missing; reused when present).
# OUT:  the fixture directory (rewritten).
#
# The mirror URI comes from the machine's apt configuration
# (scripts/apt-private.sh); no host name is written here. Runs as root.
set -euo pipefail

root=${1:?usage: make-mldsa-fixtures.sh ROOT OUT}
out=${2:?usage: make-mldsa-fixtures.sh ROOT OUT}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/apt-private.sh
. "$here/apt-private.sh"

mirror=$(apt_private_mirror bookworm) || {
    echo "make-mldsa-fixtures: no Debian mirror in the machine's apt configuration" >&2
    exit 1
}
keyring=$(apt_private_keyring)

make_root() {
    if [ -x "$root/usr/bin/openssl" ] && [ -f "$root/.modseal-mldsa-root" ]; then
        return 0
    fi
    command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
    local -a kopt=()
    [ -n "$keyring" ] && kopt=(--keyring="$keyring")
    if [ ! -x "$root/usr/bin/apt-get" ]; then
        rm -rf "$root"
        debootstrap --variant=minbase "${kopt[@]}" --include=openssl,ca-certificates \
            trixie "$root" "$mirror"
    fi
    local opts=""
    [ -n "$keyring" ] && opts=" [signed-by=/etc/apt/modseal-keyring.gpg]" && cp "$keyring" "$root/etc/apt/modseal-keyring.gpg"
    cat > "$root/etc/apt/sources.list" <<LIST
deb$opts $mirror trixie main
deb$opts $mirror trixie-backports main
LIST
    rm -f "$root/etc/apt/sources.list.d/"*.sources 2>/dev/null || true
    chroot "$root" apt-get update
    # linux-kbuild-7.* is in trixie-backports; the newest one is taken.
    local kbuild
    kbuild=$(chroot "$root" apt-cache search --names-only '^linux-kbuild-7\.' \
        | awk '{print $1}' | sort -V | tail -n 1)
    [ -n "$kbuild" ] || { echo "make-mldsa-fixtures: no linux-kbuild-7.* package" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends \
        -t trixie-backports "$kbuild" openssl xz-utils
    echo "$kbuild" > "$root/.modseal-mldsa-root"
}

# The fixtures are made inside the root, in a scratch folder, then copied.
make_fixtures() {
    local kbuild sign_file work=/tmp/modseal-mldsa
    kbuild=$(cat "$root/.modseal-mldsa-root")
    sign_file=/usr/lib/${kbuild}/scripts/sign-file
    rm -rf "$root$work"
    mkdir -p "$root$work"
    # The kernel's own certs/default_x509.genkey, as the build makes its key.
    cat > "$root$work/x509.genkey" <<'GENKEY'
[ req ]
default_bits = 4096
distinguished_name = req_distinguished_name
prompt = no
string_mask = utf8only
x509_extensions = myexts

[ req_distinguished_name ]
O = modseal
CN = modseal ML-DSA test key
emailAddress = modseal@example.invalid

[ myexts ]
basicConstraints=critical,CA:FALSE
keyUsage=digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
GENKEY
    # The script below runs in the root's shell: its $ are its own.
    # shellcheck disable=SC2016
    chroot "$root" env SIGN_FILE="$sign_file" KBUILD="$kbuild" sh -eu -c '
        cd /tmp/modseal-mldsa
        openssl version > openssl-version
        echo "$KBUILD" > kbuild-package
        # A stand-in module: an ELF magic and fixed pseudo-random bytes.
        { printf "\177ELF"; openssl enc -aes-128-ctr -nosalt -K 00 -iv 00 -in /dev/zero 2>/dev/null | head -c 65536; } > payload.ko
        for l in 44 65 87; do
            sed "s/ML-DSA test key/ML-DSA-$l test key/" x509.genkey > genkey-$l
            openssl req -new -nodes -utf8 -x509 -days 36500 -set_serial 0x4d$l \
                -newkey ml-dsa-$l -config genkey-$l -outform DER -out cert-$l.der -keyout key-$l.pem
            openssl x509 -inform DER -in cert-$l.der -out cert-$l.pem
            for h in sha512 sha256; do
                cp payload.ko mldsa$l-$h.ko
                "$SIGN_FILE" $h key-$l.pem cert-$l.der mldsa$l-$h.ko
            done
            cp payload.ko mldsa$l-keyid.ko
            "$SIGN_FILE" -k sha512 key-$l.pem cert-$l.der mldsa$l-keyid.ko
            # The detached CMS alone, for openssl cms -verify.
            cp payload.ko mldsa$l-p.ko
            "$SIGN_FILE" -p -d sha512 key-$l.pem cert-$l.der mldsa$l-p.ko
            mv mldsa$l-p.ko.p7s mldsa$l-sha512.p7s
            rm -f mldsa$l-p.ko
            # Pure ML-DSA over the payload (empty context): the signature a
            # CMS without signed attributes carries (OpenSSL >= 4 sign-file).
            openssl pkeyutl -sign -rawin -inkey key-$l.pem -in payload.ko -out payload-$l.sig
        done
        # Level mismatch: an ML-DSA-44 certificate with the issuer, subject
        # and serial of the ML-DSA-65 one, so it is found as the signer of
        # a signature made (and labelled) with ML-DSA-65.
        openssl req -new -nodes -utf8 -x509 -days 36500 -set_serial 0x4d65 \
            -newkey ml-dsa-44 -config genkey-65 -outform DER -out cert-65-as-44.der -keyout key-65-as-44.pem
        # Tampered: one payload byte changed after signing.
        cp mldsa65-sha512.ko mldsa65-tampered.ko
        printf "\001" | dd of=mldsa65-tampered.ko bs=1 seek=4096 conv=notrunc 2>/dev/null
        # Differential: what openssl cms -verify says of each signature.
        for l in 44 65 87; do
            if openssl cms -verify -binary -inform DER -in mldsa$l-sha512.p7s -content payload.ko \
                -certfile cert-$l.pem -CAfile cert-$l.pem -purpose any -out /dev/null 2>/dev/null; then
                echo "mldsa$l-sha512 ok"; else echo "mldsa$l-sha512 fail"; fi
            cp payload.ko tampered-payload.ko
            printf "\001" | dd of=tampered-payload.ko bs=1 seek=4096 conv=notrunc 2>/dev/null
            if openssl cms -verify -binary -inform DER -in mldsa$l-sha512.p7s -content tampered-payload.ko \
                -certfile cert-$l.pem -CAfile cert-$l.pem -purpose any -out /dev/null 2>/dev/null; then
                echo "mldsa$l-tampered ok"; else echo "mldsa$l-tampered fail"; fi
        done > openssl-cms-verify.txt
        # Whether sign-file put signed attributes in: the asn1parse of the
        # SignerInfo shows the messageDigest attribute when it did.
        for l in 44 65 87; do
            if openssl asn1parse -inform DER -in mldsa$l-sha512.p7s | grep -q messageDigest; then
                echo "mldsa$l signed-attributes"; else echo "mldsa$l no-signed-attributes"; fi
        done > sign-file-attributes.txt
        rm -f tampered-payload.ko genkey-*
    '
    rm -rf "$out"
    mkdir -p "$out"
    cp -a "$root$work/." "$out/"
}

make_root
make_fixtures
echo "make-mldsa-fixtures: $(cat "$root/.modseal-mldsa-root"), $(cat "$out/openssl-version"); fixtures in $out"
