#!/usr/bin/env bash
# Download and unpack the current Debian bookworm and trixie kernels (image and
# signed module tree) into .cache/kernels/<suite>/, through the private apt
# configuration of scripts/apt-private.sh (the machine's sources stay as they
# are). Re-runnable: a suite whose env file names the version that
# linux-image-amd64 currently depends on is left alone.
#
# Writes .cache/kernels/<suite>/env:
#   KVER=<kernel release>
#   VMLINUZ=<absolute path of boot/vmlinuz-KVER>
#   MODULES=<absolute path of lib/modules/KVER (bookworm) or usr/lib/modules/KVER (trixie)>
#   PACKAGE=<package name>  VERSION=<package version>  SUITE=<suite>  NMODULES=<*.ko* count>
#
#   scripts/fetch-kernels.sh [SUITE…]      (default: bookworm trixie)
#   MODSEAL_KERNELS=DIR overrides .cache/kernels.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/apt-private.sh
. "$repo/scripts/apt-private.sh"

for tool in apt-get apt-cache dpkg-deb find; do
    command -v "$tool" >/dev/null || { echo "fetch-kernels: $tool missing" >&2; exit 1; }
done

kernels=${MODSEAL_KERNELS:-$repo/.cache/kernels}
mkdir -p "$kernels"
kernels=$(cd "$kernels" && pwd)

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(bookworm trixie)

updated=""
ensure_lists() {
    if [ -z "$updated" ]; then
        apt_private_setup
        apt_private update -q >/dev/null
        updated=1
    fi
}

# newest_meta SUITE: "VERSION" of linux-image-amd64 in SUITE or SUITE-security,
# whichever is newer (madison lists newest first).
newest_meta() {
    apt_private_cache madison linux-image-amd64 |
        awk -F'|' -v s="$1" '{
            gsub(/^[ \t]+|[ \t]+$/, "", $2); split($3, f, " ")
            # f[2] is "suite/component"
            split(f[2], sc, "/")
            if (sc[1] == s || sc[1] == s "-security") { print $2; exit }
        }'
}

total_start=$(date +%s)
for suite in "${suites[@]}"; do
    start=$(date +%s)
    ensure_lists
    meta=$(newest_meta "$suite")
    [ -n "$meta" ] || { echo "fetch-kernels: no linux-image-amd64 in $suite" >&2; exit 1; }
    # linux-image-amd64 depends on exactly one linux-image-<ABI>-amd64 (= version).
    dep=$(apt_private_cache show "linux-image-amd64=$meta" |
        sed -n 's/^Depends: //p' | head -n1 | tr ',' '\n' |
        sed -n 's/^ *\(linux-image-[^ ]*-amd64\) *(= *\([^)]*\)).*/\1 \2/p' | head -n1)
    pkg=${dep%% *}
    ver=${dep#* }
    [ -n "$pkg" ] && [ -n "$ver" ] || {
        echo "fetch-kernels: cannot read the dependency of linux-image-amd64=$meta ($suite)" >&2
        exit 1
    }
    kver=${pkg#linux-image-}

    dir=$kernels/$suite
    if [ -f "$dir/env" ] && grep -qx "KVER=$kver" "$dir/env" && grep -qx "VERSION=$ver" "$dir/env"; then
        # shellcheck disable=SC1091
        n=$(sed -n 's/^NMODULES=//p' "$dir/env")
        echo "fetch-kernels: $suite: $pkg $ver already present ($n modules)"
        continue
    fi

    echo "fetch-kernels: $suite: $pkg $ver (linux-image-amd64 $meta)"
    rm -rf "$dir"
    mkdir -p "$dir/deb"
    APT_PRIVATE_DEST=$dir/deb apt_private download -q "$pkg=$ver" >/dev/null
    deb=$(find "$dir/deb" -maxdepth 1 -name '*.deb' | head -n1)
    [ -n "$deb" ] || { echo "fetch-kernels: download of $pkg failed" >&2; exit 1; }
    dpkg-deb -x "$deb" "$dir/root"

    vmlinuz=$dir/root/boot/vmlinuz-$kver
    modules=""
    for m in "$dir/root/lib/modules/$kver" "$dir/root/usr/lib/modules/$kver"; do
        if [ -d "$m" ] && [ ! -L "$m" ]; then modules=$m; break; fi
    done
    [ -f "$vmlinuz" ] || { echo "fetch-kernels: $vmlinuz missing in $pkg" >&2; exit 1; }
    [ -n "$modules" ] || { echo "fetch-kernels: no module tree for $kver in $pkg" >&2; exit 1; }

    nko=$(find "$modules" -type f -name '*.ko*' | wc -l)
    kinds=$(find "$modules" -type f -name '*.ko*' | sed 's/.*\.ko/.ko/' | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')
    {
        echo "KVER=$kver"
        echo "VMLINUZ=$vmlinuz"
        echo "MODULES=$modules"
        echo "PACKAGE=$pkg"
        echo "VERSION=$ver"
        echo "SUITE=$suite"
        echo "NMODULES=$nko"
    } > "$dir/env.new"
    mv "$dir/env.new" "$dir/env"
    rm -rf "$dir/deb"
    echo "fetch-kernels: $suite: KVER=$kver, $nko modules ($kinds), $(( $(date +%s) - start )) s"
    echo "fetch-kernels: $suite: vmlinuz: $(file -b "$vmlinuz" 2>/dev/null | cut -c1-100 || true)"
done
echo "fetch-kernels: done in $(( $(date +%s) - total_start )) s; env files under $kernels"
