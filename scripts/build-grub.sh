#!/usr/bin/env bash
# Builds GRUB from Debian's grub2 source package with our gptprio module (bootloader/gptprio/)
# for i386-pc (BIOS) and x86_64-efi (UEFI), and the boot images os-image installs:
#
#   <cache>/i386-pc/boot.img      MBR boot code (os-image patches the core image's sector in)
#   <cache>/i386-pc/core.img      diskboot + kernel + modules + memdisk (goes into BIOS-BOOT)
#   <cache>/x86_64-efi/BOOTX64.EFI  the EFI application (goes to EFI/BOOT/ on EFI-SYSTEM)
#   <cache>/bin/gptprio-host      the module's core compiled for the host (tests)
#   <cache>/emu/grub-emu          GRUB's emulator (x86_64-emu) with the module linked in: the
#                                 real module on disk image files (tests: os-image/tests/grub.rs)
#   <cache>/VERSION               Debian version and module hash
#
# <cache> = ${ABOS_CACHE:-~/.cache/abos}/grub-<debian version>-<hash of bootloader/gptprio and
# this script>. A warm run only checks the stamp. Prints the cache directory on stdout.
#
# Usage: scripts/build-grub.sh [--print-dir] [--jobs N]
#   --print-dir  print the directory the build would use and exit 0 (1 if it is not built)
# Needs root or sudo on a cold run: apt-get (deb-src entry, build dependencies).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src="$repo/bootloader/gptprio"
jobs=2 print_dir=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --print-dir) print_dir=1 ;;
    --jobs) jobs=$2; shift ;;
    *) echo "build-grub.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

# The Debian source package we build (bookworm). Overridable for a newer point release.
deb_version=${ABOS_GRUB_DEB_VERSION:-2.06-13+deb12u2}
hash=$(cd "$repo" && cat bootloader/gptprio/gptprio.c bootloader/gptprio/gptprio_core.c \
    bootloader/gptprio/gptprio_core.h bootloader/gptprio/boot.cfg bootloader/gptprio/early.cfg \
    bootloader/gptprio/early-pc.cfg bootloader/gptprio/host/gptprio-host.c scripts/build-grub.sh |
    sha256sum | cut -c1-12)
cache_root=${ABOS_CACHE:-$HOME/.cache/abos}
out="$cache_root/grub-${deb_version//+/_}-$hash"
if [[ -f $out/VERSION ]]; then
    echo "$out"
    exit 0
fi
if ((print_dir)); then
    echo "$out"
    exit 1
fi

