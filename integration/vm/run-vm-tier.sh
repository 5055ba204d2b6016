#!/usr/bin/env bash
# The VM tier: the built OS boots on a real Linux kernel in qemu, updates itself from a signed
# repository served on the host, and rolls back by itself when an update's root is damaged.
#
#   integration/vm/run-vm-tier.sh [--short | --power-loss | --health-fail] [--out DIR]
#
#   --short   one boot only: 1.0.0 boots from set A, marks itself successful and updates to 1.1.0
#             (writing set B of its own /dev/vda); the host then checks the GPT says B boots next.
#   (full)    four boots: 1.0.0/A updates -> 1.1.0/B marks successful and updates to 1.2.0 (set A)
#             -> the host damages one block of 1.2.0's root -> boot 3: dm-verity stops the boot
#             -> boot 4: the selector falls back to 1.1.0/B by itself.
#   --power-loss  instead of the story: cut the power (SIGKILL qemu: the guest's page cache is lost)
#             while 1.0.0 updates itself to 1.1.0, at the points listed in ABOS_VM_POWER_LOSS
#             (default "activate random exited"; see the README), checking after every cut that a
#             set boots and verifies; the next run completes and 1.1.0 boots from set B.
#   --health-fail  instead of the story: 1.1.0's root has a health check that fails
#             (/etc/updog/health.d/10-fail). Boot 1: 1.0.0/A updates to 1.1.0 (set B). Boot 2: 1.1.0/B
#             runs `updog health-check`, which fails, rolls back to A and reboots (printing
#             `updog status --json` first). Boot 3: the selector picks 1.0.0/A by itself.
#   --firmware bios|uefi  boot through firmware and GRUB (SeaBIOS or OVMF; no -kernel/-append, no
#             host-side selector): the releases are built with `os-image build --bootloader` (GRUB
#             with our gptprio module, scripts/build-grub.sh) and `--initrd`; GRUB chooses every
#             set. Also ABOS_VM_FIRMWARE. With --short, a second boot checks GRUB picks B.
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

short=0 power_loss=0 health_fail=0 out= firmware=${ABOS_VM_FIRMWARE:-}
while [[ $# -gt 0 ]]; do
    case $1 in
    --short) short=1; shift ;;
    --power-loss) power_loss=1; shift ;;
    --health-fail) health_fail=1; shift ;;
    --out) out=$2; shift 2 ;;
    --firmware) firmware=$2; shift 2 ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
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

# ---------------------------------------------------------------- firmware and GRUB
fw_build=()
if [[ -n $firmware ]]; then
    [[ $firmware == bios || $firmware == uefi ]] || die "--firmware bios|uefi, not $firmware"
    [[ ${ABOS_VM_BUILDER:-os-image} == os-image ]] || die "--firmware needs the os-image builder"
    grub_dir=$("$repo_root/scripts/build-grub.sh")
    log "firmware $firmware, GRUB build $grub_dir"
    echo "firmware: $firmware, bootloader: GRUB $(sed -n 's/^debian_version=//p' "$grub_dir/VERSION") + gptprio $(sed -n 's/^module_hash=//p' "$grub_dir/VERSION")" >> "$summary"
    # grub.cfg carries the whole command line now: what boot.sh adds to -append in the emulated path
    fw_build=(--bootloader "$grub_dir" --initrd "$initrd" --kernel-param console=ttyS0
        --kernel-param panic=1 --kernel-param loglevel=4)
else
    echo "firmware: none (boot.sh is the selector and passes -kernel/-append)" >> "$summary"
fi

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
reboot_command = ["/sbin/abos-reboot"]
TOML

