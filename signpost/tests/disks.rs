//! signpost on real GPT images made by sgdisk and by `write_new_table`, checked after every
//! command by `sfdisk --json` (exact attribute bits, nothing else changed) and `sgdisk -v`.

mod common;

use common::*;
use signpost::state::{self, Command as Cmd, DiskState};
use signpost::{Disk, Flags, SetName, Signpost, attrs, boot_select};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn tools() -> bool {
    test_support::require_tool("sgdisk") && test_support::require_tool("sfdisk")
}

/// The attribute words the oracle must show for `state`, given the image's initial words.
fn expected_attrs(
    initial: &BTreeMap<u32, u64>,
    sets: Sets,
    state: &DiskState,
) -> BTreeMap<u32, u64> {
    let n = numbers(sets);
    let mut m = BTreeMap::new();
    m.insert(n.boot_a, attrs::encode(initial[&n.boot_a], state.a));
    if let (Some(b), Some(fb)) = (n.boot_b, state.b) {
        m.insert(b, attrs::encode(initial[&b], fb));
    }
    m.insert(
        n.private,
        attrs::with_ever_booted(initial[&n.private], state.ever_booted),
    );
    m
}

fn gpt_bytes(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap();
    let mut v = data[..34 * 512].to_vec();
    v.extend_from_slice(&data[data.len() - 33 * 512..]);
    v
}

/// A full update cycle A → B, a failed trial, a rollback, through the library, with the oracle
/// checked after every step.
fn update_cycle(path: &Path) {
    let initial = sfdisk(path);
    let check = |state: &DiskState| {
        assert_sgdisk_clean(path);
        let now = sfdisk(path);
        assert_only_attrs(
            &initial,
            &now,
            &expected_attrs(&initial.1, Sets::Dual, state),
        );
    };
    let mut sp = Signpost::new(Disk::open(path).unwrap(), SetName::A).unwrap();
    assert_eq!(
        sp.state(),
        DiskState {
            a: Flags {
                priority: 1,
                tries_left: 0,
                successful: true
            },
            b: Some(Flags::default()),
            ever_booted: false
        }
    );
    assert!(!sp.has_boot_ever_succeeded());
    for cmd in [
        Cmd::MarkSuccessfulBoot,
        Cmd::ClearInactive,
        Cmd::MarkInactiveValid,
        Cmd::UpgradeToInactive,
    ] {
        sp.run(cmd).unwrap();
        check(&sp.state());
    }
    assert!(sp.has_boot_ever_succeeded());
    assert_eq!(sp.next_boot(), Some(SetName::B));
    let mut disk = sp.into_disk();
    // "Reboot": the bootloader takes B's only try.
    let choice = boot_select(&mut disk).unwrap().unwrap();
    assert_eq!((choice.set, choice.tries_left_after), (SetName::B, 0));
    assert_eq!(
        choice.partitions.root.number,
        choice.partitions.boot.number + 1
    );
    check(&disk.state());
    // B dies before mark-successful-boot: the next boot falls back to A without a write.
    let before = gpt_bytes(path);
    assert_eq!(boot_select(&mut disk).unwrap().unwrap().set, SetName::A);
    assert_eq!(
        gpt_bytes(path),
        before,
        "choosing a successful set with no tries writes nothing"
    );
    // Back on A: B is cleared, rewritten, tried again and this time succeeds.
    let mut sp = Signpost::new(disk, SetName::A).unwrap();
    for cmd in [
        Cmd::ClearInactive,
        Cmd::MarkInactiveValid,
        Cmd::UpgradeToInactive,
    ] {
        sp.run(cmd).unwrap();
        check(&sp.state());
    }
    let mut disk = sp.into_disk();
    assert_eq!(boot_select(&mut disk).unwrap().unwrap().set, SetName::B);
    let mut sp = Signpost::new(disk, SetName::B).unwrap();
    sp.mark_successful_boot().unwrap();
    check(&sp.state());
    assert_eq!(sp.next_boot(), Some(SetName::B));
    // Operator rolls back to A, then changes their mind.
    sp.rollback_to_inactive().unwrap();
    check(&sp.state());
    assert_eq!(sp.next_boot(), Some(SetName::A));
    sp.cancel_upgrade().unwrap();
    check(&sp.state());
    assert_eq!(sp.next_boot(), Some(SetName::B));
    // A refused command changes no byte.
    let before = gpt_bytes(path);
    let err = sp.upgrade_to_inactive().unwrap_err();
    assert_eq!(err.exit_code(), signpost::ExitStatus::Refused);
    assert_eq!(gpt_bytes(path), before);
}

