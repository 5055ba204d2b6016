#!/usr/bin/env bash
# The VM tier: the built OS boots on a real Linux kernel in qemu, updates itself from a signed
# repository served on the host, and rolls back by itself when an update's root is damaged.
#
#   integration/vm/run-vm-tier.sh [--short] [--out DIR]
#
#   --short   one boot only: 1.0.0 boots from set A, marks itself successful and updates to 1.1.0
#             (writing set B of its own /dev/vda); the host then checks the GPT says B boots next.
#   (full)    four boots: 1.0.0/A updates -> 1.1.0/B marks successful and updates to 1.2.0 (set A)
#             -> the host damages one block of 1.2.0's root -> boot 3: dm-verity stops the boot
#             -> boot 4: the selector falls back to 1.1.0/B by itself.
#   --out DIR keep everything here (default: a new directory under ${TMPDIR:-/tmp}); the guest
#             console of every boot is DIR/console.log; DIR/summary.txt lists what each boot printed.
#
# Binaries: updog, signpost, pubsys, repo-tools, os-image from $ABOS_BIN_DIR, else built with `cargo build -p …` into ${CARGO_TARGET_DIR:-<repo>/target}.
# Kernel and initramfs: fetch-kernel.sh / mkinitramfs.sh (cached under ${ABOS_CACHE:-~/.cache/abos}).
# Exit status 0 only if every expectation held; each check prints `CHECK ok|FAILED: …`.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap 'echo "[vm-tier] FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR
repo_root=$(cd "$VM_DIR/../.." && pwd)

short=0 out=
while [[ $# -gt 0 ]]; do
    case $1 in
    --short) short=1; shift ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ -n $out ]] || out=$(mktemp -d "${TMPDIR:-/tmp}/abos-vm-tier.XXXXXX")
