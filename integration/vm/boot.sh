#!/usr/bin/env bash
# The VM tier's boot stage: this script is the firmware and the bootloader.
#
#   boot.sh --disk D --initrd INITRAMFS --signpost BIN --log LOG [--action update|none]
#           [--kernel-fallback VMLINUZ] [--timeout SECONDS] [--kill-on REGEX [--kill-delay SECONDS]]
#           [--firmware bios|uefi]
#
# --firmware: this script is NOT the bootloader. qemu starts the firmware (SeaBIOS, qemu's own, or
# OVMF from Debian's `ovmf`) with no -kernel/-append; the firmware loads GRUB from the disk
# (boot.img + core.img in BIOS-BOOT, or EFI/BOOT/BOOTX64.EFI on EFI-SYSTEM, installed by
# `os-image build --bootloader`), GRUB's gptprio module chooses the set, decrements its tries and
# writes the GPT, and grub.cfg on the chosen BOOT partition loads kernel and initramfs. The set
# GRUB chose is read from its console line `ABOS-GRUB gptprio set=X ...`. The action goes to the
# guest on a second disk (/dev/vdb, `abos.action=NAME`), since the command line is grub.cfg's.
#
# What GRUB does on a Bottlerocket disk, done on the host against the disk image file:
#  1. `signpost --disk D boot-select --json`: the gptprio rule (same selector code the GRUB rule is
#     specified by): choose the set, decrement its tries_left, write both GPT copies.
#  2. Read the chosen set's BOOT partition: grub/grub.cfg (the dm-verity table in
#     `dm_verity_root`, the `linux` line) and the kernel it names (debugfs, no mount).
#  3. Expand `$boot_uuid` and the other variables the way GRUB would and start qemu with
#     `-kernel/-initrd/-append`; the kernel command line is grub.cfg's plus console/panic settings
#     and `abos.action=`. The initramfs (see mkinitramfs.sh) does what a kernel with DM_INIT would.
# The guest console goes to LOG (appended); a header line marks each boot. Prints one summary line
# `BOOT-STAGE set=<A|B|none> tries_left_after=<n> qemu_rc=<rc> seconds=<s> power_loss=<yes|no>`
# on stdout.
#
# Power loss (--kill-on): the console is read line by line; KILL_DELAY seconds after the first
# line matching REGEX (bash =~), qemu gets SIGKILL. The guest's page cache (everything the guest
# wrote but had not yet sent to its virtio disk) is lost; what qemu had already written to the
# image file stays (cache=writeback: qemu's writes sit in the host's page cache, which survives
# qemu). So only what the guest flushed, or had written back by itself, survives. The log gets
# `[boot-stage] POWER LOSS …`; console lines with `ABOS-` or `"event"` are also written with their
# arrival time (bash $EPOCHREALTIME) to LOG's `.times` sibling (LOG without `.log`, plus `.times`).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

disk= initrd= signpost= logf= action=none kernel_fallback= timeout_s=${ABOS_VM_TIMEOUT:-300}
kill_on= kill_delay=0 firmware=
while [[ $# -gt 0 ]]; do
    case $1 in
    --disk) disk=$2 ;;
    --initrd) initrd=$2 ;;
    --signpost) signpost=$2 ;;
    --log) logf=$2 ;;
    --action) action=$2 ;;
    --kernel-fallback) kernel_fallback=$2 ;;
    --timeout) timeout_s=$2 ;;
    --kill-on) kill_on=$2 ;;
    --kill-delay) kill_delay=$2 ;;
    --firmware) firmware=$2 ;;
    *) die "boot.sh: unknown argument $1" ;;
    esac
    shift 2
