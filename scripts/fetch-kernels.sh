#!/usr/bin/env bash
# Download and unpack the current Debian kernels of bookworm, trixie and
# trixie-backports (image and signed module tree) into .cache/kernels/<suite>/,
# through the private apt configuration of scripts/apt-private.sh (the
# machine's sources stay as they are). Re-runnable: a suite whose env file
# names the version that linux-image-amd64 currently depends on is left alone.
#
# Two package layouts (checked with dpkg-deb -c):
#   6.x (bookworm, trixie): linux-image-KVER holds boot/vmlinuz-KVER and the
#     module tree ((usr/)lib/modules/KVER).
#   7.x (trixie-backports): linux-image-KVER is a metapackage depending on
#     linux-binary-KVER (usr/lib/modules/KVER/vmlinuz), linux-modules-KVER
#     (usr/lib/modules/KVER/kernel/…) and linux-base-KVER (config,
#     System.map, modules.order, modules.builtin*); all of them are unpacked
#     into the same root. /boot/vmlinuz-KVER is only made on a real system,
#     by linux-base's /usr/share/kernel/postinst.d/00-legacy-boot hook.
#
# Writes .cache/kernels/<suite>/env:
#   KVER=<kernel release>
#   VMLINUZ=<absolute path of boot/vmlinuz-KVER, or usr/lib/modules/KVER/vmlinuz (7.x)>
#   MODULES=<absolute path of lib/modules/KVER (bookworm) or usr/lib/modules/KVER (trixie, 7.x)>
#   PACKAGE=<package name (linux-image-KVER)>  VERSION=<package version>  SUITE=<suite>  NMODULES=<*.ko* count>
#
#   scripts/fetch-kernels.sh [SUITE…]      (default: bookworm trixie trixie-backports)
#   MODSEAL_KERNELS=DIR overrides .cache/kernels.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(bookworm trixie trixie-backports)

# The private sources list keeps its usual suites and gains the ones asked
# for here (trixie-backports is not in its default).
apt_suites=${APT_PRIVATE_SUITES:-bookworm trixie}
for suite in "${suites[@]}"; do
    case " $apt_suites " in *" $suite "*) ;; *) apt_suites="$apt_suites $suite" ;; esac
done
export APT_PRIVATE_SUITES=$apt_suites
# shellcheck source=scripts/apt-private.sh
. "$repo/scripts/apt-private.sh"

for tool in apt-get apt-cache dpkg-deb find; do
    command -v "$tool" >/dev/null || { echo "fetch-kernels: $tool missing" >&2; exit 1; }
done

kernels=${MODSEAL_KERNELS:-$repo/.cache/kernels}
mkdir -p "$kernels"
# The physical path: the env files stay valid when .cache is a symlink
# into a shared cache (worktrees).
kernels=$(cd "$kernels" && pwd -P)

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

# split_parts PKG VER KVER: the packages a 7.x metapackage PKG (= VER)
# depends on that carry its files (linux-binary-, linux-modules-,
# linux-base-KVER, each "= VER"), one per line; none for a 6.x image.
split_parts() {
    apt_private_cache show "$1=$2" |
        sed -n 's/^Depends: //p' | head -n1 | tr ',|' '\n' |
        sed -n 's/^ *\([^ ]*\) *(= *\([^)]*\)).*/\1 \2/p' |
        awk -v k="$3" -v v="$2" '$2 == v && ($1 == "linux-binary-" k ||
            $1 == "linux-modules-" k || $1 == "linux-base-" k) { print $1 }'
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
    if [ -z "$pkg" ] || [ -z "$ver" ]; then
        echo "fetch-kernels: cannot read the dependency of linux-image-amd64=$meta ($suite)" >&2
        exit 1
    fi
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
    mapfile -t parts < <(split_parts "$pkg" "$ver" "$kver")
    want=("$pkg=$ver")
    for p in "${parts[@]}"; do want+=("$p=$ver"); done
    if [ "${#parts[@]}" -gt 0 ]; then
        echo "fetch-kernels: $suite: $pkg is a metapackage; also ${parts[*]}"
    fi
    APT_PRIVATE_DEST=$dir/deb apt_private download -q "${want[@]}" >/dev/null
    ndeb=$(find "$dir/deb" -maxdepth 1 -name '*.deb' | wc -l)
    [ "$ndeb" -eq "${#want[@]}" ] || {
        echo "fetch-kernels: download of ${want[*]} gave $ndeb of ${#want[@]} packages" >&2
        exit 1
    }
    for deb in "$dir"/deb/*.deb; do
        dpkg-deb -x "$deb" "$dir/root"
    done

    vmlinuz=""
    for v in "$dir/root/boot/vmlinuz-$kver" "$dir/root/usr/lib/modules/$kver/vmlinuz"; do
        if [ -f "$v" ]; then vmlinuz=$v; break; fi
    done
    modules=""
    for m in "$dir/root/lib/modules/$kver" "$dir/root/usr/lib/modules/$kver"; do
        if [ -d "$m" ] && [ ! -L "$m" ]; then modules=$m; break; fi
    done
    [ -n "$vmlinuz" ] || {
        echo "fetch-kernels: neither boot/vmlinuz-$kver nor usr/lib/modules/$kver/vmlinuz in ${want[*]}" >&2
        exit 1
    }
    [ -n "$modules" ] || { echo "fetch-kernels: no module tree for $kver in ${want[*]}" >&2; exit 1; }

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