# ---------------------------------------------------------------- OS builds
# build_os VERSION: rootfs + images in $out/build/VERSION; 1.0.0's disk image is the VM's disk.
# Builder: os-image (default) or handmade-os.sh (ABOS_VM_BUILDER=handmade; cross-check).
# ABOS_VM_FS=erofs makes os-image build erofs roots (default ext4).
builder=${ABOS_VM_BUILDER:-os-image}
[[ $builder == handmade || -x $B/os-image ]] || die "no os-image in $B (or set ABOS_VM_BUILDER=handmade)"
# With --health-fail, release $fail_version gets a failing health check.
fail_version=
[[ $health_fail == 0 ]] || fail_version=1.1.0
fail_message="abos-vm-tier: release 1.1.0 refuses to be healthy"
build_os() {
    local version=$1 dir=$out/build/$1 extra=()
    [[ $version != "$fail_version" ]] || extra=(--failing-health-check "$fail_message")
    if [[ $builder == os-image ]]; then
        "$VM_DIR/build-rootfs.sh" --out "$dir/rootfs" --updog "$B/updog" --signpost "$B/signpost" "${extra[@]}"
        SOURCE_DATE_EPOCH=1700000000 "$B/os-image" build --rootfs "$dir/rootfs" --variant "$variant" \
            --arch "$arch" --version "$version" --build-id vmtier --name abos --kernel "$vmlinuz" \
            --root-json "$keys/root.json" --updog-toml "$out/updog.toml" --os-size-gib 1 \
            --fs "${ABOS_VM_FS:-ext4}" "${fw_build[@]}" \
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
            --updog-toml "$out/updog.toml" "${extra[@]}"
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
boot() { # boot ACTION [boot.sh options]: one boot; its console lines go to $out/boot-N.log and $console
    nboot=$((nboot + 1))
    local blog=$out/boot-$nboot.log line action=$1
    shift
    : > "$blog"
    local fw=()
    [[ -z $firmware ]] || fw=(--firmware "$firmware")
    "$VM_DIR/boot.sh" --disk "$out/disk.img" --initrd "$initrd" --signpost "$B/signpost" \
        --log "$blog" --action "$action" "${fw[@]}" "$@" > "$out/boot-$nboot.stage" &
    boot_pid=$!
    wait "$boot_pid"
    boot_pid=
    line=$(cat "$out/boot-$nboot.stage")
    cat "$blog" >> "$console"
    echo "boot $nboot (action=$action${1:+ $*}): $line" | tee -a "$summary"
    grep -a '^ABOS-\|ABOS-GRUB\|verity.*corrupt\|ABOS-INITRAMFS' "$blog" | sed 's/^/    /' | tee -a "$summary" || true
}
guest_said() { grep -aq -- "$2" "$out/boot-$1.log"; }
guest_never_said() { ! grep -aq -- "$2" "$out/boot-$1.log"; }

# ---------------------------------------------------------------- power loss
# Kill points: NAME -> the console line (bash regex) after which qemu is SIGKILLed, and a delay.
#   clear      {"step":"fetch-migrations"}: the inactive set was just cleared
#   mid-root   the first {"image-progress"} of the root image: mid root stream
#   verify     {"step":"verify"}: every image written (flushed by updog), nothing verified yet
#   mark-valid {"step":"mark-valid"}: the set verified, its GPT entry about to change
#   activate   {"step":"activate"}: the set marked valid, the flip to it being written
#   exited     ABOS-UPDATE-RESULT rc=0: updog exited 0, before the guest's own `sync`; the update
#              must be durable, so set B must boot next
#   random     a uniform time within [0, W) after ABOS-ACTION update; W is the time from that line
#              to {"step":"activate"} in an earlier cut boot of this run (else 30 s);
#              seed ABOS_VM_SEED (printed)
kill_regex() {
    case $1 in
    clear) echo '"step":"fetch-migrations"' ;;
    mid-root) echo '"event":"image-progress","image":"root"' ;;
    verify) echo '"step":"verify"' ;;
    mark-valid) echo '"step":"mark-valid"' ;;
    activate) echo '"step":"activate"' ;;
    exited) echo '^ABOS-UPDATE-RESULT rc=0' ;;
    random) echo '^ABOS-ACTION update' ;;
    *) die "unknown power-loss point $1 (see run-vm-tier.sh)" ;;
    esac
}
# time between the first lines matching $2 and $3 in a boot's .times file (seconds, or nothing)
span() {
    awk -F'\t' -v a="$2" -v b="$3" '$2 ~ a && !ta {ta=$1} $2 ~ b && ta && !tb {tb=$1} END {if (ta && tb) printf "%.3f", tb-ta}' "$1"
}
next_boot() {
    "$B/signpost" --disk "$out/disk.img" --active a status --json |
        python3 -c 'import json,sys; print(json.load(sys.stdin).get("next_boot") or "none")'
}
set_version() { # the VERSION_ID os-image's emulated boot finds in a set that verifies
    "$B/os-image" boot-check --disk "$out/disk.img" --set "$1" --json 2> /dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["system"]["os_release"]["VERSION_ID"])'
}
power_loss_story() {
    local points=${ABOS_VM_POWER_LOSS:-activate random exited} seed=${ABOS_VM_SEED:-$(date +%s)}
    local window=30 point delay n=0 nb cuts=0 w next total
    total=$(wc -w <<< "$points")
    final_b=0
    echo "power loss points: $points (seed $seed)" | tee -a "$summary"
    cp --sparse=always "$out/disk.img" "$out/pristine.img"
    for point in $points; do
        n=$((n + 1))
        delay=0
        if [[ $point == random ]]; then
            delay=$(python3 -c 'import random,sys; print("%.3f" % random.Random(int(sys.argv[1])).uniform(0, float(sys.argv[2])))' "$((seed + n))" "$window")
        fi
        boot update --kill-on "$(kill_regex "$point")" --kill-delay "$delay"
        nb=$nboot
        check "boot $nb: the guest runs 1.0.0 from set A (after a cut: the old set boots)" guest_said "$nb" "ABOS-BOOTED version=1.0.0 set=A"
        w=$(span "$out/boot-$nb.times" '^ABOS-ACTION update' '"step":"activate"')
        [[ -z $w ]] || window=$w
        if grep -q 'power_loss=yes' "$out/boot-$nb.stage"; then
            cuts=$((cuts + 1))
            echo "    power cut at '$point'${delay:+ +${delay}s}; last progress before it: $(grep -a '^{"event"' "$out/boot-$nb.log" | tail -n1 | tr -d '\r')" | tee -a "$summary"
        else
            [[ $point == random ]] || check "boot $nb: the power cut at '$point' landed" false
            echo "    no power cut: the guest finished first" | tee -a "$summary"
        fi
        next=$(next_boot)
        echo "    after the cut the GPT says: next boot $next" | tee -a "$summary"
        check "after boot $nb: a set boots next" test "$next" != none
        check "after boot $nb: set A still verifies and holds 1.0.0 (os-image boot-check)" test "$(set_version a)" = 1.0.0
        if [[ $point == exited ]]; then
            check "after boot $nb: updog had exited 0 before the cut, so set B boots next" test "$next" = B
        fi
        if [[ $next == B ]]; then
            check "after boot $nb: set B, next to boot, verifies and holds 1.1.0 (os-image boot-check)" test "$(set_version b)" = 1.1.0
            boot none
            check "boot $nboot: the guest runs 1.1.0 from set B" guest_said "$nboot" "ABOS-BOOTED version=1.1.0 set=B"
            final_b=1
            if [[ $n -lt $total ]]; then # the next cut starts from the fresh 1.0.0 disk
                cp --sparse=always "$out/pristine.img" "$out/disk.img"
                echo "    disk reset to the fresh 1.0.0 image" | tee -a "$summary"
                final_b=0
            fi
        else
            final_b=0
        fi
    done
    echo "power cuts that landed: $cuts of $total" | tee -a "$summary"
    if [[ $final_b == 0 ]]; then
        boot update
        check "boot $nboot: after the cuts, the old set A boots (1.0.0)" guest_said "$nboot" "ABOS-BOOTED version=1.0.0 set=A"
        check "boot $nboot: the next updog update completes" guest_said "$nboot" "ABOS-UPDATE-RESULT rc=0"
        boot none
        check "boot $nboot: the new set boots: 1.1.0 from set B" guest_said "$nboot" "ABOS-BOOTED version=1.1.0 set=B"
    fi
}

