//! The VM tier: the built OS boots on a real Linux kernel in qemu (software emulation), passes its
//! health checks (`updog health-check`) and marks itself successful, updates itself from a signed repository served on the host, and rolls back
//! by itself when an update's root filesystem is damaged (dm-verity stops the boot).
//!
//! The work is done by `integration/vm/run-vm-tier.sh`; this test runs it and then asserts on
//! what the guest printed on its serial console (kept in `target/tmp/vm-tier/boot-N.log`).
//!
//! - Runs only if `qemu-system-x86_64` (and the image tools) are installed; otherwise prints a SKIP
//!   reason (under `CI=true` a missing tool fails the test instead).
//! - `ABOS_VM_TIER=short` runs one boot (1.0.0 boots, marks itself successful, updates to 1.1.0);
//!   anything else runs the full four-boot story.
//! - Needs network access to the Debian mirror the first time (kernel and dmsetup packages, then
//!   cached under `${ABOS_CACHE:-~/.cache/abos}`).
//!
//! Power loss (`vm_power_loss_during_update_keeps_a_bootable_set`): `run-vm-tier.sh --power-loss`
//! SIGKILLs qemu while the guest runs `updog update` (the guest's page cache is lost) at the points
//! in `ABOS_VM_POWER_LOSS` (default `activate random exited`), checks after each cut that a set
//! boots and verifies, and that the next run completes and the new set boots.
//!
//! Health gating (`vm_failed_health_check_rolls_back_to_the_previous_release`):
//! `run-vm-tier.sh --health-fail` gives 1.1.0 a health check that fails; 1.0.0 updates to it, the
//! guest's `updog health-check` fails on 1.1.0, rolls back and reboots (the guest prints
//! `updog status --json` before the reboot: `/var/lib/updog` is a tmpfs), and the next boot is
//! 1.0.0 again. The tests take turns (one qemu at a time).

#![allow(clippy::print_stderr)] // the test reports its duration, output directory and SKIP reasons

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

/// One VM tier run at a time: each is CPU-bound software emulation.
static ONE_VM: Mutex<()> = Mutex::new(());

const TOOLS: &[&str] = &[
    "qemu-system-x86_64",
    "sgdisk",
    "veritysetup",
    "mkfs.ext4",
    "debugfs",
    "lz4",
    "busybox",
    "python3",
    "apt-get",
    "dpkg-deb",
    "cpio",
    "strip",
];

