#!/usr/bin/env bash
# Installs what the tools, tests and the quickstart need on a fresh Debian machine, and only what
# is missing: Debian packages (apt-get), the tuftool CLI (cargo), python-tuf (pip).
# Idempotent and quiet when everything is present.
#
# Usage: scripts/setup.sh [--no-interop]
#   --no-interop  skip tuftool and python-tuf (only needed by the interop tests)
set -euo pipefail

interop=1
for arg in "$@"; do
  case "$arg" in
    --no-interop) interop=0 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

# Debian packages: tool -> package.
packages=(
  cryptsetup-bin   # veritysetup: independent check of our hash trees
  e2fsprogs        # mkfs.ext4, debugfs, resize2fs: root and boot filesystems
  erofs-utils      # mkfs.erofs: optional erofs root
  gdisk            # sgdisk: independent GPT reader/writer
  fdisk            # sfdisk --json: independent GPT reader
  lz4              # lz4: update artifacts and the benchmark baseline
  faketime         # integration tests: hosts whose clock is ahead (expired metadata)
  curl             # benchmark baseline pipeline
  busybox-static   # VM tier guest userland
  cpio             # VM tier initramfs
  binutils         # VM tier: strip guest binaries
  ca-certificates  # updog's HTTP client loads the system roots
  qemu-system-x86  # VM tier
  etcd-server      # fleet: reboot coordination tests on a real 3-member cluster (/usr/bin/etcd)
  systemd          # systemctl is-active (health_units), systemd-analyze verify (shipped units)
  # booting on firmware (issue 18): os-image --bootloader, the UEFI VM tier
  dosfstools       # mkfs.vfat: the EFI system partition
  mtools           # mmd, mcopy, mdir: files on the EFI system partition without mounting
  ovmf             # UEFI firmware for qemu (SeaBIOS comes with qemu-system-x86)
  # Keys in custody (key-source tests): a real PKCS#11 token and the tool that makes keys on it
  softhsm2         # softhsm2-util, /usr/lib/softhsm/libsofthsm2.so
  opensc           # pkcs11-tool: key pairs on the SoftHSM token
  # Man pages as man(1) renders them (test_support::shell::assert_man_pages)
  groff-base       # groff, preconv, tbl
)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
# The VM tier and kernel-config tests fetch Debian packages with apt-get download: package lists
# must exist even when every tool is already installed.
if ! ls /var/lib/apt/lists/*Packages* >/dev/null 2>&1; then
  "${sudo_cmd[@]}" apt-get update -qq
fi
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ((interop)); then
  if ! command -v tuftool >/dev/null 2>&1; then
    echo "setup: installing tuftool (cargo install, several minutes)"
    cargo install tuftool --locked --quiet
  fi
  if ! python3 -c 'import tuf.ngclient' >/dev/null 2>&1; then
    echo "setup: installing python-tuf"
    python3 -m pip install --quiet --disable-pip-version-check tuf "securesystemslib[crypto]"
  fi
fi

# Object storage (issue 15): two independent S3 servers for the s3 tests and benchmark, and
# boto3 to read back what was written (with its headers). Needed with --no-interop too.
if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "setup: installing s3s-fs (cargo install, a few minutes)"
  cargo install s3s-fs --version 0.14.1 --locked --features binary --quiet
fi
if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import boto3' >/dev/null 2>&1; then
  echo "setup: installing moto's server and boto3"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]" boto3
fi
