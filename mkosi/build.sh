#!/usr/bin/env bash
# Builds the mkosi image (mkosi/mkosi.conf) with modseal installed from its
# Debian package and enabled, and everything the boot test needs around it:
#
#   mkosi/build.sh OUTDIR
#
#   OUTDIR/image/          the image tree (mkosi Format=directory), with
#                          /boot/vmlinuz-KVER and the initrd its own dracut
#                          made, /boot/initrd.img-KVER
#   OUTDIR/root.img        an ext4 file system of that tree (mkfs.ext4 -d)
#   OUTDIR/tpm/            the swtpm state the enrollment was made in: the VM
#                          must boot with this TPM (qemu/boot.sh --tpmstate)
#   OUTDIR/trust.bundle    the sealed trust bundle (also in the image)
#   OUTDIR/env             KVER, VMLINUZ, INITRD, ROOT, TPMSTATE, BUNDLE, …
#
# Steps: fetch mkosi (mkosi/get-mkosi.sh) and the bookworm kernel
# (scripts/fetch-kernels.sh); take the package (MODSEAL_DEB, else
# scripts/build-deb.sh from the binary into OUTDIR/deb); take the kernel's
# module-signing certificate out of its image (`modseal keys from-kernel`)
# into the trust bundle; enroll the bundle into a fresh swtpm state (PCR 7 as
# a probe UEFI boot reads it, PCR 8 zero at a -kernel boot); generate the apt
# sources from the machine's apt configuration (mkosi's own list would add
# the debian-debug repository, which the registry here refuses) and the
# build sources the image's mkosi.postinst.chroot sets modseal up from (the
# package, the bundle, the enrollment); run mkosi (Incremental=yes: the
# package installation is cached in .cache/mkosi); check that the image's
# kernel is the one the certificate came from; make root.img.
#
# Re-runnable: when OUTDIR/stamp matches the inputs (this directory, the
# dracut module, the package, the binary, the kernel version, mkosi's
# version, the generated sources) nothing is done. MKOSI_FORCE=1 rebuilds
# anyway.
# MODSEAL_BIN: the static binary (default: the musl release build); it makes
# the bundle and the enrollment, and must be the package's own.
# MODSEAL_DEB: the package to install (scripts/test.sh's package stage
# passes the one it built and linted); unset, it is built here.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$repo/mkosi
log() { echo "mkosi/build: $*" >&2; }
die() { log "$*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 64; }
mkdir -p "$1"
out=$(cd "$1" && pwd)
[ "$(id -u)" -eq 0 ] || die "must run as root (mkosi builds a root-owned tree, mkfs.ext4 -d keeps owners)"

for tool in python3 apt-get dpkg-deb systemctl systemd-firstboot swtpm swtpm_ioctl mkfs.ext4 sha256sum flock file cmp tar dpkg-query; do
    command -v "$tool" >/dev/null || die "$tool missing (scripts/setup.sh installs what the tests need)"
done

bin=${MODSEAL_BIN:-$repo/target/x86_64-unknown-linux-musl/release/modseal}
[ -x "$bin" ] || die "$bin: not built (. .cache/tss-musl/env && cargo build --release --target x86_64-unknown-linux-musl)"
case $(file -b "$bin") in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$bin is not statically linked: the initramfs needs the musl build" ;;
esac
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
deb=${MODSEAL_DEB:-}
if [ -n "$deb" ]; then
    [ -f "$deb" ] || die "MODSEAL_DEB=$deb: no such file (scripts/build-deb.sh makes it; unset MODSEAL_DEB to build it here)"
    deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
fi

# One build per OUTDIR at a time (parallel tests share one).
exec 9>"$out/.lock"
flock 9

t_total=$(date +%s)
mkosi=$("$here/get-mkosi.sh")
"$repo/scripts/fetch-kernels.sh" bookworm >&2
# shellcheck disable=SC1091
. "$repo/.cache/kernels/bookworm/env"
kernel_kver=$KVER kernel_vmlinuz=$VMLINUZ kernel_version=$VERSION

# --- the package -------------------------------------------------------------
# build-deb.sh is reproducible (SOURCE_DATE_EPOCH: the last commit's time), so
# a package built here again for the same inputs keeps the stamp below.
if [ -z "$deb" ]; then
    rm -rf "$out/deb"
    "$repo/scripts/build-deb.sh" --binary "$bin" --out "$out/deb" >&2
    debs=("$out"/deb/modseal_*_amd64.deb)
    if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
        die "scripts/build-deb.sh made no single package in $out/deb: ${debs[*]}"
    fi
    deb=${debs[0]}
fi
[ "$(dpkg-deb -f "$deb" Package)" = modseal ] || die "$deb is not the modseal package"
# The host-side binary makes the bundle and the enrollment the image's binary
# reads at boot: both must be one build.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/modseal | cmp -s - "$bin" ||
    die "$deb's /usr/bin/modseal is not $bin: build the package from MODSEAL_BIN"

# --- apt sources for mkosi, from the machine's apt configuration ----------
# shellcheck source=scripts/apt-private.sh
. "$repo/scripts/apt-private.sh"
gen=$out/gen
rm -rf "$gen.new"
mkdir -p "$gen.new/sandbox/etc/apt/sources.list.d" "$gen.new/src/modseal"
main=$(apt_private_mirror bookworm) || die "no bookworm deb source in the machine's apt configuration"
keyring=$(apt_private_keyring)
keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
[ -r "$keyring" ] || die "$keyring missing (debian-archive-keyring)"
{
    echo "# Generated by mkosi/build.sh from the machine's apt sources. Named"
    echo "# mkosi.sources so that mkosi does not write its own list (which adds"
    echo "# the debian-debug repository)."
    for suite in bookworm bookworm-updates bookworm-security; do
        if [ "$suite" = bookworm ]; then uri=$main; else uri=$(apt_private_mirror "$suite" || true); fi
        [ -n "$uri" ] || { log "no $suite source on this machine: left out"; continue; }
        printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n\n' "$uri" "$suite" "$keyring"
    done
} >"$gen.new/sandbox/etc/apt/sources.list.d/mkosi.sources"
grep -v '^#' "$gen.new/sandbox/etc/apt/sources.list.d/mkosi.sources" | grep -qi 'debug' &&
    die "the generated sources name a debug repository"

# --- up to date? -----------------------------------------------------------
stamp=$(
    {
        find "$here" "$repo/dracut-module" \( -type f -o -type l \) ! -name '*~' ! -name '*.md' -print0 | sort -z | xargs -0 sha256sum
        sha256sum "$bin"
        echo "deb $(sha256sum <"$deb" | cut -d' ' -f1)"
        echo "kernel $kernel_kver $kernel_version"
        cat "$repo/.cache/mkosi/tool/stamp"
        cat "$gen.new/sandbox/etc/apt/sources.list.d/mkosi.sources"
    } | sha256sum | cut -d' ' -f1
)
if [ -z "${MKOSI_FORCE:-}" ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] &&
    [ -f "$out/env" ] && [ -f "$out/root.img" ]; then
    rm -rf "$gen.new"
    log "up to date: $out (stamp $stamp)"
    exit 0
fi
rm -f "$out/stamp"
rm -rf "$gen"
mv "$gen.new" "$gen"

# --- trust bundle and enrollment -------------------------------------------
t=$(date +%s)
"$bin" keys from-kernel "$kernel_vmlinuz" >"$out/kernel.pem"
"$bin" bundle --anchor "$out/kernel.pem" --out "$out/trust.bundle" >&2

# A fresh TPM: its seeds are kept in $out/tpm, which the VM's swtpm then uses
# (same SRK), with PCRs reset as at a power-on.
rm -rf "$out/tpm"
mkdir -p "$out/tpm"
swtpm_pid=""
stop_swtpm() {
    [ -n "$swtpm_pid" ] || return 0
    swtpm_ioctl --tcp "127.0.0.1:$ctrl" -s >/dev/null 2>&1 || kill "$swtpm_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$swtpm_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$swtpm_pid" 2>/dev/null || true
    wait "$swtpm_pid" 2>/dev/null || true
    swtpm_pid=""
}
trap stop_swtpm EXIT
pdeath=()
if command -v setpriv >/dev/null; then pdeath=(setpriv --pdeathsig KILL); fi
for attempt in 1 2 3 4 5; do
    # Two free adjacent ports (server, control).
    read -r port ctrl < <(python3 -c '
import socket
for _ in range(50):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    try:
        b = socket.socket(); b.bind(("127.0.0.1", p + 1)); b.close(); a.close(); print(p, p + 1); break
    except OSError:
        a.close()
')
    "${pdeath[@]}" swtpm socket --tpm2 --tpmstate "dir=$out/tpm" \
        --server "type=tcp,port=$port,bindaddr=127.0.0.1" --ctrl "type=tcp,port=$ctrl,bindaddr=127.0.0.1" \
        --flags not-need-init,startup-clear --log "file=$out/tpm/swtpm-enroll.log,level=1" \
        </dev/null >/dev/null 2>&1 &
    swtpm_pid=$!
    up=""
    for _ in $(seq 100); do
        kill -0 "$swtpm_pid" 2>/dev/null || break
        if (exec 3<>"/dev/tcp/127.0.0.1/$ctrl") 2>/dev/null; then up=1; break; fi
        sleep 0.1
    done
    [ -n "$up" ] && break
    stop_swtpm
    log "swtpm did not start on ports $port/$ctrl (attempt $attempt)"
done
[ -n "$up" ] || die "could not start swtpm; see $out/tpm/swtpm-enroll.log"
etc=$gen/src/modseal
# Sealed to PCRs 7 and 8 as a UEFI -kernel boot leaves them (qemu/boot.sh
# boots OVMF): 7 as a probe boot of this kernel reads it, 8 zero. Never 9:
# it holds the initrd this very enrollment goes into.
"$repo/qemu/firmware-pcrs.sh" --kernel "$kernel_vmlinuz" --out "$out/firmware-probe" >&2
pcr7=$(sed -n 's/^7 //p' "$out/firmware-probe/pcrs")
"$bin" enroll --tcti "swtpm:host=127.0.0.1,port=$port" --trust "$out/trust.bundle" \
    --pcrs 7,8 --pcr-value "7=$pcr7" --out "$etc/sealed" >&2
stop_swtpm
trap - EXIT
log "bundle and enrollment: $(($(date +%s) - t)) s"

# --- what mkosi.postinst.chroot sets modseal up from (build sources) --------
# Not an extra tree: a user installs the package before making the bundle
# and enrolling, and files of its conffiles already in place would stop dpkg
# at a question. The package's modseal.conf (its defaults) names both paths.
cp "$deb" "$gen/src/"
cp "$out/trust.bundle" "$etc/trust.bundle"

# --- mkosi -----------------------------------------------------------------
# The kernel package is pinned to the version scripts/fetch-kernels.sh
# resolved (the one the certificate came from). The pin is also part of
# mkosi's cache manifest: when linux-image-amd64 moves, the incremental
# cache is rebuilt (with fresh package lists) instead of reused.
t=$(date +%s)
rm -rf "$out/image"
(
    cd "$here"
    "$mkosi" --directory "$here" --output-directory "$out" \
        --sandbox-tree "$gen/sandbox" --build-sources "$gen/src" \
        --package "linux-image-$kernel_kver=$kernel_version" \
        --force build
) >&2 || die "mkosi build failed (log above)"
t_mkosi=$(($(date +%s) - t))
log "mkosi build: $t_mkosi s"

# --- checks ----------------------------------------------------------------
img=$out/image
kernels=("$img"/boot/vmlinuz-*)
if [ "${#kernels[@]}" -ne 1 ] || [ ! -f "${kernels[0]}" ]; then
    die "expected one kernel in $img/boot: ${kernels[*]}"
fi
kver=${kernels[0]##*/vmlinuz-}
[ "$kver" = "$kernel_kver" ] ||
    die "the image has kernel $kver, scripts/fetch-kernels.sh resolved $kernel_kver: the trust bundle would not match (linux-image-amd64 moved between the two? rerun)"
cmp -s "${kernels[0]}" "$kernel_vmlinuz" ||
    die "the image's vmlinuz-$kver differs from $kernel_vmlinuz (the certificate's source)"
initrd=$img/boot/initrd.img-$kver
[ -s "$initrd" ] || die "no $initrd: the image's dracut did not run"
cmp -s "$img/usr/bin/modseal" "$bin" || die "$img/usr/bin/modseal is not $bin"
[ "$(dpkg-query --admindir="$img/var/lib/dpkg" -W -f '${Status}' modseal 2>/dev/null)" = "install ok installed" ] ||
    die "modseal is not installed in the image's dpkg database"
[ -f "$img/etc/modseal/sealed/sealed.json" ] || die "no enrollment in the image"

# --- root file system ------------------------------------------------------
t=$(date +%s)
size_mib=$(($(du -sm "$img" | cut -f1) * 5 / 4 + 128))
tmp=$(mktemp "$out/root.img.XXXXXX")
mkfs.ext4 -q -F -L modseal-image -d "$img" "$tmp" "${size_mib}M"
chmod 644 "$tmp"
mv -f "$tmp" "$out/root.img"
log "root.img: ${size_mib} MiB, $(($(date +%s) - t)) s"

{
    echo "KVER=$kver"
    echo "VMLINUZ=${kernels[0]}"
    echo "INITRD=$initrd"
    echo "ROOT=$out/root.img"
    echo "TPMSTATE=$out/tpm"
    echo "BUNDLE=$out/trust.bundle"
    echo "CERT=$out/kernel.pem"
    echo "IMAGE=$img"
    echo "KERNEL_VERSION=$kernel_version"
    echo "DEB=$deb"
    echo "MKOSI_SECONDS=$t_mkosi"
} >"$out/env"
echo "$stamp" >"$out/stamp"
log "done in $(($(date +%s) - t_total)) s: $out/env"
