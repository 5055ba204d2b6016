#!/usr/bin/env bash
# Build (or reuse) the VM tier's initramfs: busybox-static, the kernel modules needed to reach a
# dm-verity root on a virtio disk (with their dependencies, in load order), dmsetup with its shared
# libraries, and initramfs/init.
#
#   integration/vm/mkinitramfs.sh KERNEL_DIR      # prints the path of the cached initramfs
#
# KERNEL_DIR is what fetch-kernel.sh printed. The result is cached as
# ${ABOS_CACHE:-$HOME/.cache/abos}/initramfs-<hash>.cpio.gz where <hash> covers every input
# (kernel package, busybox binary, dmsetup package, init script, this script).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

kdir=${1:?usage: mkinitramfs.sh KERNEL_DIR}
kver=$(cat "$kdir/kver")
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
file -L "$busybox" | grep -q 'statically linked' || die "$busybox is not static (install busybox-static)"

# Modules that must be loaded, in this order (dependencies are added before each one).
MODULES=(virtio_pci virtio_blk virtio_net dm-mod dm-verity crc32c_generic ext4 erofs)

cache_lock
dmsetup_dir=$(fetch_deb dmsetup)
libdm_dir=$(fetch_deb libdevmapper1.02.1)

key=$( {
    cat "$kdir/package"
    sha256sum "$busybox" | cut -d' ' -f1
    basename "$dmsetup_dir"; basename "$libdm_dir"
    cat "$VM_DIR/initramfs/init" "$VM_DIR/mkinitramfs.sh" "$VM_DIR/lib.sh"
    echo "${MODULES[*]}"
} | sha256sum | cut -c1-16)
out=$ABOS_CACHE/initramfs-$key.cpio.gz
if [[ -f $out ]]; then
    echo "$out"
    exit 0
fi

work=$(mktemp -d "$ABOS_CACHE/.initramfs-tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,newroot,lib/modules,etc}
install -m 0755 "$busybox" "$root/bin/busybox"
install -m 0755 "$VM_DIR/initramfs/init" "$root/init"

# --- modules: resolve `depends=` from each module's .modinfo (the deb ships no modules.dep and
# this machine may have no depmod); emit a topological load order.
moddir=$kdir/lib/modules/$kver/kernel
declare -A seen=()
order=()
find_module() { # name with - or _ -> path
    local n=$1 alt=${1//-/_} alt2=${1//_/-} f
    f=$(find "$moddir" \( -name "$n.ko" -o -name "$alt.ko" -o -name "$alt2.ko" \) -print -quit)
    [[ -n $f ]] || die "module $n not found under $moddir"
    echo "$f"
}
add_module() {
    local name=$1 path deps d
    path=$(find_module "$name")
    local base
    base=$(basename "$path" .ko)
    [[ -z ${seen[$base]:-} ]] || return 0
    seen[$base]=1
    deps=$(tr '\0' '\n' < "$path" | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do add_module "$d"; done
    cp "$path" "$root/lib/modules/$base.ko"
    order+=("$base")
}
for m in "${MODULES[@]}"; do add_module "$m"; done
printf '%s\n' "${order[@]}" > "$root/lib/modules/load-order"

# --- dmsetup (Debian's, with its libraries)
LD_LIBRARY_PATH=$libdm_dir/lib/x86_64-linux-gnu copy_with_libs "$dmsetup_dir/sbin/dmsetup" "$root" /sbin/dmsetup
# the libdevmapper from the package, not whatever the host has
install -m 0755 "$libdm_dir"/lib/x86_64-linux-gnu/libdevmapper.so.1.02.1 "$root/lib/x86_64-linux-gnu/"

(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet --reproducible) | gzip -1 -n > "$work/initramfs.cpio.gz"
mv "$work/initramfs.cpio.gz" "$out"
log "initramfs built: $out (modules: ${order[*]})"
echo "$out"