const BINARIES: &[&str] = &["updog", "signpost", "pubsys", "repo-tools", "os-image"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/debug` (or the profile directory this test was built in), if the workspace's binaries
/// are there. `ABOS_BIN_DIR` in the environment takes precedence.
fn bin_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?.to_path_buf(); // …/debug/deps/vm-… -> …/debug
    BINARIES
        .iter()
        .all(|b| dir.join(b).is_file())
        .then_some(dir)
}

/// The `ABOS-BOOTED version=… set=…` line of one boot's console, if the guest printed one.
fn booted(log: &str) -> Option<(String, String)> {
    let line = log
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("ABOS-BOOTED "))?;
    let mut version = None;
    let mut set = None;
    for kv in line.split_whitespace() {
        match kv.split_once('=') {
            Some(("version", v)) => version = Some(v.to_owned()),
            Some(("set", s)) => set = Some(s.to_owned()),
            _ => {}
        }
    }
    Some((version?, set?))
}

/// The tools are there (else SKIP, or a failure under CI), and the workspace binaries are passed.
fn tier_command(args: &[&str], out: &Path) -> Option<Command> {
    for tool in TOOLS {
        if !test_support::require_tool(tool) {
            return None;
        }
    }
    if out.exists() {
        std::fs::remove_dir_all(out).expect("clear previous vm-tier output");
    }
    let mut cmd = Command::new(repo_root().join("integration/vm/run-vm-tier.sh"));
    cmd.args(args).arg("--out").arg(out);
    if std::env::var_os("ABOS_BIN_DIR").is_none() {
        match bin_dir() {
            Some(dir) => {
                cmd.env("ABOS_BIN_DIR", dir);
            }
            None => eprintln!(
                "vm tier: workspace binaries not found beside this test; the script builds them"
            ),
        }
    }
    Some(cmd)
}

fn read_boot(out: &Path, n: u32) -> String {
    let path = out.join(format!("boot-{n}.log"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn vm_boots_updates_and_rolls_back() {
    let short = std::env::var("ABOS_VM_TIER").is_ok_and(|v| v == "short");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-tier");
    let Some(mut cmd) = tier_command(if short { &["--short"] } else { &[] }, &out) else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let status = cmd.status().expect("run integration/vm/run-vm-tier.sh");
    let took = started.elapsed();
    eprintln!(
        "vm tier ({}) took {:.0} s; output and console logs in {}",
        if short { "short" } else { "full" },
        took.as_secs_f64(),
        out.display()
    );

    // What the guest printed, boot by boot.
    let boot1 = read_boot(&out, 1);
    assert_eq!(
        booted(&boot1),
        Some(("1.0.0".into(), "A".into())),
        "boot 1 console:\n{boot1}"
    );
    assert!(
        boot1.contains("ABOS-MARKED-SUCCESSFUL"),
        "boot 1 did not mark itself successful:\n{boot1}"
    );
    assert!(
        boot1.contains("ABOS-UPDATE-RESULT rc=0"),
        "boot 1's updog update failed:\n{boot1}"
    );

    if !short {
        let boot2 = read_boot(&out, 2);
        assert_eq!(
            booted(&boot2),
            Some(("1.1.0".into(), "B".into())),
            "boot 2 console:\n{boot2}"
        );
        assert!(
            boot2.contains("ABOS-MARKED-SUCCESSFUL"),
            "boot 2 did not mark itself successful:\n{boot2}"
        );
        assert!(
            boot2.contains("ABOS-UPDATE-RESULT rc=0"),
            "boot 2's updog update failed:\n{boot2}"
        );

        let boot3 = read_boot(&out, 3);
        assert!(
            boot3.contains("[boot-stage] ===== boot: set=A"),
            "boot 3 did not try set A:\n{boot3}"
        );
        assert!(
            boot3
                .lines()
                .any(|l| l.contains("verity") && l.contains("corrupted")),
            "boot 3: no dm-verity corruption report on the console:\n{boot3}"
        );
        assert_eq!(
            booted(&boot3),
            None,
            "boot 3 reached userspace from a damaged root:\n{boot3}"
        );

        let boot4 = read_boot(&out, 4);
        assert_eq!(
            booted(&boot4),
            Some(("1.1.0".into(), "B".into())),
            "boot 4 console:\n{boot4}"
        );
    }
    assert!(
        status.success(),
        "run-vm-tier.sh reported failed checks (see {}/summary.txt)",
        out.display()
    );
}

#[test]
fn vm_power_loss_during_update_keeps_a_bootable_set() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-power-loss");
    let Some(mut cmd) = tier_command(&["--power-loss"], &out) else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let status = cmd
        .status()
        .expect("run integration/vm/run-vm-tier.sh --power-loss");
    eprintln!(
        "vm tier (power loss) took {:.0} s; output and console logs in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap_or_default();
    let points =
        std::env::var("ABOS_VM_POWER_LOSS").unwrap_or_else(|_| "activate random exited".to_owned());
    let chosen = points.split_whitespace().filter(|p| *p != "random").count();

    // Boot by boot: every cut boot started from a set that booted, and the chosen cuts landed.
    let mut boots = Vec::new();
    for n in 1.. {
        if !out.join(format!("boot-{n}.log")).exists() {
            break;
        }
        let stage =
            std::fs::read_to_string(out.join(format!("boot-{n}.stage"))).unwrap_or_default();
        boots.push((read_boot(&out, n), stage));
    }
    let cuts = boots
        .iter()
        .filter(|(_, stage)| stage.contains("power_loss=yes"))
        .count();
    assert!(
        cuts >= chosen,
        "{cuts} power cuts landed, {chosen} chosen points asked for:\n{summary}"
    );
    for (i, (log, _)) in boots.iter().enumerate() {
        assert!(
            booted(log).is_some(),
            "boot {}: no set reached userspace after a power cut:\n{log}",
            i + 1
        );
    }
    let (last, _) = boots.last().expect("no boot ran");
    assert_eq!(
        booted(last),
        Some(("1.1.0".into(), "B".into())),
        "the last boot is not the new set:\n{last}"
    );
    assert!(
        status.success() && !summary.contains("CHECK FAILED"),
        "run-vm-tier.sh --power-loss reported failed checks:\n{summary}"
    );
}

/// The `ABOS-UPDOG-STATUS {json}` line (`updog status --json`, printed by the guest's
/// `reboot_command` just before updog's reboot), parsed.
fn updog_status(log: &str) -> Option<serde_json::Value> {
    let line = log
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("ABOS-UPDOG-STATUS "))?;
    serde_json::from_str(line).ok()
}

#[test]
fn vm_failed_health_check_rolls_back_to_the_previous_release() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-health-fail");
    let Some(mut cmd) = tier_command(&["--health-fail"], &out) else {
        return;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let status = cmd
        .status()
        .expect("run integration/vm/run-vm-tier.sh --health-fail");
    eprintln!(
        "vm tier (health check fails) took {:.0} s; output and console logs in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap_or_default();

    // Boot 1: 1.0.0 passes its checks, is marked successful and updates to 1.1.0 (set B).
    let boot1 = read_boot(&out, 1);
    assert_eq!(
        booted(&boot1),
        Some(("1.0.0".into(), "A".into())),
        "boot 1 console:\n{boot1}"
    );
    assert!(
        boot1.contains("ABOS-MARKED-SUCCESSFUL") && boot1.contains("ABOS-UPDATE-RESULT rc=0"),
        "boot 1 did not pass its health check and update:\n{boot1}"
    );

    // Boot 2: 1.1.0 from set B fails /etc/updog/health.d/10-fail; updog rolls back and reboots
    // before the guest gets any further.
    let boot2 = read_boot(&out, 2);
    assert!(
        boot2.contains("[boot-stage] ===== boot: set=B")
            && boot2.contains("ABOS-HEALTH-CHECK version=1.1.0"),
        "boot 2 did not run 1.1.0's health checks from set B:\n{boot2}"
    );
    assert!(
        boot2.contains("ABOS-REBOOT-BY-UPDOG"),
        "boot 2: updog did not run its reboot_command:\n{boot2}"
    );
    assert!(
        !boot2.contains("ABOS-MARKED-SUCCESSFUL") && booted(&boot2).is_none(),
        "boot 2: 1.1.0 got past its failed health check:\n{boot2}"
    );
    let st = updog_status(&boot2)
        .unwrap_or_else(|| panic!("boot 2: no parsable `updog status --json` line:\n{boot2}"));
    assert_eq!(st["state"], "rolled-back", "{st}");
    assert_eq!(st["running_version"], "1.1.0", "{st}");
    assert_eq!(st["next_boot"], "A", "{st}");
    assert_eq!(st["last_failure"]["step"], "health-check", "{st}");
    assert_eq!(st["last_failure"]["check"], "10-fail", "{st}");
    assert!(
        st["last_failure"]["output"]
            .as_str()
            .is_some_and(|o| o.contains("release 1.1.0 refuses to be healthy")),
        "the failing check's output is not in the status: {st}"
    );

    // Boot 3: with no manual step, the bootloader emulation picks the previous release.
    let boot3 = read_boot(&out, 3);
    assert_eq!(
        booted(&boot3),
        Some(("1.0.0".into(), "A".into())),
        "boot 3 console:\n{boot3}"
    );
    assert!(
        status.success() && !summary.contains("CHECK FAILED"),
        "run-vm-tier.sh --health-fail reported failed checks:\n{summary}"
    );
}

/// The firmware path (issue 18): no `-kernel/-append` and no selector on the host. SeaBIOS
/// (`ABOS_VM_FIRMWARE=bios`, the default) or OVMF (`uefi`) loads GRUB from the disk
/// (`os-image build --bootloader`), our `gptprio` module chooses the set and takes its try, and
/// grub.cfg on the chosen BOOT partition boots it. By default (CI) the short form: 1.0.0 boots
/// from A and updates to 1.1.0, then GRUB boots B (two boots). `ABOS_VM_FIRMWARE_TIER=full`: the
/// four-boot story, every boot chosen by GRUB, ending on B after dm-verity stopped the damaged A
/// (also `integration/vm/run-vm-tier.sh --firmware bios|uefi`). `ABOS_VM_FIRMWARE=bios,uefi`
/// runs both, one after the other; the full story does that by default, so
/// `ABOS_VM_FIRMWARE_TIER=full cargo test -p integration --test vm vm_boots_through_firmware`
/// is the one command for the whole story on SeaBIOS and OVMF.
#[test]
fn vm_boots_through_firmware_and_grub() {
    let short = std::env::var("ABOS_VM_FIRMWARE_TIER").map_or(true, |v| v != "full");
    let firmwares = std::env::var("ABOS_VM_FIRMWARE")
        .unwrap_or_else(|_| if short { "bios" } else { "bios,uefi" }.into());
    for firmware in firmwares.split(',') {
        assert!(
            firmware == "bios" || firmware == "uefi",
            "ABOS_VM_FIRMWARE must be bios, uefi or both (comma-separated), not {firmware}"
        );
        if !firmware_story(firmware, short) {
            return;
        }
    }
}

/// One run of the firmware path; false if a tool is missing (the skip is recorded).
fn firmware_story(firmware: &str, short: bool) -> bool {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("vm-tier-{firmware}"));
    let mut args = vec!["--firmware", firmware];
    if short {
        args.push("--short");
    }
    let Some(mut cmd) = tier_command(&args, &out) else {
        return false;
    };
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let status = cmd.status().expect("run integration/vm/run-vm-tier.sh");
    eprintln!(
        "vm tier ({firmware}, {}) took {:.0} s; output in {}",
        if short { "short" } else { "full" },
        started.elapsed().as_secs_f64(),
        out.display()
    );
    let grub_chose = |log: &str, set: &str| {
        log.contains(&format!("ABOS-GRUB gptprio set={set} "))
            && log.contains(&format!(
                "[boot-stage] ===== boot: firmware={firmware} (no -kernel"
            ))
    };
    let boot1 = read_boot(&out, 1);
    assert!(
        grub_chose(&boot1, "A"),
        "boot 1: GRUB did not choose A:\n{boot1}"
    );
    assert_eq!(
        booted(&boot1),
        Some(("1.0.0".into(), "A".into())),
        "boot 1:\n{boot1}"
    );
    assert!(
        boot1.contains("ABOS-UPDATE-RESULT rc=0"),
        "boot 1 update:\n{boot1}"
    );
    let boot2 = read_boot(&out, 2);
    assert!(
        grub_chose(&boot2, "B"),
        "boot 2: GRUB did not choose B:\n{boot2}"
    );
    assert!(
        boot2.contains("tries_left=0 wrote=1"),
        "boot 2: GRUB did not take B's try:\n{boot2}"
    );
    assert_eq!(
        booted(&boot2),
        Some(("1.1.0".into(), "B".into())),
        "boot 2:\n{boot2}"
    );
    if !short {
        let boot3 = read_boot(&out, 3);
        assert!(
            grub_chose(&boot3, "A"),
            "boot 3: GRUB did not choose A:\n{boot3}"
        );
        assert!(
            boot3
                .lines()
                .any(|l| l.contains("verity") && l.contains("corrupted")),
            "boot 3: no dm-verity corruption report:\n{boot3}"
        );
        assert_eq!(booted(&boot3), None, "boot 3 reached userspace:\n{boot3}");
        let boot4 = read_boot(&out, 4);
        assert!(
            grub_chose(&boot4, "B"),
            "boot 4: GRUB did not fall back to B:\n{boot4}"
        );
        assert_eq!(
            booted(&boot4),
            Some(("1.1.0".into(), "B".into())),
            "boot 4:\n{boot4}"
        );
    }
    assert!(
        status.success(),
        "run-vm-tier.sh --firmware {firmware} reported failed checks (see {}/summary.txt)",
        out.display()
    );
    true
}
