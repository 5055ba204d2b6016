#!/usr/bin/env bash
# Fetch a Debian kernel (vmlinuz + modules) into the cache without installing it.
#
#   integration/vm/fetch-kernel.sh            # prints the cache directory on stdout
#
# The package is the one Debian's `linux-image-amd64` meta-package points at (override with
# ABOS_KERNEL_PACKAGE=linux-image-6.1.0-NN-amd64). The cache directory is keyed by package name and
# version: ${ABOS_CACHE:-$HOME/.cache/abos}/kernel-<package>_<version>/ and holds boot/vmlinuz-*,
# lib/modules/<kver>/ and a file `kver`. Idempotent: a complete cache entry is reused as it is.
# Needs: apt-get (download only, no root needed for that), dpkg-deb.
set -euo pipefail

cache=${ABOS_CACHE:-$HOME/.cache/abos}
pkg=${ABOS_KERNEL_PACKAGE:-}
if [[ -z $pkg ]]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ {print $2; exit}')
    [[ -n $pkg ]] || { echo "fetch-kernel: cannot resolve linux-image-amd64 (run apt-get update?)" >&2; exit 1; }
fi
ver=$(apt-cache show "$pkg" 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[[ -n $ver ]] || { echo "fetch-kernel: package $pkg unknown to apt-cache" >&2; exit 1; }

dir=$cache/kernel-${pkg}_${ver}
mkdir -p "$cache"
exec 9> "$cache/.lock"
flock 9 # serialise cache writers (two runs at once)
if [[ -f $dir/.complete ]]; then
    echo "$dir"
    exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/.kernel-tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$pkg=$ver" >&2)
deb=$(ls "$work"/*.deb)
mkdir "$work/x"
dpkg-deb -x "$deb" "$work/x"
kver=$(ls "$work/x/lib/modules")
[[ -f $work/x/boot/vmlinuz-$kver ]] || { echo "fetch-kernel: no vmlinuz-$kver in $deb" >&2; exit 1; }
echo "$kver" > "$work/x/kver"
echo "$pkg $ver" > "$work/x/package"
# keep only what the VM tier uses: the kernel, its config, System.map is not needed, all modules
rm -rf "$work/x/usr"
touch "$work/x/.complete"
rm -rf "$dir"
mv "$work/x" "$dir"
echo "$dir"
