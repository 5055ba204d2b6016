#!/usr/bin/env bash
# Make an A/B disk image by hand (sgdisk + mkfs.ext4 -d + veritysetup format), laid out and filled
# like os-image's: BOOT-A ROOT-A HASH-A BOOT-B ROOT-B HASH-B PRIVATE, set A holding ROOTFS_DIR, BOOT
# holding vmlinuz and a Bottlerocket-style grub/grub.cfg. Used to develop and cross-check the VM
# tier independently of os-image.
#
#   handmade-disk.sh DISK ROOTFS_DIR VMLINUZ
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
disk=${1:?} rootfs=${2:?} vmlinuz=${3:?}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

BOOT=6b636168-7420-6568-2070-6c616e657421
ROOT=5526016a-1a97-4ea4-b39a-b7c8c6ca4502
HASH=598f10af-c955-4456-6a99-7720068a6cea
PRIV=440408bb-eb0b-4328-a6e5-a29038fad706
rm -f "$disk"
truncate -s 160M "$disk"
sgdisk --clear \
    -n 1:1M:+16M -t 1:$BOOT -c 1:BOTTLEROCKET-BOOT-A \
    -n 2:0:+48M -t 2:$ROOT -c 2:BOTTLEROCKET-ROOT-A \
    -n 3:0:+2M -t 3:$HASH -c 3:BOTTLEROCKET-HASH-A \
    -n 4:0:+16M -t 4:$BOOT -c 4:BOTTLEROCKET-BOOT-B \
    -n 5:0:+48M -t 5:$ROOT -c 5:BOTTLEROCKET-ROOT-B \
    -n 6:0:+2M -t 6:$HASH -c 6:BOTTLEROCKET-HASH-B \
    -n 7:0:+4M -t 7:$PRIV -c 7:BOTTLEROCKET-PRIVATE \
    -A 1:set:48 -A 1:set:56 "$disk" >/dev/null

start() { sgdisk -i "$1" "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }

mkfs.ext4 -q -F -b 4096 -O ^has_journal -d "$rootfs" "$work/root.ext4" 40M
veritysetup format "$work/root.ext4" "$work/hash" > "$work/verity.txt"
blocks=$(sed -n 's/^Data blocks:[[:space:]]*//p' "$work/verity.txt")
hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$work/verity.txt")
salt=$(sed -n 's/^Salt:[[:space:]]*//p' "$work/verity.txt")
mkdir -p "$work/boot/grub"
cp "$vmlinuz" "$work/boot/vmlinuz"
cat > "$work/boot/grub/grub.cfg" <<CFG
set default="0"
set timeout="0"
set dm_verity_root="root,,,ro,0 $((blocks * 8)) verity 1 PARTUUID=\$boot_uuid/PARTNROFF=1 PARTUUID=\$boot_uuid/PARTNROFF=2 4096 4096 $blocks 1 sha256 $hash $salt 2 restart_on_corruption ignore_zero_blocks"

menuentry "ABOS handmade" --unrestricted {
   linux (\$root)/vmlinuz root=/dev/dm-0 rootwait ro raid=noautodetect dm-mod.create="\$dm_verity_root" -- abos.handmade=1
   boot
}
CFG
mkfs.ext4 -q -F -b 4096 -O ^has_journal -d "$work/boot" "$work/boot.ext4" 14M
dd if="$work/boot.ext4" of="$disk" bs=512 seek="$(start 1)" conv=notrunc status=none
dd if="$work/root.ext4" of="$disk" bs=512 seek="$(start 2)" conv=notrunc status=none
dd if="$work/hash" of="$disk" bs=512 seek="$(start 3)" conv=notrunc status=none
sgdisk -v "$disk" >/dev/null