build_os 1.0.0
build_os 1.1.0
publish 1.0.0
publish 1.1.0

# --health-fail: 1.1.0 fails its health check in the guest and the VM comes back on 1.0.0
health_fail_story() {
    echo "failing health check in $fail_version: /etc/updog/health.d/10-fail" | tee -a "$summary"
    boot update
    check "boot 1: the guest runs 1.0.0 from set A" guest_said 1 "ABOS-BOOTED version=1.0.0 set=A"
    check "boot 1: updog health-check passed and marked the boot successful" guest_said 1 "ABOS-MARKED-SUCCESSFUL"
    check "boot 1: updog update (to 1.1.0, into set B) exited 0" guest_said 1 "ABOS-UPDATE-RESULT rc=0"
    check "after boot 1: set B boots next (host reads the GPT)" test "$(next_boot)" = B

    boot none
    check "boot 2: the selector picked set B" guest_said 2 "^\[boot-stage\] ===== boot: set=B"
    check "boot 2: 1.1.0 ran its health checks" guest_said 2 "ABOS-HEALTH-CHECK version=1.1.0"
    check "boot 2: updog ran reboot_command after the failed check" guest_said 2 "ABOS-REBOOT-BY-UPDOG"
    check "boot 2: 1.1.0 was never marked successful" guest_never_said 2 "ABOS-MARKED-SUCCESSFUL"
    check "boot 2: the guest rebooted before reaching its action (no ABOS-BOOTED)" guest_never_said 2 "ABOS-BOOTED"
    grep -a '^ABOS-UPDOG-STATUS ' "$out/boot-2.log" | head -n1 | sed 's/^ABOS-UPDOG-STATUS //' | tr -d '\r' > "$out/updog-status-boot2.json" || true
    echo "    updog status before the reboot: $(cat "$out/updog-status-boot2.json")" | tee -a "$summary"
    check "boot 2: updog status says rolled-back, the failing check 10-fail and its output" \
        python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
f = s.get("last_failure") or {}
ok = (s.get("state") == "rolled-back" and f.get("step") == "health-check"
      and f.get("check") == "10-fail" and sys.argv[2] in (f.get("output") or ""))
sys.exit(0 if ok else 1)' "$out/updog-status-boot2.json" "$fail_message"
    check "after boot 2: the GPT says set A boots next (host)" test "$(next_boot)" = A

    boot none
    check "boot 3: the VM came back on the previous release: 1.0.0 from set A" guest_said 3 "ABOS-BOOTED version=1.0.0 set=A"
    check "boot 3: 1.0.0 is still marked successful" guest_said 3 "ABOS-MARKED-SUCCESSFUL"
}

