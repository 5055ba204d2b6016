//! The host-side gates of a fleet rollout, at the command level with the real binaries (issue
//! 14): maintenance windows with an injected clock (`updog --at`, the hidden clock override the
//! wave tests use) — inside, outside, across midnight, a DST change, the window's time zone
//! changed in updog.toml and the host's own `TZ` changed — and the health gate of `health_units`
//! (`systemctl is-active`) failing for real and rolling the host back.
//!
//! The window math itself is unit-tested in `updog/src/window.rs`; here every answer comes from
//! `updog check-update` / `update` and `updog status --json` (`window_opens_at`, `state`), and the
//! partition table (`signpost status`).

use integration::Bins;
use integration::fleet::Node;
use integration::story::{Build, Quiet, Trust, World, s};
use serde_json::Value;
use std::path::Path;

const QUIET: Quiet = Quiet;

fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs", "sgdisk", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

fn world(dir: &Path) -> (World<'static>, Trust, Build) {
    let world = World::new(dir, Bins::locate().expect("binaries"), &QUIET);
    let trust = world.root_of_trust();
    let old = world.build_os("1.0.0", &trust);
    let new = world.build_os("1.1.0", &trust);
    let past = "2020-01-01T00:00:00Z";
    world.publish(&trust, &old, "default", past, &[]).ok();
    world.publish(&trust, &new, "default", past, &[]).ok();
    (world, trust, old)
}

/// A host on 1.0.0 (file:// repository) whose updog.toml ends with `extra`; its reboot command
/// touches `DIR/rebooted`.
fn host(world: &World<'_>, name: &str, old: &Build, trust: &Trust, extra: &str) -> Node {
    let repo = world.repo();
    let base = repo.file_base();
    let h = world.make_host(
        name,
        old,
        trust,
        &repo.metadata_url(&base),
        &repo.targets_url(&base),
        0,
    );
    let config = h.root.join("etc/updog.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "reboot_command = [\"touch\", \"{}\"]\n{extra}",
        s(&h.root.join("rebooted"))
    ));
    std::fs::write(&config, text).unwrap();
    Node {
        name: name.into(),
        root: h.root,
        disk: h.disk,
        active: h.active,
    }
}

fn set_window(node: &Node, window: &str) {
    let config = node.root.join("etc/updog.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("update_window"))
        .collect();
    std::fs::write(
        &config,
        format!("{}\nupdate_window = {window}\n", kept.join("\n")),
    )
    .unwrap();
}

/// `check-update --at AT` (exit 0: 1.1.0 is available), then the window's answer from the
/// status file: None when open, else when it opens.
fn window_at(node: &Node, bins: &Bins, at: &str, tz: Option<&str>) -> Option<String> {
    let mut cmd = node.updog_cmd(bins, &["check-update", "--json", "--at", at]);
    if let Some(tz) = tz {
        cmd.env("TZ", tz);
    }
    let r = integration::run(cmd);
    assert_eq!(r.code, 0, "check-update at {at}: {} {}", r.stdout, r.stderr);
    assert_eq!(r.json()["version"], "1.1.0", "{}", r.stdout);
    let st: Value = node.status(bins);
    st["window_opens_at"].as_str().map(str::to_owned)
}

#[test]
fn windows_inside_outside_across_midnight_and_time_zone_changes() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, old) = world(dir.path());
    let bins = world.bins.clone();
    // Fridays 22:00 until Saturday 03:00 in Berlin (UTC+1 in January); 2030-01-04 is a Friday.
    let node = host(
        &world,
        "night",
        &old,
        &trust,
        "update_window = { days = [\"fri\"], start = \"22:00\", end = \"03:00\", time_zone = \"Europe/Berlin\" }\n",
    );
    // Outside: Wednesday noon; one minute before it opens; at its end (exclusive).
    let cases = [
        ("2030-01-02T12:00:00Z", Some("2030-01-04T21:00:00Z")),
        ("2030-01-04T20:59:00Z", Some("2030-01-04T21:00:00Z")),
        ("2030-01-04T21:00:00Z", None),
        // Across midnight: Saturday 01:30 local is still Friday's window.
        ("2030-01-05T00:30:00Z", None),
        ("2030-01-05T02:00:00Z", Some("2030-01-11T21:00:00Z")),
    ];
    for (at, expected) in cases {
        assert_eq!(
            window_at(&node, &bins, at, None).as_deref(),
            expected,
            "at {at}"
        );
    }
    // The host's own time zone (TZ) does not move the window: it lives in its own zone.
    for tz in ["Pacific/Auckland", "America/Los_Angeles", "UTC"] {
        assert_eq!(
            window_at(&node, &bins, "2030-01-05T00:30:00Z", Some(tz)),
            None,
            "TZ={tz}"
        );
        assert_eq!(
            window_at(&node, &bins, "2030-01-02T12:00:00Z", Some(tz)).as_deref(),
            Some("2030-01-04T21:00:00Z"),
            "TZ={tz}"
        );
    }
    // The operator moves the window to Tokyo (UTC+9): the same local hours, other instants.
    set_window(
        &node,
        "{ days = [\"fri\"], start = \"22:00\", end = \"03:00\", time_zone = \"Asia/Tokyo\" }",
    );
    assert_eq!(
        window_at(&node, &bins, "2030-01-05T00:30:00Z", None).as_deref(),
        Some("2030-01-11T13:00:00Z"),
        "09:30 Saturday in Tokyo is after the window"
    );
    assert_eq!(
        window_at(&node, &bins, "2030-01-04T14:00:00Z", None),
        None,
        "23:00 Friday in Tokyo"
    );
    // A DST change inside the window: Sundays 01:30-04:00 New York; on 2030-03-10 clocks jump
    // 02:00 → 03:00, so the window runs 06:30Z-08:00Z (1.5 h); on 2030-11-03 they go back, and it
    // runs 05:30Z-09:00Z (3.5 h).
    set_window(
        &node,
        "{ days = [\"sun\"], start = \"01:30\", end = \"04:00\", time_zone = \"America/New_York\" }",
    );
    let dst = [
        ("2030-03-09T12:00:00Z", Some("2030-03-10T06:30:00Z")),
        ("2030-03-10T07:59:00Z", None),
        ("2030-03-10T08:00:00Z", Some("2030-03-17T05:30:00Z")),
        ("2030-11-02T12:00:00Z", Some("2030-11-03T05:30:00Z")),
        ("2030-11-03T08:30:00Z", None),
        ("2030-11-03T09:00:00Z", Some("2030-11-10T06:30:00Z")),
    ];
    for (at, expected) in dst {
        assert_eq!(
            window_at(&node, &bins, at, None).as_deref(),
            expected,
            "at {at}"
        );
    }

    // `update` obeys the same answers: outside it stages only (exit 21, no reboot, A boots
    // next); across midnight inside it activates and reboots.
    set_window(
        &node,
        "{ days = [\"fri\"], start = \"22:00\", end = \"03:00\", time_zone = \"Europe/Berlin\" }",
    );
    let r = node.updog(
        &bins,
        &["update", "--reboot", "--at", "2030-01-05T02:00:00Z"],
    );
    assert_eq!(r.code, 21, "{} {}", r.stdout, r.stderr);
    assert!(!node.root.join("rebooted").exists());
    assert_eq!(node.next_boot(&bins), "A");
    let st = node.status(&bins);
    assert_eq!(st["state"], "staged", "{st}");
    assert_eq!(st["window_opens_at"], "2030-01-11T21:00:00Z", "{st}");
    let r = node.updog(
        &bins,
        &["update", "--reboot", "--at", "2030-01-05T00:30:00Z"],
    );
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert!(node.root.join("rebooted").exists());
    assert_eq!(node.next_boot(&bins), "B");
    let st = node.status(&bins);
    assert_eq!(st["state"], "reboot-pending", "{st}");
    assert!(st["window_opens_at"].is_null(), "{st}");
}