done
for v in disk initrd signpost logf; do [[ -n ${!v} ]] || die "boot.sh: --$v is required"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The OVMF firmware files (Debian's ovmf package).
ovmf_code=${ABOS_OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
ovmf_vars=${ABOS_OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
[[ -f $ovmf_code ]] || ovmf_code=/usr/share/OVMF/OVMF_CODE.fd
[[ -f $ovmf_vars ]] || ovmf_vars=/usr/share/OVMF/OVMF_VARS.fd

boot_firmware() {
    printf 'abos.action=%s\n' "$action" > "$work/action.img"
    truncate -s 1M "$work/action.img"
    local fw=()
    if [[ $firmware == uefi ]]; then
        [[ -f $ovmf_code && -f $ovmf_vars ]] || die "no OVMF firmware ($ovmf_code): apt-get install ovmf"
        cp "$ovmf_vars" "$work/vars.fd"
        fw=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$ovmf_code"
            -drive "if=pflash,format=raw,unit=1,file=$work/vars.fd")
    fi
    echo "[boot-stage] ===== boot: firmware=$firmware (no -kernel: the firmware loads GRUB from the disk, GRUB's gptprio chooses)" >> "$logf"
    qemu=(qemu-system-x86_64 -machine q35 -m 512 -nographic -no-reboot "${fw[@]}"
        -drive "file=$disk,if=none,id=d0,format=raw,cache=writeback"
        -device virtio-blk-pci,drive=d0,bootindex=0
        -drive "file=$work/action.img,if=none,id=d1,format=raw,readonly=on"
        -device virtio-blk-pci,drive=d1
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0
        -pidfile "$work/qemu.pid")
    run_qemu
    local grub_line
    grub_line=$(grep -a -o 'ABOS-GRUB gptprio set=[AB] tries_left=[0-9]* wrote=[01]' "$logf" | head -n1 || true)
    set=$(sed -n 's/.*set=\([AB]\).*/\1/p' <<< "$grub_line")
    tries=$(sed -n 's/.*tries_left=\([0-9]*\).*/\1/p' <<< "$grub_line")
    [[ -n $set ]] || set=none tries=0
    echo "[boot-stage] ===== boot: set=$set tries_left_after=$tries (chosen by GRUB's gptprio.next, firmware=$firmware)" >> "$logf"
    echo "[boot-stage] qemu exited rc=$rc after ${secs}s" >> "$logf"
    echo "BOOT-STAGE set=$set tries_left_after=$tries qemu_rc=$rc seconds=$secs power_loss=$power_loss firmware=$firmware"
}

# Copies the console (stdin) to the log; with --kill-on, SIGKILLs qemu after the first match.
times_f=${logf%.log}.times
watch_console() {
    local line armed=1
    while IFS= read -r line || [[ -n $line ]]; do
        printf '%s\n' "$line" >> "$logf"
        [[ $line == *ABOS-* || $line == *'"event"'* ]] && printf '%s\t%s\n' "$EPOCHREALTIME" "${line%$'\r'}" >> "$times_f"
        if [[ $armed == 1 && -n $kill_on && $line =~ $kill_on ]]; then
            armed=0
            (
                [[ $kill_delay == 0 ]] || sleep "$kill_delay"
                if kill -KILL "$(cat "$work/qemu.pid")" 2> /dev/null; then
                    printf '%s\t%s\n' "$EPOCHREALTIME" "POWER-LOSS" >> "$times_f"
                    echo "[boot-stage] POWER LOSS: qemu killed (SIGKILL) ${kill_delay}s after the console line matching '$kill_on'" >> "$logf"
                else
                    echo "[boot-stage] power loss not applied: qemu had already exited ${kill_delay}s after the match" >> "$logf"
                fi
            ) &
        fi
    done
    wait
}

run_qemu() {
start=$(date +%s)
rc=0
mkfifo "$work/console"
timeout "$timeout_s" "${qemu[@]}" < /dev/null > "$work/console" 2>&1 &
qpid=$!
watch_console < "$work/console" &
wpid=$!
# if this script is stopped, stop the VM too (timeout passes the signal on to qemu)
trap 'kill "$qpid" "$wpid" 2> /dev/null; rm -rf "$work"; exit 143' TERM INT
wait "$qpid" || rc=$?
wait "$wpid" || true
secs=$(($(date +%s) - start))
power_loss=no
grep -q '^\[boot-stage\] POWER LOSS' "$logf" && [[ $rc == 137 ]] && power_loss=yes
return 0
}

if [[ -n $firmware ]]; then
    [[ $firmware == bios || $firmware == uefi ]] || die "boot.sh: --firmware bios|uefi, not $firmware"
    boot_firmware
    exit 0
fi

# 1. the selector
rc=0
"$signpost" --disk "$disk" boot-select --json > "$work/choice.json" 2> "$work/choice.err" || rc=$?
if [[ $rc == 7 ]]; then # signpost's exit code for "nothing bootable" (GRUB: "no such partition")
    echo "[boot-stage] no bootable set: firmware halts" >> "$logf"
    echo "BOOT-STAGE set=none tries_left_after=0 qemu_rc=none seconds=0"
    exit 0
elif [[ $rc != 0 ]]; then
    cat "$work/choice.err" >&2
    die "signpost boot-select failed (exit $rc)"
fi
read -r set tries boot_no boot_first boot_len boot_uuid < <(python3 - "$work/choice.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
if c is None or c.get("set") is None:
    print("none 0 0 0 0 -"); sys.exit()
b = c["partitions"]["boot"]
print(c["set"], c.get("tries_left_after", "?"), b["number"], b["first_byte"], b["len_bytes"], b["unique_guid"].lower())
PY
)
if [[ $set == none ]]; then
    echo "[boot-stage] no bootable set: firmware halts" >> "$logf"
    echo "BOOT-STAGE set=none tries_left_after=0 qemu_rc=none seconds=0"
    exit 0
fi

# 2. the chosen BOOT partition
dd if="$disk" of="$work/boot.fs" bs=1M iflag=skip_bytes,count_bytes skip="$boot_first" count="$boot_len" status=none
debugfs -R 'cat /grub/grub.cfg' "$work/boot.fs" > "$work/grub.cfg" 2> /dev/null
[[ -s $work/grub.cfg ]] || die "no /grub/grub.cfg on BOOT partition $boot_no of $disk"

# 3. GRUB's part: variables, the linux line, the kernel image
python3 - "$work/grub.cfg" "$boot_uuid" "$action" > "$work/linux" <<'PY'
import re, sys
cfg, boot_uuid, action = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
env = {"boot_uuid": boot_uuid, "root": "boot"}
for m in re.finditer(r'^\s*set\s+(\w+)=(?:"([^"]*)"|(\S*))\s*$', cfg, re.M):
    env[m.group(1)] = m.group(2) if m.group(2) is not None else m.group(3)
cfg = re.sub(r'\\\n', ' ', cfg)   # GRUB joins lines ending with a backslash
line = next(l.strip() for l in cfg.splitlines() if l.strip().startswith("linux "))
line = re.sub(r'\s+', ' ', line)
_, image, args = line.split(None, 2)
expand = lambda s: re.sub(r'\$\{?(\w+)\}?', lambda m: env.get(m.group(1), ""), s)
args = expand(expand(args))   # dm_verity_root itself refers to $boot_uuid
image = re.sub(r'^\(\$root\)', '', image)
ours = f"console=ttyS0 panic=1 loglevel=4 abos.action={action}"
args = args.replace(" -- ", f" {ours} -- ", 1) if " -- " in args else f"{args} {ours}"
print(image)
print(args)
PY
image=$(sed -n 1p "$work/linux")
cmdline=$(sed -n 2p "$work/linux")
kernel_src="BOOT partition $boot_no:$image"
debugfs -R "dump $image $work/vmlinuz" "$work/boot.fs" 2> /dev/null || true
if [[ ! -s $work/vmlinuz ]]; then
    [[ -n $kernel_fallback ]] || die "no kernel $image on BOOT partition $boot_no and no --kernel-fallback"
    cp "$kernel_fallback" "$work/vmlinuz"
    kernel_src="fallback $kernel_fallback (BOOT partition $boot_no has no $image)"
fi

{
    echo "[boot-stage] ===== boot: set=$set tries_left_after=$tries boot_uuid=$boot_uuid"
    echo "[boot-stage] kernel: $kernel_src"
    echo "[boot-stage] cmdline: $cmdline"
} >> "$logf"

# cache=writeback: qemu's writes go to the host page cache (kept when qemu is killed); the guest
# sees a volatile write cache and sends flushes. `cache=none` would need O_DIRECT on the host
# filesystem (tmpfs has none) and changes nothing about what a killed qemu keeps.
qemu=(qemu-system-x86_64 -machine q35 -m 512 -nographic -no-reboot
    -kernel "$work/vmlinuz" -initrd "$initrd" -append "$cmdline"
    -drive "file=$disk,if=virtio,format=raw,cache=writeback"
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0
    -pidfile "$work/qemu.pid")

run_qemu
echo "[boot-stage] qemu exited rc=$rc after ${secs}s" >> "$logf"
echo "BOOT-STAGE set=$set tries_left_after=$tries qemu_rc=$rc seconds=$secs power_loss=$power_loss"