#[test]
fn update_cycle_on_sgdisk_image() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    update_cycle(&sgdisk_image(dir.path(), Sets::Dual));
}

#[test]
fn update_cycle_on_native_image() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    assert_sgdisk_clean(&path);
    update_cycle(&path);
}

#[test]
fn native_table_matches_sgdisk_view() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let (parts, attrs) = sfdisk(&path);
    assert_eq!(parts.len(), 13);
    for (i, (label, ty, a)) in layout(Sets::Dual).iter().enumerate() {
        let n = i as u32 + 1;
        let p = &parts[&n];
        assert_eq!(p["type"].as_str().unwrap().to_lowercase(), *ty);
        assert_eq!(p.get("name").and_then(|v| v.as_str()).unwrap_or(""), *label);
        assert_eq!(p["start"].as_u64().unwrap(), u64::from(n) * 2048);
        assert_eq!(p["size"].as_u64().unwrap(), 2048);
        assert_eq!(attrs[&n], *a);
    }
    // sgdisk -p reads the protective MBR + GPT without complaint and agrees on the disk GUID.
    let out = run(Command::new("sgdisk").arg("-p").arg(&path));
    assert!(
        out.contains("11111111-1111-1111-1111-111111111111"),
        "{out}"
    );
}

/// Every state of an update cycle × every command, through the CLI binary on a real disk,
/// checked against the pure model by the independent reader.
#[test]
fn cli_every_state_times_every_command() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let template = sgdisk_image(dir.path(), Sets::Dual);
    let initial = sfdisk(&template);
    let flags = |p, t, s| Flags {
        priority: p,
        tries_left: t,
        successful: s,
    };
    let states = [
        (flags(1, 0, true), flags(0, 0, false), false, SetName::A),
        (flags(1, 0, true), flags(0, 1, false), true, SetName::A),
        (flags(1, 0, true), flags(2, 1, false), true, SetName::A),
        (flags(1, 0, true), flags(2, 0, false), true, SetName::B),
        (flags(1, 0, true), flags(2, 0, true), true, SetName::B),
        (flags(1, 0, true), flags(2, 0, false), true, SetName::A),
        (flags(2, 0, true), flags(0, 1, false), true, SetName::A),
        (flags(0, 0, true), flags(2, 0, true), true, SetName::B),
    ];
    let bin = env!("CARGO_BIN_EXE_signpost");
    for (a, b, e, active) in states {
        let start = DiskState {
            a,
            b: Some(b),
            ever_booted: e,
        };
        for cmd in Cmd::ALL {
            let path = dir.path().join("work.img");
            std::fs::copy(&template, &path).unwrap();
            Disk::open(&path).unwrap().write_state(&start).unwrap();
            let out = Command::new(bin)
                .args(["--disk"])
                .arg(&path)
                .args(["--active", active.letter(), cmd.name()])
                .output()
                .unwrap();
            let now = sfdisk(&path);
            assert_sgdisk_clean(&path);
            match state::transition(&start, active, cmd) {
                Ok(after) => {
                    assert!(
                        out.status.success(),
                        "{cmd} on {start:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert_only_attrs(
                        &initial,
                        &now,
                        &expected_attrs(&initial.1, Sets::Dual, &after),
                    );
                }
                Err(e) => {
                    assert_eq!(
                        out.status.code(),
                        Some(4),
                        "{cmd} on {start:?} should be refused: {e}"
                    );
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    assert!(stderr.starts_with("error: "), "{stderr}");
                    assert_only_attrs(
                        &initial,
                        &now,
                        &expected_attrs(&initial.1, Sets::Dual, &start),
                    );
                }
            }
        }
    }
}