log() { echo "build-grub: $*" >&2; }
start=$(date +%s)
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# 1. Source indexes and build dependencies (only what the two platforms and grub-mkimage need;
# `apt-get build-dep grub2` would add fonts, SDL, FUSE, parted, xorriso...).
if ! ls /var/lib/apt/lists/*_source_Sources* > /dev/null 2>&1; then
    log "adding a deb-src entry and updating the package lists"
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
            "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/abos-deb-src.sources > /dev/null
    else
        grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' |
            "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/abos-deb-src.list > /dev/null
    fi
    "${sudo_cmd[@]}" apt-get update -qq
fi
deps=(gcc gcc-multilib make bison flex autoconf automake autopoint gettext python3 dpkg-dev
    patch xz-utils)
missing=()
for pkg in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing build dependencies: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" > /dev/null
fi

# ABOS_GRUB_WORK=DIR: reuse a kept work directory (development: incremental make).
resume=0
if [[ -n ${ABOS_GRUB_WORK:-} ]]; then
    work=$ABOS_GRUB_WORK resume=1
    rm -rf "$work/out"
else
    work="$cache_root/grub-build.$$"
    rm -rf "$work"
fi
mkdir -p "$work"
# Kept on failure for its logs; removed on success.
trap 'rc=$?; if [[ $rc != 0 ]]; then log "failed; logs in $work"; else rm -rf "$work"; fi' EXIT

# 0. The host harness (first: fails fast): the same gptprio_core.c, compiled for this machine.
mkdir -p "$work/out/bin"
cc -O2 -Wall -Wextra -Werror -DGPTPRIO_HOST -I"$src" -o "$work/out/bin/gptprio-host" \
    "$src/host/gptprio-host.c" "$src/gptprio_core.c"


# 2. Source with Debian's patches applied, our module added.
tree=$(find "$work" -maxdepth 1 -type d -name 'grub2-*' | head -1)
if ((resume)) && [[ -n $tree ]]; then
    cp "$src/gptprio.c" "$src/gptprio_core.c" "$src/gptprio_core.h" "$tree/grub-core/commands/gptprio/"
else
(cd "$work" && apt-get source -qq "grub2=$deb_version" > /dev/null 2>&1) ||
    (cd "$work" && apt-get source "grub2=$deb_version" >&2)
tree=$(find "$work" -maxdepth 1 -type d -name 'grub2-*' | head -1)
[[ -n $tree ]] || { log "apt-get source grub2=$deb_version made no source tree"; exit 1; }
mkdir -p "$tree/grub-core/commands/gptprio"
cp "$src/gptprio.c" "$src/gptprio_core.c" "$src/gptprio_core.h" "$tree/grub-core/commands/gptprio/"
cat >> "$tree/grub-core/Makefile.core.def" << 'EOF'

module = {
  name = gptprio;
  common = commands/gptprio/gptprio.c;
  common = commands/gptprio/gptprio_core.c;
  cppflags = '-I$(srcdir)/commands/gptprio';
};
EOF
log "autogen (gentpl.py, autoreconf)"
(cd "$tree" && PYTHON=python3 ./autogen.sh > "$work/autogen.log" 2>&1) ||
    { tail -30 "$work/autogen.log" >&2; exit 1; }
fi

# 3. Two configurations. Only what the boot images need is compiled: the kernel, and the
# modules below with their dependency closure (as GRUB's own moddep.lst computes it; the lists
# were taken from a full build and genmoddep.awk fails the build if one is incomplete). Building
# all ~280 modules per platform takes 4x as long. grub-mkimage (a host tool, any platform) once.
common_flags=(--disable-werror --disable-nls --disable-device-mapper --disable-libzfs
    --disable-grub-mount --disable-grub-mkfont --disable-grub-themes --disable-liblzma
    --disable-cache-stats --disable-boot-time --disable-mm-debug)
# What goes into the images (step 4), then the closure.
modules=(part_gpt ext2 linux normal configfile echo test sleep reboot halt gptprio memdisk tar)
closure_pc=(acpi archelp biosdisk boot bufio configfile crypto datetime disk echo ext2 extcmd
    fshelp gettext gptprio halt linux memdisk mmap net normal part_gpt priority_queue reboot
    relocator serial sleep tar terminal terminfo test vbe verifiers video video_fb)
closure_efi=(acpi archelp boot bufio configfile crypto datetime disk echo ext2 extcmd fshelp gettext
    gptprio halt linux memdisk mmap net normal part_gpt priority_queue reboot relocator sleep tar
    terminal test video video_fb efi_gop efi_uga)
build_platform() {
    local name=$1 target=$2 platform=$3 images=() mods=()
    shift 3
    mods=("$@")
    [[ $platform != pc ]] || images=(boot.img diskboot.img lzma_decompress.img)
    mkdir -p "$work/build-$name"
    log "configure $name"
    [[ -f $work/build-$name/Makefile ]] || (cd "$work/build-$name" && "$tree/configure" --target="$target" --with-platform="$platform" \
        "${common_flags[@]}" > "$work/configure-$name.log" 2>&1) ||
        { tail -30 "$work/configure-$name.log" >&2; exit 1; }
    log "make grub-core ($name: kernel and ${#mods[@]} modules, -j$jobs)"
    # Generated headers `make all` would make first (BUILT_SOURCES): pc's startup needs this one.
    if [[ $platform == pc ]]; then
        (cd "$work/build-$name/grub-core" && make rs_decoder.h > "$work/make-$name.log" 2>&1) ||
            { tail -15 "$work/make-$name.log" | cut -c1-300 >&2; exit 1; }
    fi
    (cd "$work/build-$name/grub-core" && make -j"$jobs" \
        MODULE_FILES="${mods[*]/%/.module}" MARKER_FILES="${mods[*]/%/.marker}" \
        kernel.img "${images[@]}" moddep.lst "${mods[@]/%/.mod}" >> "$work/make-$name.log" 2>&1) ||
        { tail -15 "$work/make-$name.log" | cut -c1-300 >&2; exit 1; }
    mkdir -p "$work/out/$name"
    (cd "$work/build-$name/grub-core" && cp kernel.img moddep.lst "${images[@]}" "${mods[@]/%/.mod}" "$work/out/$name/")
}
build_platform i386-pc i386 pc "${closure_pc[@]}"
build_platform x86_64-efi x86_64 efi "${closure_efi[@]}"

# grub-emu: GRUB as a Linux program (kern/emu), the modules linked in statically; disks are files
# named in a device map, written with grub_disk_write like on firmware. No SDL, no PCI, no
# curses (the console is termios). Only the modules a test script needs, with their closure.
closure_emu=(boot bufio configfile crypto datetime disk echo gettext gptprio halt net normal
    part_gpt priority_queue reboot sleep terminal test)
mkdir -p "$work/build-emu"
log "configure emu"
[[ -f $work/build-emu/Makefile ]] || (cd "$work/build-emu" && "$tree/configure" --with-platform=emu \
    "${common_flags[@]}" --disable-grub-emu-sdl --disable-grub-emu-pci > "$work/configure-emu.log" 2>&1) ||
    { tail -30 "$work/configure-emu.log" >&2; exit 1; }
log "make grub-emu (${#closure_emu[@]} modules, -j$jobs)"
(cd "$work/build-emu" && make -j"$jobs" -C grub-core/lib/gnulib > "$work/make-emu.log" 2>&1 &&
    make -j"$jobs" -C grub-core MODULE_FILES="${closure_emu[*]/%/.module}" \
        MARKER_FILES="${closure_emu[*]/%/.marker}" moddep.lst grub-emu >> "$work/make-emu.log" 2>&1) ||
    { tail -15 "$work/make-emu.log" | cut -c1-300 >&2; exit 1; }
mkdir -p "$work/out/emu"
cp "$work/build-emu/grub-core/grub-emu" "$work/out/emu/"
log "make grub-mkimage"
(cd "$work/build-i386-pc" && make -j"$jobs" -C grub-core/lib/gnulib > "$work/make-mkimage.log" 2>&1 &&
    make -j"$jobs" grub-mkimage >> "$work/make-mkimage.log" 2>&1) ||
    { tail -15 "$work/make-mkimage.log" | cut -c1-300 >&2; exit 1; }
mkdir -p "$work/out/bin"
cp "$work/build-i386-pc/grub-mkimage" "$work/out/bin/"

# 4. Boot images: the memdisk holds boot.cfg as its grub.cfg; early*.cfg saves the boot disk and
# points the prefix at the memdisk (see bootloader/gptprio/README.md).
mkdir -p "$work/memdisk"
cp "$src/boot.cfg" "$work/memdisk/grub.cfg"
(cd "$work/memdisk" && tar --format=ustar --owner=0 --group=0 --mtime=@0 -cf "$work/memdisk.tar" grub.cfg)
mkimage="$work/out/bin/grub-mkimage"
"$mkimage" -d "$work/out/i386-pc" -O i386-pc -o "$work/out/i386-pc/core.img" -p /grub \
    -c "$src/early-pc.cfg" -m "$work/memdisk.tar" "${modules[@]}" biosdisk serial terminal
"$mkimage" -d "$work/out/x86_64-efi" -O x86_64-efi -o "$work/out/x86_64-efi/BOOTX64.EFI" -p /grub \
    -c "$src/early.cfg" -m "$work/memdisk.tar" "${modules[@]}"
core_bytes=$(stat -c %s "$work/out/i386-pc/core.img")
# diskboot loads the core below 0x78000 from 0x8200 (util/setup.c: maxsec)
((core_bytes <= 0x78000 - 0x9000)) || { log "core.img is $core_bytes bytes: too big to load"; exit 1; }

printf 'debian_version=%s\nmodule_hash=%s\nbuilt=%s\nseconds=%s\n' "$deb_version" "$hash" \
    "$(date -u +%FT%TZ)" "$(($(date +%s) - start))" > "$work/out/VERSION"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$work/out" "$out"
log "built in $(($(date +%s) - start)) s: $out"
echo "$out"
