#!/usr/bin/env bash
# Fetch Debian trixie's mkosi (25.x) and the pure-Python modules it imports
# into .cache/mkosi/tool/, unpacked with dpkg-deb, never installed: the
# machine keeps its own packages. Downloads go through the private apt
# configuration of scripts/apt-private.sh (sources derived from the machine's
# own apt configuration). Re-runnable: a tool folder whose stamp names the
# current candidate versions is left alone.
#
#   mkosi/get-mkosi.sh            prints the path of the `mkosi` wrapper
#
# mkosi is not on PyPI and bookworm's mkosi 14 is too old for this
# configuration; the unpacked 25.x runs from the host's python3 (>= 3.9).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/apt-private.sh
. "$repo/scripts/apt-private.sh"

log() { echo "get-mkosi: $*" >&2; }
for tool in apt-get apt-cache dpkg-deb; do
    command -v "$tool" >/dev/null || { log "$tool missing"; exit 1; }
done
python=${MKOSI_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3) || { log "python3 missing"; exit 1; }

tooldir=$repo/.cache/mkosi/tool
# mkosi itself, and what it imports that bookworm's python3 lacks or has too
# old (pefile: only for UKIs, imported lazily; kept so that `mkosi` never
# fails on it).
packages=(mkosi python3-pefile)

# candidate PKG: the trixie version the private apt configuration offers.
candidate() {
    apt_private_cache show "$1/trixie" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

apt_private_setup
versions=()
for p in "${packages[@]}"; do
    v=$(candidate "$p")
    if [ -z "$v" ]; then
        apt_private update -q >/dev/null
        v=$(candidate "$p")
    fi
    [ -n "$v" ] || { log "no $p in trixie through the private apt configuration"; exit 1; }
    versions+=("$p=$v")
done
stamp="${versions[*]}"

if [ -f "$tooldir/stamp" ] && [ "$(cat "$tooldir/stamp")" = "$stamp" ] && [ -x "$tooldir/mkosi" ]; then
    echo "$tooldir/mkosi"
    exit 0
fi

log "fetching ${versions[*]} (trixie)"
rm -rf "$tooldir"
mkdir -p "$tooldir/debs" "$tooldir/root"
APT_PRIVATE_DEST=$tooldir/debs apt_private download -q "${versions[@]}" >/dev/null
for deb in "$tooldir"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tooldir/root"
done

# The Python package directory of the unpacked tree.
pydirs=$(find "$tooldir/root/usr/lib/python3/dist-packages" -maxdepth 0 -type d)
[ -d "$pydirs/mkosi" ] || { log "mkosi package has no python module under $pydirs"; exit 1; }

cat >"$tooldir/mkosi" <<EOF
#!/bin/sh
# Runs the unpacked trixie mkosi ($stamp) with the host's python3.
PYTHONPATH="$pydirs\${PYTHONPATH:+:\$PYTHONPATH}" exec "$python" -B -m mkosi "\$@"
EOF
chmod 755 "$tooldir/mkosi"
"$tooldir/mkosi" --version >&2 || { log "the unpacked mkosi does not run with $python"; exit 1; }
echo "$stamp" >"$tooldir/stamp"
rm -rf "$tooldir/debs"
echo "$tooldir/mkosi"