/// `health_units` for real: `systemctl is-active` of a unit that is active nowhere fails (it
/// answers `inactive` on a systemd host, and cannot reach a manager without systemd as PID 1,
/// as in containers and CI), so the boot into 1.1.0 is not marked successful: the host rolls
/// back, reboots, and records the unit and systemctl's answer. The passing path needs systemd
/// as PID 1 (`updog/src/health.rs`, `an_active_unit_passes_under_systemd`).
#[test]
fn a_unit_that_is_not_active_fails_the_health_gate() {
    if !tools_present() || !test_support::require_tool("systemctl") {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, old) = world(dir.path());
    let bins = world.bins.clone();
    let unit = "abos-surely-absent-app.service";
    let mut node = host(
        &world,
        "units",
        &old,
        &trust,
        &format!("health_units = [\"{unit}\"]\n"),
    );
    let marker = node.root.join("check-ran");
    let dir_d = node.root.join("etc/updog/health.d");
    std::fs::create_dir_all(&dir_d).unwrap();
    let script = dir_d.join("10-app");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", s(&marker))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();

    let r = node.updog(&bins, &["update", "--now", "--reboot"]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(node.boot(&bins), "1.1.0");
    std::fs::remove_file(node.root.join("rebooted")).unwrap();
    let r = node.updog(&bins, &["health-check", "--json"]);
    assert_eq!(r.code, 20, "{} {}", r.stdout, r.stderr);
    let out = r.json();
    assert_eq!(out["checks"][0]["name"], unit, "{out}");
    assert_eq!(out["checks"][0]["kind"], "unit", "{out}");
    assert_eq!(out["checks"].as_array().unwrap().len(), 1, "{out}");
    assert!(!marker.exists(), "the executable ran after a failed unit");
    assert!(
        node.root.join("rebooted").exists(),
        "no reboot after the rollback"
    );
    let st = node.status(&bins);
    assert_eq!(st["state"], "rolled-back", "{st}");
    let failure = &st["last_failure"];
    assert_eq!(failure["step"], "health-check", "{st}");
    assert_eq!(failure["check"], unit, "{st}");
    assert!(
        failure["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("unit {unit} is not active")),
        "{st}"
    );
    assert!(
        failure["output"]
            .as_str()
            .is_some_and(|o| !o.trim().is_empty()),
        "{st}"
    );
    // By itself: the next boot is 1.0.0 again.
    assert_eq!(node.boot(&bins), "1.0.0");
}
