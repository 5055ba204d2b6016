//! The host side of fleet rollouts (issue 14): the persisted status through update, staging,
//! activation, an emulated boot and the health gate; idempotent staging; a killed run seen as
//! stale and repaired; health checks that fail roll the host back. Real binaries, real signed
//! repositories over HTTP, real GPT disks, real shell scripts as health checks.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use test_support::http::{Fault, Server};
use updog::ExitStatus;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    server: Server,
    new: Release,
    host: Host,
}

fn world(extra_config: &str) -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 3 * MIB, &["-B4"]);
    let new = make_release(&path, "1.1.0", 3 * MIB, &["-B4"]);
    let m = manifest(&[&old, &new]);
    let files = [old.target_files(), new.target_files()].concat();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 8, extra_config);
    World {
        _dir: dir,
        dir: path,
        server,
        new,
        host,
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn status(host: &Host, active: &str) -> serde_json::Value {
    let out = updog_on(host, active, &["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&out)))
}

/// updog on this host with `active` as the running set.
fn updog_on(host: &Host, active: &str, args: &[&str]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_updog"));
    c.arg("--host-root")
        .arg(&host.root)
        .arg("--disk")
        .arg(&host.disk)
        .args(["--active", active])
        .args(args)
        .output()
        .unwrap()
}

/// Emulated boot, as the quickstart does: GRUB's choice (signpost's boot_select decrements the
/// chosen set's tries), then the booted release's os-release.
fn boot(host: &Host, release: &Release) -> signpost::SetName {
    let mut d = signpost::Disk::open(&host.disk).unwrap();
    let choice = signpost::boot_select(&mut d).unwrap().unwrap();
    drop(d);
    std::fs::write(
        host.root.join("etc/os-release"),
        format!(
            "NAME=Bottlerocket\nVARIANT_ID={VARIANT}\nVERSION_ID={}\nBUILD_ID=abcdef12\n",
            release.version
        ),
    )
    .unwrap();
    choice.set
}

fn health_check(host: &Host, name: &str, body: &str) {
    let dir = host.root.join("etc/updog/health.d");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn target_requests(server: &Server, release: &Release) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&release.root_name))
        .count()
}

#[test]
fn status_follows_stage_activate_boot_and_a_passing_health_gate() {
    if !tools() {
        return;
    }
    let w = world("");
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "idle", "{st}");
    assert_eq!(st["running_version"], "1.0.0", "{st}");

    let out = w.host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let st = status(&w.host, "a");
    assert_eq!(
        (&st["state"], &st["next_version"]),
        (&"available".into(), &"1.1.0".into()),
        "{st}"
    );
    assert!(st["last_check"].is_string(), "{st}");

    let out = w.host.updog(&["update-image"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "staged", "{st}");
    assert_eq!(st["staged_version"], "1.1.0", "{st}");
    assert_eq!(st["staged_set"], "B", "{st}");
    assert_eq!(st["status_version"], 1, "{st}");
    assert_eq!(target_requests(&w.server, &w.new), 1);

    // Staging again downloads nothing and says so.
    let out = w.host.updog(&["update-image"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("already staged and verified in set B; nothing downloaded"),
        "{text}"
    );
    assert_eq!(
        target_requests(&w.server, &w.new),
        1,
        "the root image was fetched again"
    );

    // `update` activates the staged set, still without downloading (JSON: the update object
    // first, as for `updated`).
    let out = w.host.updog(&["update", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&j["version"], &j["outcome"], &j["set"]),
        (&"1.1.0".into(), &"already-staged".into(), &"B".into()),
        "{j}"
    );
    assert_eq!(target_requests(&w.server, &w.new), 1);
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "reboot-pending", "{st}");
    assert_eq!(st["next_boot"], "B", "{st}");

    assert_eq!(boot(&w.host, &w.new), signpost::SetName::B);
    let marker = w.dir.join("check-ran");
    health_check(
        &w.host,
        "10-workload",
        &format!(
            "test \"$UPDOG_HOST_ROOT\" = \"{}\" && touch {}",
            w.host.root.display(),
            marker.display()
        ),
    );
    let out = updog_on(&w.host, "b", &["health-check"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(marker.exists(), "the check did not run");
    assert!(w.host.flags(signpost::SetName::B).successful);
    let st = status(&w.host, "b");
    assert_eq!(st["state"], "healthy", "{st}");
    assert_eq!(st["running_version"], "1.1.0", "{st}");
    assert!(st["staged_version"].is_null(), "{st}");
    // A second run has nothing to do.
    let out = updog_on(&w.host, "b", &["health-check"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already marked successful"));
}

#[test]
fn a_failing_health_check_rolls_back_reboots_and_is_recorded() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let rebooted = dir.path().join("rebooted");
    let w = world(&format!(
        "reboot_command = [\"touch\", \"{}\"]\n",
        rebooted.display()
    ));
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(!rebooted.exists());
    boot(&w.host, &w.new);
    health_check(&w.host, "10-ok", "exit 0");
    health_check(
        &w.host,
        "20-database",
        "echo 'database: connection refused' >&2; exit 1",
    );
    health_check(&w.host, "30-never", "exit 0");
    let out = updog_on(&w.host, "b", &["health-check", "--json"]);
    assert_eq!(
        code(&out),
        i32::from(ExitStatus::HealthCheckFailed.code()),
        "{}",
        show(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checks"].as_array().unwrap().len(), 2, "{report}");
    assert!(rebooted.exists(), "the reboot command did not run");
    assert!(!w.host.flags(signpost::SetName::B).successful);
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    let st = status(&w.host, "b");
    assert_eq!(st["state"], "rolled-back", "{st}");
    let f = &st["last_failure"];
    assert_eq!(f["step"], "health-check", "{st}");
    assert_eq!(f["check"], "20-database", "{st}");
    assert!(
        f["output"].as_str().unwrap().contains("connection refused"),
        "{st}"
    );
    let text = String::from_utf8_lossy(&updog_on(&w.host, "b", &["status"]).stdout).into_owned();
    assert!(text.contains("failed check:   20-database"), "{text}");
    assert_eq!(st["health_failed_version"], "1.1.0", "{st}");

    // Back on 1.0.0 (set A), the release that failed here is not taken again by itself (the
    // same exit as a release halted for the group), only with --image.
    let mut d = signpost::Disk::open(&w.host.disk).unwrap();
    assert_eq!(
        signpost::boot_select(&mut d).unwrap().unwrap().set,
        signpost::SetName::A
    );
    drop(d);
    std::fs::write(
        w.host.root.join("etc/os-release"),
        format!("NAME=Bottlerocket\nVARIANT_ID={VARIANT}\nVERSION_ID=1.0.0\nBUILD_ID=abcdef12\n"),
    )
    .unwrap();
    let out = w.host.updog(&["update"]);
    assert_eq!(
        code(&out),
        i32::from(ExitStatus::ReleaseHalted.code()),
        "{}",
        show(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1.1.0 failed its health check on this host"),
        "{}",
        show(&out)
    );
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    let out = w.host.updog(&["update", "--image", "1.1.0"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}

#[test]
fn a_timed_out_check_with_report_only_changes_nothing_on_disk() {
    if !tools() {
        return;
    }
    let w = world("health_failure_action = \"report\"\nhealth_check_timeout_secs = 30\n");
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    boot(&w.host, &w.new);
    health_check(&w.host, "10-hangs", "sleep 60");
    let before = std::fs::read(&w.host.disk).unwrap();
    let started = std::time::Instant::now();
    let out = updog_on(&w.host, "b", &["health-check", "--timeout", "1"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(code(&out), 20, "{}", show(&out));
    assert!(
        std::fs::read(&w.host.disk).unwrap() == before,
        "the disk changed"
    );
    let st = status(&w.host, "b");
    assert_eq!(st["state"], "failed", "{st}");
    assert!(
        st["last_failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s"),
        "{st}"
    );
}

#[test]
fn a_killed_staging_run_is_seen_as_stale_and_repaired() {
    if !tools() {
        return;
    }
    let w = world("retries = 100\nretry_backoff_ms = 200\nretry_backoff_max_ms = 200\n");
    w.server.set_fault(Fault::Status {
        suffix: w.new.root_name.clone(),
        status: 503,
    });
    let mut child = w
        .host
        .command(&["update-image"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = w.host.root.join("var/lib/updog/status.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&status_file).unwrap_or_default();
        if text.contains("\"staging\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never staging: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // While it runs, `status` says so (and never takes the lock, so polling it cannot make the
    // update fail).
    let st = status(&w.host, "a");
    assert_eq!(
        (&st["busy"], &st["stale"]),
        (&true.into(), &false.into()),
        "{st}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "staging", "{st}");
    assert_eq!(
        (&st["busy"], &st["stale"]),
        (&false.into(), &true.into()),
        "{st}"
    );
    let text = String::from_utf8_lossy(&updog_on(&w.host, "a", &["status"]).stdout).into_owned();
    assert!(text.contains("stale: pid"), "{text}");

    w.server.set_fault(Fault::None);
    let out = w.host.updog(&["update-image"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "staged", "{st}");
    assert_eq!(st["stale"], false, "{st}");
    assert!(
        st["last_failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{st}"
    );
}

#[test]
fn a_linked_status_file_is_refused() {
    if !tools() {
        return;
    }
    let w = world("");
    let out = w.host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let status_file = w.host.root.join("var/lib/updog/status.json");
    let victim = w.dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::remove_file(&status_file).unwrap();
    std::os::unix::fs::symlink(&victim, &status_file).unwrap();
    let out = w.host.updog(&["update-image"]);
    assert_eq!(
        code(&out),
        i32::from(ExitStatus::UnsafeState.code()),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(Path::new(&status_file).is_symlink());
}

#[test]
fn a_staged_choice_is_kept_and_never_replaced_by_an_older_release_without_image() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let rel: Vec<Release> = ["1.0.0", "1.0.5", "1.1.0"]
        .iter()
        .map(|v| make_release(&path, v, MIB, &[]))
        .collect();
    let mut m = manifest(&[&rel[0], &rel[2]]);
    let policy = waves::WavePolicy::from_toml(
        "[[waves]]\nstart_after = \"1 hour\"\nfleet_percentage = 50\n\n[[waves]]\nstart_after = \"1 day\"\nfleet_percentage = 100\n",
        Path::new("test-waves.toml"),
    )
    .unwrap();
    let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    m.set_waves(
        &VARIANT.parse().unwrap(),
        arch(),
        &update_metadata::Version::new(1, 1, 0),
        &policy,
        start,
    )
    .unwrap();
    let files: Vec<_> = rel.iter().flat_map(|r| r.target_files()).collect();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &rel[0], 4, "");
    let at = ["--at", "2030-01-01T00:30:00Z"];

    // Seed 1234's wave for 1.1.0 is closed: the check records when it opens.
    let out = host.updog(&[&["check-update"][..], &at].concat());
    assert_eq!(code(&out), 4, "{}", show(&out));
    let st = status(&host, "a");
    assert_eq!(st["state"], "idle", "{st}");
    assert_eq!(st["next_version"], "1.1.0", "{st}");
    assert!(
        st["wave_opens_at"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-"),
        "{st}"
    );

    // Staged with --now; a later plain `update` keeps that choice (no download).
    let out = host.updog(&[&["update-image", "--now"][..], &at].concat());
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(target_requests(&server, &rel[2]), 1);
    let out = host.updog(&[&["update"][..], &at].concat());
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already staged"),
        "{}",
        show(&out)
    );
    assert_eq!(target_requests(&server, &rel[2]), 1);
    assert_eq!(status(&host, "a")["state"], "reboot-pending");
    let out = host.updog(&["update-revert"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(status(&host, "a")["state"], "staged");

    // 1.1.0 is pulled from the repository: 1.0.5 is offered, but never replaces the staged
    // 1.1.0 without --image.
    let m2 = manifest(&[&rel[0], &rel[1]]);
    repo.publish(&m2, &files, RoleVersions::all(2));
    let out = host.updog(&[&["update-image"][..], &at].concat());
    assert_eq!(
        code(&out),
        i32::from(ExitStatus::NothingNewer.code()),
        "{}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1.1.0 is staged and newer than 1.0.5"),
        "{text}"
    );
    assert_eq!(target_requests(&server, &rel[1]), 0);
    assert_eq!(host.flags(signpost::SetName::B).tries_left, 1);
    let st = status(&host, "a");
    assert_eq!(
        (&st["state"], &st["staged_version"]),
        (&"staged".into(), &"1.1.0".into()),
        "{st}"
    );

    let out = host.updog(&[&["update-image", "--image", "1.0.5"][..], &at].concat());
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(veritysetup_verify_b(&host.disk, &rel[1], &path));
    assert_eq!(status(&host, "a")["staged_version"], "1.0.5");
}

#[test]
fn outside_the_window_update_stages_only_and_says_when_it_opens() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let rebooted = dir.path().join("rebooted");
    // Saturdays 02:00-04:00 UTC; seed 1234 of a 2048 s spread waits 1234 s (02:20:34).
    let w = world(&format!(
        "reboot_command = [\"touch\", \"{}\"]\n\
         update_window = {{ days = [\"sat\"], start = \"02:00\", end = \"04:00\", time_zone = \"UTC\" }}\n\
         activation_delay_max_secs = 2048\n",
        rebooted.display()
    ));
    let wednesday = ["--at", "2030-01-02T12:00:00Z"];
    let out = w.host.updog(&[&["check-update"][..], &wednesday].concat());
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("2030-01-05T02:20:34Z"),
        "{}",
        show(&out)
    );
    let st = status(&w.host, "a");
    assert_eq!(st["window_opens_at"], "2030-01-05T02:20:34Z", "{st}");

    let out = w
        .host
        .updog(&[&["update", "--reboot"][..], &wednesday].concat());
    assert_eq!(
        code(&out),
        i32::from(ExitStatus::OutsideWindow.code()),
        "{}",
        show(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Update staged, not activated")
            && text.contains("window opens at 2030-01-05T02:20:34Z"),
        "{text}"
    );
    assert!(!rebooted.exists(), "rebooted outside the window");
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    assert_eq!(w.host.flags(signpost::SetName::B).tries_left, 1);
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "staged", "{st}");
    let text = String::from_utf8_lossy(&updog_on(&w.host, "a", &["status"]).stdout).into_owned();
    assert!(
        text.contains("window opens:   2030-01-05T02:20:34Z"),
        "{text}"
    );

    // Inside the window but before this host's delay: still waiting.
    let out = w
        .host
        .updog(&["update", "--reboot", "--at", "2030-01-05T02:10:00Z"]);
    assert_eq!(code(&out), 21, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing downloaded"));
    // Its turn: activated and rebooted, nothing downloaded again.
    let out = w
        .host
        .updog(&["update", "--reboot", "--at", "2030-01-05T03:00:00Z"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(rebooted.exists());
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    assert_eq!(target_requests(&w.server, &w.new), 1);
    let st = status(&w.host, "a");
    assert_eq!(st["state"], "reboot-pending", "{st}");
    assert!(st["window_opens_at"].is_null(), "{st}");
}
