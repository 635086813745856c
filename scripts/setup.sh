#!/usr/bin/env bash
# Host setup for a fresh Debian 12 machine (root). Idempotent: re-running it
# installs only what is missing and re-uses the downloaded kernels.
#
#   scripts/setup.sh            packages + Rust target + real kernels
#                               (bookworm 6.1, trixie 6.12, trixie-backports 7.x)
#   SETUP_NO_KERNELS=1 scripts/setup.sh   skip scripts/fetch-kernels.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# What the tests need:
#   openssl            fixtures, differential checks against `openssl cms`
#   linux-kbuild-6.1   the kernel's own scripts/sign-file
#   xz-utils zstd lz4 gzip cpio   compressed modules, initramfs images
#   jq                 JSON output in scripts
#   hyperfine          benchmarks
#   gcc binutils       ELF payloads for the fixtures
#   musl-tools         the static musl build
#   ca-certificates dpkg-dev file   apt downloads, dpkg-deb, static check
#   lintian debootstrap   the Debian package: scripts/test.sh lints it,
#                      tests/deb.rs installs it into a debootstrap root
#   dracut-core        initramfs images with the modseal dracut module (not
#                      `dracut`: that one replaces initramfs-tools)
#   qemu-system-x86 busybox-static e2fsprogs   the boot tests (TCG, a tiny root)
#   ovmf               UEFI firmware for the boot tests (which boot it through
#                      systemd-boot from systemd-boot-efi): it measures the
#                      kernel (PCR 4) and the EFI stub the initrd (PCR 9)
#   osslsigncode       an independent Authenticode digest of the kernels
#   sbsigntool shim-unsigned   sbverify/sbsign/sbattach and Debian's Secure
#                      Boot CA (/usr/share/shim/debian-uefi-ca.der): the kernels'
#                      Authenticode signatures (tests/kernel_signer.rs)
#   systemd-boot-efi time   tests/check_initramfs.rs: the EFI stub its UKI is
#                      made from, /usr/bin/time for peak memory
#   python3 systemd debian-archive-keyring   the mkosi image (mkosi/): the
#                      unpacked trixie mkosi runs on python3 and uses the
#                      machine's systemctl/systemd-firstboot/-sysusers/-tmpfiles
#                      on the image; the apt sources it is given are signed
#                      with the Debian archive keyring (mkosi/get-mkosi.sh
#                      fetches mkosi itself into .cache/mkosi)
packages=(
    openssl linux-kbuild-6.1 xz-utils zstd lz4 gzip cpio jq hyperfine
    gcc libc6-dev binutils musl-tools ca-certificates dpkg-dev file lintian debootstrap
    swtpm swtpm-tools libtss2-dev tpm2-tools autoconf automake libtool autoconf-archive libltdl-dev pkg-config
    dracut-core qemu-system-x86 busybox-static e2fsprogs ovmf osslsigncode
    sbsigntool shim-unsigned
    python3 systemd debian-archive-keyring
    systemd-boot-efi time
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup: all packages present"
fi

test -x /usr/lib/linux-kbuild-6.1/scripts/sign-file || {
    echo "setup: /usr/lib/linux-kbuild-6.1/scripts/sign-file missing after install" >&2
    exit 1
}

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
        rustup target add x86_64-unknown-linux-musl
    fi
    # scripts/test.sh checks style with both.
    for c in clippy rustfmt; do
        if ! rustup component list --installed | grep -q "^$c"; then
            rustup component add "$c"
        fi
    done
else
    echo "setup: rustup not found; the musl target cannot be added" >&2
    exit 1
fi

# Static musl builds of OpenSSL libcrypto and tpm2-tss for the TPM stack of
# the release binary (cached in .cache/tss-musl; a no-op when up to date).
"$repo/scripts/build-tss.sh"

if [ -z "${SETUP_NO_KERNELS:-}" ]; then
    "$repo/scripts/fetch-kernels.sh" bookworm trixie trixie-backports
fi

# ML-DSA module signatures made by Linux 7.x's sign-file with OpenSSL >= 3.5,
# which need a trixie root (debootstrap; reused when present).
mldsa=${MODSEAL_MLDSA_FIXTURES:-$repo/target/mldsa-fixtures}
if [ ! -f "$mldsa/sign-file-attributes.txt" ]; then
    "$repo/scripts/make-mldsa-fixtures.sh" "${MODSEAL_MLDSA_ROOT:-$repo/.cache/mldsa-root}" "$mldsa"
fi
echo "setup: done"