if [[ -d $out && -n $(ls -A "$out") ]]; then
    # only ever clear a directory an earlier run made
    [[ -f $out/summary.txt ]] || die "$out is not empty and not an earlier run's output"
    rm -rf "${out:?}"/*
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
console=$out/console.log
summary=$out/summary.txt
: > "$console"
: > "$summary"
t0=$(date +%s)
log "output directory: $out"

for t in qemu-system-x86_64 sgdisk veritysetup mkfs.ext4 debugfs lz4 busybox python3 apt-get dpkg-deb cpio strip; do
    command -v "$t" > /dev/null || die "missing tool: $t"
done

# ---------------------------------------------------------------- binaries
bins=(updog signpost pubsys repo-tools os-image)
if [[ -z ${ABOS_BIN_DIR:-} ]]; then
    ABOS_BIN_DIR=${CARGO_TARGET_DIR:-$repo_root/target}/debug
    log "building ${bins[*]} (cargo build, debug profile)"
    (cd "$repo_root" && cargo build -q $(printf -- '-p %s ' "${bins[@]}"))
fi
for b in "${bins[@]}"; do [[ -x $ABOS_BIN_DIR/$b ]] || die "no $b in $ABOS_BIN_DIR"; done
B=$ABOS_BIN_DIR

# ---------------------------------------------------------------- kernel, initramfs
kdir=$("$VM_DIR/fetch-kernel.sh")
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
initrd=$("$VM_DIR/mkinitramfs.sh" "$kdir")
log "kernel $(cat "$kdir/package") ($vmlinuz), initramfs $initrd"
echo "kernel: $(cat "$kdir/package")" >> "$summary"

# ---------------------------------------------------------------- root of trust, repository, server
variant=qemu
arch=x86_64
keys=$out/keys
mkdir -p "$keys"
"$B/repo-tools" root init "$keys/root.json" --expires "in 4 weeks" > /dev/null
"$B/repo-tools" root gen-key "$keys/key.pk8" --root "$keys/root.json" \
    --role root --role snapshot --role targets --role timestamp > /dev/null
"$B/repo-tools" root sign "$keys/root.json" --key "$keys/key.pk8" > /dev/null

repo=$out/repo
mkdir -p "$repo"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$repo" > "$out/http.log" 2>&1 &
http_pid=$!
boot_pid=
trap 'kill "$http_pid" 2> /dev/null || true' EXIT
trap '[[ -z $boot_pid ]] || kill "$boot_pid" 2> /dev/null; exit 143' TERM INT
port=
for _ in $(seq 50); do
    port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$out/http.log" | head -n1)
    [[ -n $port ]] && break
    sleep 0.1
done
[[ -n $port ]] || die "python3 -m http.server did not start (see $out/http.log)"
log "repository served on http://127.0.0.1:$port/ (the guest sees it as http://10.0.2.2:$port/)"

cat > "$out/updog.toml" <<TOML
metadata_base_url = "http://10.0.2.2:$port/metadata/$variant/$arch/"
targets_base_url = "http://10.0.2.2:$port/targets/"
seed = 1234
version_lock = "latest"
ignore_waves = false
TOML

# ---------------------------------------------------------------- OS builds
# build_os VERSION: rootfs + images in $out/build/VERSION; 1.0.0's disk image is the VM's disk.
# Builder: os-image (default) or handmade-os.sh (ABOS_VM_BUILDER=handmade; cross-check).
# ABOS_VM_FS=erofs makes os-image build erofs roots (default ext4).
builder=${ABOS_VM_BUILDER:-os-image}
[[ $builder == handmade || -x $B/os-image ]] || die "no os-image in $B (or set ABOS_VM_BUILDER=handmade)"
build_os() {
    local version=$1 dir=$out/build/$1
    if [[ $builder == os-image ]]; then
        "$VM_DIR/build-rootfs.sh" --out "$dir/rootfs" --updog "$B/updog" --signpost "$B/signpost"
        SOURCE_DATE_EPOCH=1700000000 "$B/os-image" build --rootfs "$dir/rootfs" --variant "$variant" \
            --arch "$arch" --version "$version" --build-id vmtier --name abos --kernel "$vmlinuz" \
            --root-json "$keys/root.json" --updog-toml "$out/updog.toml" --os-size-gib 1 \
            --fs "${ABOS_VM_FS:-ext4}" \
            --out "$dir/images" > "$dir/os-image.log" 2>&1 ||
            { cat "$dir/os-image.log" >&2; die "os-image build $version"; }
        local desc
        desc=$(ls "$dir"/images/*.json)
        printf 'DESCRIPTION=%s\n' "$desc" > "$dir/images/artifacts.env"
        if [[ $version == 1.0.0 ]]; then
            cp --sparse=always "$(ls "$dir"/images/*.img)" "$out/disk.img"
        fi
    else
        local disk_arg=()
        [[ $version == 1.0.0 ]] && disk_arg=(--disk "$out/disk.img")
        "$VM_DIR/build-rootfs.sh" --out "$dir/rootfs" --version "$version" --variant "$variant" \
            --updog "$B/updog" --signpost "$B/signpost" --root-json "$keys/root.json" \
            --updog-toml "$out/updog.toml"
        "$VM_DIR/handmade-os.sh" --rootfs "$dir/rootfs" --kernel "$vmlinuz" --out "$dir/images" "${disk_arg[@]}" 2> /dev/null
    fi
    log "built OS $version with $builder"
}
echo "builder: $builder, root filesystem: ${ABOS_VM_FS:-ext4}" >> "$summary"

publish() {
    local version=$1 BOOT= ROOT= HASH= DESCRIPTION= what
    . "$out/build/$1/images/artifacts.env"
    if [[ -n $DESCRIPTION ]]; then
        what=(--build-description "$DESCRIPTION")
    else
        what=(--variant "$variant" --arch "$arch" --version "$version" --boot "$BOOT" --root "$ROOT" --hash "$HASH")
    fi
    "$B/pubsys" repo --repo-dir "$repo" --root-role-path "$keys/root.json" --key "$keys/key.pk8" \
        "${what[@]}" > "$out/pubsys-$version.log" 2>&1 ||
        { cat "$out/pubsys-$version.log" >&2; die "pubsys repo $version"; }
    log "published $version"
}

# ---------------------------------------------------------------- checks
fails=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        echo "CHECK ok: $what" | tee -a "$summary"
    else
        echo "CHECK FAILED: $what" | tee -a "$summary"
        fails=$((fails + 1))
    fi
}
nboot=0
boot() { # boot ACTION: one boot; its console lines go to $out/boot-N.log and $console
    nboot=$((nboot + 1))
    local blog=$out/boot-$nboot.log line
    : > "$blog"
    "$VM_DIR/boot.sh" --disk "$out/disk.img" --initrd "$initrd" --signpost "$B/signpost" \
        --log "$blog" --action "$1" > "$out/boot-$nboot.stage" &
    boot_pid=$!
    wait "$boot_pid"
    boot_pid=
    line=$(cat "$out/boot-$nboot.stage")
    cat "$blog" >> "$console"
    echo "boot $nboot (action=$1): $line" | tee -a "$summary"
    grep -a '^ABOS-\|verity.*corrupt\|ABOS-INITRAMFS' "$blog" | sed 's/^/    /' | tee -a "$summary" || true
}
guest_said() { grep -aq -- "$2" "$out/boot-$1.log"; }
guest_never_said() { ! grep -aq -- "$2" "$out/boot-$1.log"; }

# ---------------------------------------------------------------- the story
build_os 1.0.0
build_os 1.1.0
publish 1.0.0
publish 1.1.0

boot update
check "boot 1: the guest runs 1.0.0 from set A" guest_said 1 "ABOS-BOOTED version=1.0.0 set=A"
check "boot 1: mark-successful-boot found its disk from the root device and succeeded" guest_said 1 "ABOS-MARKED-SUCCESSFUL"
check "boot 1: updog update exited 0" guest_said 1 "ABOS-UPDATE-RESULT rc=0"
"$B/signpost" --disk "$out/disk.img" --active a status --json > "$out/status-after-boot1.json"
check "after boot 1: set B boots next (host reads the GPT)" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["next_boot"]=="B" else 1)' "$out/status-after-boot1.json"

if [[ $short == 0 ]]; then
    build_os 1.2.0
    publish 1.2.0

    boot update
    check "boot 2: the selector picked B and the guest runs 1.1.0 from set B" guest_said 2 "ABOS-BOOTED version=1.1.0 set=B"
    check "boot 2: marked successful" guest_said 2 "ABOS-MARKED-SUCCESSFUL"
    check "boot 2: updog update (to 1.2.0, into set A) exited 0" guest_said 2 "ABOS-UPDATE-RESULT rc=0"

    # host-side cross-check with os-image's emulated boot: set A verifies and holds 1.2.0
    set_a_version() {
        "$B/os-image" boot-check --disk "$out/disk.img" --set a --json 2> /dev/null |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["system"]["os_release"]["VERSION_ID"])'
    }
    check "after boot 2: set A holds 1.2.0 and verifies (os-image boot-check on the host)" \
        test "$(set_a_version)" = 1.2.0

    # damage one block of the root that 1.2.0's update wrote into set A: the first block of
    # /bin/busybox (every boot executes it right after switch_root)
    python3 - "$out/disk.img" "$B/signpost" "$out" > "$out/damage.txt" <<'PY'
import json, subprocess, sys
disk, signpost, out = sys.argv[1:4]
st = json.loads(subprocess.run([signpost, "--disk", disk, "--active", "a", "status", "--json"], check=True, capture_output=True).stdout)
seta = next(s for s in st["sets"] if s["name"] == "A")
root = seta["partitions"]["root"] if "partitions" in seta else seta["root"]
first = root["first_byte"]
# find the physical block of /bin/busybox's first block with debugfs on a copy of the partition
# copy the filesystem (ext4 superblock: block count at 1024+4, log2(block size)-10 at 1024+24)
with open(disk, "rb") as f, open(out + "/rootA.ext4", "wb") as o:
    f.seek(first + 1024)
    sb = f.read(32)
    size = int.from_bytes(sb[4:8], "little") * (1024 << int.from_bytes(sb[24:28], "little"))
    size = min(size or root["len_bytes"], root["len_bytes"])
    f.seek(first)
    while size > 0:
        chunk = f.read(min(size, 1 << 20))
        o.write(chunk)
        size -= len(chunk)
r = subprocess.run(["debugfs", "-R", "bmap /bin/busybox 0", out + "/rootA.ext4"], capture_output=True, text=True)
try:
    block, what = int(r.stdout.strip()), "/bin/busybox block 0"
except ValueError:  # not ext4 (erofs): the block holding the superblock, read by mount
    block, what = 0, "superblock"
off = first + block * 4096 + 64
with open(disk, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
print(f"damaged ROOT-A (partition {root['number']}) block {block} ({what}): byte at disk offset {off} flipped")
PY
    echo "damage: $(cat "$out/damage.txt")" | tee -a "$summary"

    check "after the damage: os-image boot-check on the host refuses set A too" \
        bash -c '! "$1" boot-check --disk "$2" --set a > /dev/null 2>&1' _ "$B/os-image" "$out/disk.img"

    boot none
    check "boot 3: the selector picked set A (1.2.0, damaged)" guest_said 3 "^\[boot-stage\] ===== boot: set=A"
    check "boot 3: dm-verity reported the damaged block" guest_said 3 "verity.*corrupt"
    check "boot 3: 1.2.0 never reached userspace" guest_never_said 3 "ABOS-BOOTED"

    boot none
    check "boot 4: the selector fell back and the guest runs 1.1.0 from set B" guest_said 4 "ABOS-BOOTED version=1.1.0 set=B"
fi

secs=$(($(date +%s) - t0))
echo "total: ${secs}s, boots: $nboot, failed checks: $fails" | tee -a "$summary"
log "console log: $console"
[[ $fails == 0 ]]
