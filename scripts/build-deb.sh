#!/usr/bin/env bash
# Builds the Debian package modseal_<version>_amd64.deb from a staged
# install (scripts/install.sh with DESTDIR), plus what a package adds: the
# manual pages and shell completions generated from the command-line
# definition (examples/gendoc.rs), the section-5 pages (packaging/man), the
# conffiles under /etc, the copyright file and the changelog.
#
#   scripts/build-deb.sh [--binary FILE] [--out DIR]
#
# Default binary: the static build, target/x86_64-unknown-linux-musl/release/modseal.
# Default out: target/deb. The version is Cargo.toml's. The build is
# reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last
# commit's time). Needs cargo (gendoc, metadata), python3 (the copyright
# file), dpkg-deb, gzip, file.
# Layout and decisions: docs/packaging.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary=$repo/target/x86_64-unknown-linux-musl/release/modseal
out=$repo/target/deb
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "usage: $0 [--binary FILE] [--out DIR]" >&2; exit 64 ;;
    esac
done
for tool in dpkg-deb gzip file cargo python3; do
    command -v "$tool" >/dev/null || { echo "build-deb: $tool not found" >&2; exit 1; }
done

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n 1)
[ -n "$version" ] || { echo "build-deb: no version in Cargo.toml" >&2; exit 1; }
maintainer="modseal maintainers <maintainers@modseal.invalid>"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
umask 022

work=$(mktemp -d "${TMPDIR:-/tmp}/modseal-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/modseal

# 1. What scripts/install.sh installs: binary, dracut module, kernel hook, docs.
DESTDIR=$root "$repo/scripts/install.sh" --binary "$binary" >/dev/null

# 2. Conffiles. modseal.conf has every setting commented out; the dracut
# snippet is install.sh's example with its add_dracutmodules line commented
# out: enabled before `modseal enroll`, dracut would refuse to build an image.
install -D -m 0644 "$repo/packaging/modseal.conf" "$root/etc/modseal/modseal.conf"
{
    echo "# Shipped disabled by the modseal package: after \`modseal enroll\`,"
    echo "# uncomment the add_dracutmodules line and rebuild the initramfs."
    sed 's/^add_dracutmodules/#add_dracutmodules/' "$repo/dracut-module/modseal.conf"
} > "$work/dracut.conf"
install -D -m 0644 "$work/dracut.conf" "$root/etc/dracut.conf.d/modseal.conf"
# install.sh's enabled copy stays in the docs: dracut-module.md's step 4
# (`cp` it over the snippet) works for both ways of installing.

# 3. Manual pages and completions from the CLI definition.
(cd "$repo" && cargo run --quiet --example gendoc -- "$work/gen")
install -d "$root/usr/share/man/man8" "$root/usr/share/man/man5"
install -m 0644 "$work/gen/man8/"*.8 "$root/usr/share/man/man8/"
install -m 0644 "$repo/packaging/man/"*.5 "$root/usr/share/man/man5/"
install -D -m 0644 "$work/gen/completions/modseal.bash" "$root/usr/share/bash-completion/completions/modseal"
install -D -m 0644 "$work/gen/completions/_modseal" "$root/usr/share/zsh/vendor-completions/_modseal"
install -D -m 0644 "$work/gen/completions/modseal.fish" "$root/usr/share/fish/vendor_completions.d/modseal.fish"

# 4. Debian's files: copyright, changelog, lintian overrides.
# The copyright file is generated: the crates and licences of Cargo.lock's
# musl dependency graph, so it stays true when Cargo.lock changes (a
# licence with no text in packaging/debian/licenses fails the build).
(cd "$repo" && cargo metadata --quiet --locked --format-version 1 \
    --filter-platform x86_64-unknown-linux-musl) > "$work/metadata.json"
python3 "$repo/packaging/debian/copyright.py" "$work/metadata.json" > "$work/copyright"
install -m 0644 "$work/copyright" "$doc/copyright"
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@DATE@/$changelog_date/" \
    "$repo/packaging/debian/changelog.in" > "$doc/changelog"
install -D -m 0644 "$repo/packaging/debian/lintian-overrides" "$root/usr/share/lintian/overrides/modseal"

# Compressed as Debian policy asks (-n: no name or time in the header).
find "$root/usr/share/man" -type f -exec gzip -9n {} +
gzip -9n "$doc/changelog"

# 5. Control files.
install -d "$root/DEBIAN"
(cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') > "$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
# An upgrade changes the binary and the dracut module that go into the
# initramfs: have it rebuilt, as Debian's own initramfs hook packages do
# (the dracut and initramfs-tools packages both declare interest in this
# trigger; with neither installed it does nothing).
echo "activate-noawait update-initramfs" > "$root/DEBIAN/triggers"
chmod 0644 "$root/DEBIAN/triggers"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
    | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" \
    -e "s/@INSTALLED_SIZE@/$installed_size/" \
    "$repo/packaging/debian/control.in" > "$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

# 6. Reproducible: every file's time is SOURCE_DATE_EPOCH; dpkg-deb sorts
# the members and takes the ar times from SOURCE_DATE_EPOCH too.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
deb=$out/modseal_${version}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "build-deb: $deb ($(stat -c %s "$deb") bytes, Installed-Size $installed_size KiB)"