if [[ $power_loss == 1 ]]; then
    power_loss_story
elif [[ $health_fail == 1 ]]; then
    health_fail_story
else
# ---------------------------------------------------------------- the story
boot update
[[ -z $firmware ]] || check "boot 1: GRUB's gptprio chose set A (successful, nothing written)" guest_said 1 "ABOS-GRUB gptprio set=A .*wrote=0"
check "boot 1: the guest runs 1.0.0 from set A" guest_said 1 "ABOS-BOOTED version=1.0.0 set=A"
check "boot 1: mark-successful-boot found its disk from the root device and succeeded" guest_said 1 "ABOS-MARKED-SUCCESSFUL"
check "boot 1: updog update exited 0" guest_said 1 "ABOS-UPDATE-RESULT rc=0"
"$B/signpost" --disk "$out/disk.img" --active a status --json > "$out/status-after-boot1.json"
check "after boot 1: set B boots next (host reads the GPT)" \
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["next_boot"]=="B" else 1)' "$out/status-after-boot1.json"

if [[ $short == 1 && -n $firmware ]]; then
    boot none
    check "boot 2: GRUB's gptprio chose set B and took its try" guest_said 2 "ABOS-GRUB gptprio set=B .*tries_left=0 wrote=1"
    check "boot 2: the guest runs 1.1.0 from set B" guest_said 2 "ABOS-BOOTED version=1.1.0 set=B"
    check "boot 2: marked successful" guest_said 2 "ABOS-MARKED-SUCCESSFUL"
fi
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

fi

secs=$(($(date +%s) - t0))
echo "total: ${secs}s, boots: $nboot, failed checks: $fails" | tee -a "$summary"
log "console log: $console"
[[ $fails == 0 ]]