#[test]
fn single_set_disk_refuses_inactive_operations() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    for path in [
        sgdisk_image(dir.path(), Sets::Single),
        native_image(dir.path(), Sets::Single, 512),
    ] {
        let initial = sfdisk(&path);
        let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
        assert!(!sp.disk().is_dual());
        assert!(sp.inactive().is_err());
        for cmd in [
            Cmd::ClearInactive,
            Cmd::MarkInactiveValid,
            Cmd::UpgradeToInactive,
            Cmd::CancelUpgrade,
            Cmd::RollbackToInactive,
        ] {
            let err = sp.run(cmd).unwrap_err();
            assert!(err.to_string().contains("single partition set"), "{err}");
        }
        sp.mark_successful_boot().unwrap();
        let state = sp.state();
        assert!(state.ever_booted);
        assert_only_attrs(
            &initial,
            &sfdisk(&path),
            &expected_attrs(&initial.1, Sets::Single, &state),
        );
        assert_sgdisk_clean(&path);
        let disk = sp.into_disk();
        assert!(
            Signpost::new(disk, SetName::B)
                .unwrap_err()
                .to_string()
                .contains("single partition set")
        );
    }
}

#[test]
fn status_reports_each_sets_own_partitions() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--disk")
        .arg(&path)
        .args(["--active", "b", "status"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let p = path.display();
    assert_eq!(
        text,
        format!(
            "OS disk: {p}\n\
             Set A:   boot={p}#3 root={p}#4 hash={p}#5 priority=1 tries_left=0 successful=true bootable=true\n\
             Set B:   boot={p}#8 root={p}#9 hash={p}#10 priority=0 tries_left=0 successful=false bootable=false\n\
             Active:  Set B\n\
             Next:    Set A\n"
        )
    );
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--disk")
        .arg(&path)
        .args(["--active", "b", "status", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["active"], "B");
    assert_eq!(v["next_boot"], "A");
    assert_eq!(v["sets"][1]["boot"]["label"], "BOTTLEROCKET-BOOT-B");
    assert_eq!(v["sets"][1]["root"]["number"], 9);
    assert_eq!(v["sets"][0]["flags"]["priority"], 1);
    assert_eq!(v["sets"][0]["boot"]["first_byte"], 3 * MIB);
}

#[test]
fn has_boot_ever_succeeded_output() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let bin = env!("CARGO_BIN_EXE_signpost");
    let ask = |json: bool| {
        let mut c = Command::new(bin);
        c.arg("--disk")
            .arg(&path)
            .args(["--active", "a", "has-boot-ever-succeeded"]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(ask(false), "");
    assert_eq!(
        ask(true).trim(),
        "{\n  \"has_boot_ever_succeeded\": false\n}"
    );
    run(Command::new(bin)
        .arg("--disk")
        .arg(&path)
        .args(["--active", "a", "mark-successful-boot"]));
    assert_eq!(ask(false), "true\n");
    let v: serde_json::Value = serde_json::from_str(&ask(true)).unwrap();
    assert_eq!(v["has_boot_ever_succeeded"], true);
}

#[test]
fn boot_select_cli() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let bin = env!("CARGO_BIN_EXE_signpost");
    let mut disk = Disk::open(&path).unwrap();
    disk.write_state(&DiskState {
        a: Flags {
            priority: 1,
            tries_left: 0,
            successful: true,
        },
        b: Some(Flags {
            priority: 2,
            tries_left: 2,
            successful: false,
        }),
        ever_booted: true,
    })
    .unwrap();
    drop(disk);
    let select = || {
        let out = Command::new(bin)
            .arg("--disk")
            .arg(&path)
            .args(["boot-select", "--json"])
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    for tries_after in [1, 0] {
        let (code, v) = select();
        assert_eq!(code, Some(0));
        assert_eq!(v["set"], "B");
        assert_eq!(v["tries_left_after"], tries_after);
        assert_eq!(v["partitions"]["hash"]["number"], 10);
        assert_sgdisk_clean(&path);
    }
    assert_eq!(select().1["set"], "A");
    // Nothing bootable: exit 7 and JSON null.
    let mut disk = Disk::open(&path).unwrap();
    disk.write_state(&DiskState {
        a: Flags::default(),
        b: Some(Flags::default()),
        ever_booted: true,
    })
    .unwrap();
    drop(disk);
    let (code, v) = select();
    assert_eq!(code, Some(7));
    assert!(v.is_null());
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let dir = test_support::tempdir();
    let out = run(Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(["generate-docs", "--out"])
        .arg(dir.path()));
    for f in [
        "signpost.1",
        "signpost-status.1",
        "signpost-boot-select.1",
        "signpost.bash",
        "_signpost",
        "signpost.fish",
    ] {
        let p = dir.path().join(f);
        assert!(p.is_file(), "{f} missing; output:\n{out}");
        assert!(std::fs::metadata(&p).unwrap().len() > 100);
    }
}
