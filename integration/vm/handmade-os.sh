#!/usr/bin/env bash
# Build an OS release by hand with the standard tools (mkfs.ext4 -d, veritysetup format, lz4,
# sgdisk), in the same shapes os-image produces: the three update images and, with --disk, an A/B
# disk image with the release in set A. It exists so that the VM tier can be developed and
# cross-checked independently of os-image; run-vm-tier.sh says which builder it used.
#
#   handmade-os.sh --rootfs DIR --kernel VMLINUZ --out DIR [--disk FILE]
#
# OUT gets boot.ext4, root.ext4, root.verity (raw), the lz4 update images named like Bottlerocket's
# (listed in artifacts.env as BOOT, ROOT, HASH) and verity.env (ROOT_HASH, SALT, DATA_BLOCKS).
# BOOT holds /vmlinuz and a Bottlerocket-style /grub/grub.cfg (dm_verity_root).
# Disk layout (1 MiB aligned): BOOT-A 16M, ROOT-A 128M, HASH-A 4M, BOOT-B, ROOT-B, HASH-B,
# PRIVATE 4M; BOOT-A flags priority=1 successful=1 as a fresh image has.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

rootfs= kernel= out= disk=
while [[ $# -gt 0 ]]; do
    case $1 in
    --rootfs) rootfs=$2 ;;
    --kernel) kernel=$2 ;;
    --out) out=$2 ;;
    --disk) disk=$2 ;;
    *) die "handmade-os: unknown argument $1" ;;
    esac
    shift 2
done
for v in rootfs kernel out; do [[ -n ${!v} ]] || die "handmade-os: --$v is required"; done
mkdir -p "$out"
export E2FSPROGS_FAKE_TIME=1700000000

# root: sized to its content plus a margin, whole MiB
kib=$(du -sk "$rootfs" | cut -f1)
mib=$(( (kib * 13 / 10) / 1024 + 8 ))
rm -f "$out/root.ext4" "$out/boot.ext4"
mkfs.ext4 -q -F -b 4096 -O ^has_journal -U clear -E hash_seed=00000000-0000-0000-0000-000000000000 \
    -d "$rootfs" "$out/root.ext4" "${mib}M"
veritysetup format "$out/root.ext4" "$out/root.verity" > "$out/verity.txt"
blocks=$(sed -n 's/^Data blocks:[[:space:]]*//p' "$out/verity.txt")
hash=$(sed -n 's/^Root hash:[[:space:]]*//p' "$out/verity.txt")
salt=$(sed -n 's/^Salt:[[:space:]]*//p' "$out/verity.txt")
printf 'ROOT_HASH=%s\nSALT=%s\nDATA_BLOCKS=%s\n' "$hash" "$salt" "$blocks" > "$out/verity.env"

boot=$(mktemp -d)
trap 'rm -rf "$boot"' EXIT
mkdir -p "$boot/grub"
cp "$kernel" "$boot/vmlinuz"
. "$rootfs/etc/os-release"
cat > "$boot/grub/grub.cfg" <<CFG
set default="0"
set timeout="0"
set dm_verity_root="root,,,ro,0 $((blocks * 8)) verity 1 PARTUUID=\$boot_uuid/PARTNROFF=1 PARTUUID=\$boot_uuid/PARTNROFF=2 4096 4096 $blocks 1 sha256 $hash $salt 2 restart_on_corruption ignore_zero_blocks"

menuentry "$PRETTY_NAME" --unrestricted {
   linux (\$root)/vmlinuz root=/dev/dm-0 rootwait ro raid=noautodetect random.trust_cpu=on dm-mod.create="\$dm_verity_root"
   boot
}
CFG
kmib=$(( $(stat -c %s "$kernel") / 1048576 + 3 ))
mkfs.ext4 -q -F -b 4096 -O ^has_journal -U clear -E hash_seed=00000000-0000-0000-0000-000000000000 \
    -d "$boot" "$out/boot.ext4" "${kmib}M"
# update images named like Bottlerocket's: <image>-<variant>-<arch>-<version>-<build>-<suffix>
prefix=abos-$VARIANT_ID-x86_64-$VERSION_ID-$BUILD_ID
lz4 -q -f -9 "$out/boot.ext4" "$out/$prefix-boot.ext4.lz4"
lz4 -q -f -9 "$out/root.ext4" "$out/$prefix-root.ext4.lz4"
lz4 -q -f -9 "$out/root.verity" "$out/$prefix-root.verity.lz4"
printf 'BOOT=%s\nROOT=%s\nHASH=%s\n' "$out/$prefix-boot.ext4.lz4" "$out/$prefix-root.ext4.lz4" \
    "$out/$prefix-root.verity.lz4" > "$out/artifacts.env"

[[ -n $disk ]] || exit 0
BOOT=6b636168-7420-6568-2070-6c616e657421
ROOT=5526016a-1a97-4ea4-b39a-b7c8c6ca4502
HASH=598f10af-c955-4456-6a99-7720068a6cea
PRIV=440408bb-eb0b-4328-a6e5-a29038fad706
rm -f "$disk"
truncate -s 310M "$disk"
sgdisk --clear \
    -n 1:1M:+16M -t 1:$BOOT -c 1:BOTTLEROCKET-BOOT-A \
    -n 2:0:+128M -t 2:$ROOT -c 2:BOTTLEROCKET-ROOT-A \
    -n 3:0:+4M -t 3:$HASH -c 3:BOTTLEROCKET-HASH-A \
    -n 4:0:+16M -t 4:$BOOT -c 4:BOTTLEROCKET-BOOT-B \
    -n 5:0:+128M -t 5:$ROOT -c 5:BOTTLEROCKET-ROOT-B \
    -n 6:0:+4M -t 6:$HASH -c 6:BOTTLEROCKET-HASH-B \
    -n 7:0:+4M -t 7:$PRIV -c 7:BOTTLEROCKET-PRIVATE \
    -A 1:set:48 -A 1:set:56 "$disk" > /dev/null
start() { sgdisk -i "$1" "$disk" | sed -n 's/^First sector: \([0-9]*\).*/\1/p'; }
size() { sgdisk -i "$1" "$disk" | sed -n 's/^Partition size: \([0-9]*\).*/\1/p'; }
for p in "1 boot.ext4" "2 root.ext4" "3 root.verity"; do
    set -- $p
    (( $(stat -c %s "$out/$2") <= $(size "$1") * 512 )) || die "$2 does not fit partition $1"
    dd if="$out/$2" of="$disk" bs=512 seek="$(start "$1")" conv=notrunc status=none
done
sgdisk -v "$disk" > /dev/null
