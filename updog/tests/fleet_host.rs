//! updog with `[fleet]`: a real etcd member on 127.0.0.1 (the fleet crate's test cluster), real
//! hosts (host directories + GPT disks), the real updog binary. A second host waits while the
//! only slot is held and never reboots uncoordinated; a failing health check halts the release
//! for the group and frees the slot; after a resume the next host goes through.

mod common;
#[path = "../../fleet/tests/common/mod.rs"]
mod etcd;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use test_support::http::Server;
use update_metadata::Version;

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn updog_on(host: &Host, active: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_updog"))
        .arg("--host-root")
        .arg(&host.root)
        .arg("--disk")
        .arg(&host.disk)
        .args(["--active", active])
        .args(args)
        .output()
        .unwrap()
}

fn status(host: &Host, active: &str) -> serde_json::Value {
    let out = updog_on(host, active, &["status", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn boot(host: &Host, release: &Release) {
    let mut d = signpost::Disk::open(&host.disk).unwrap();
    let choice = signpost::boot_select(&mut d).unwrap().unwrap();
    assert_eq!(choice.set, signpost::SetName::B);
    drop(d);
    std::fs::write(
        host.root.join("etc/os-release"),
        format!(
            "NAME=Bottlerocket\nVARIANT_ID={VARIANT}\nVERSION_ID={}\nBUILD_ID=abcdef12\n",
            release.version
        ),
    )
    .unwrap();
}

fn check(host: &Host, body: &str) {
    let dir = host.root.join("etc/updog/health.d");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("10-app");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn make_host(
    dir: &Path,
    name: &str,
    repo: &Repo,
    url: &str,
    old: &Release,
    endpoints: &str,
) -> Host {
    let hdir = dir.join(name);
    std::fs::create_dir_all(&hdir).unwrap();
    let list = endpoints
        .split(',')
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Host::new(
        &hdir,
        repo,
        url,
        old,
        4,
        &format!(
            "reboot_command = [\"touch\", \"{}\"]\n\
             fleet = {{ endpoints = [{list}], group = \"web\", host = \"{name}\", slot_ttl_secs = 60, acquire_deadline_secs = 2, poll_ms = 100 }}\n",
            hdir.join("rebooted").display()
        ),
    )
}

#[test]
fn slots_halts_and_resume_drive_updog() {
    if !tools() {
        return;
    }
    let Some(cluster) = etcd::EtcdCluster::start(1) else {
        return;
    };
    let coordinator = cluster.coordinator();
    let rt = rt();
    let group = fleet::Name::new("group", "web").unwrap();
    let view = || {
        use fleet::Coordinator as _;
        rt.block_on(coordinator.fleet_view(&group)).unwrap()
    };

    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", MIB, &[]);
    let new = make_release(&path, "1.1.0", MIB, &[]);
    let files = [old.target_files(), new.target_files()].concat();
    repo.publish(&manifest(&[&old, &new]), &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let h1 = make_host(
        &path,
        "host-1",
        &repo,
        &server.url(),
        &old,
        &cluster.endpoints(),
    );
    let h2 = make_host(
        &path,
        "host-2",
        &repo,
        &server.url(),
        &old,
        &cluster.endpoints(),
    );

    // host-1 takes the group's only slot, activates and reboots.
    let out = h1.updog(&["update", "--reboot"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(path.join("host-1/rebooted").exists());
    let st = status(&h1, "a");
    assert_eq!(st["state"], "reboot-pending", "{st}");
    assert!(st["fleet_slot"]["lease"].as_i64().unwrap() != 0, "{st}");
    let v = view();
    assert_eq!(v.slots.len(), 1);
    assert_eq!(v.slots[0].host.as_str(), "host-1");

    // host-2 stages, waits for the slot, gives up after the deadline: staged, not activated,
    // not rebooted.
    let out = h2.updog(&["update", "--reboot"]);
    assert_eq!(
        code(&out),
        i32::from(updog::ExitStatus::NoRebootSlot.code()),
        "{}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting: 1/1 slots held by [host-1]"),
        "{stderr}"
    );
    assert!(!path.join("host-2/rebooted").exists());
    assert_eq!(h2.next_boot(), Some(signpost::SetName::A));
    assert_eq!(h2.flags(signpost::SetName::B).tries_left, 1);
    let st = status(&h2, "a");
    assert_eq!(st["state"], "staged", "{st}");
    assert_eq!(st["last_failure"]["step"], "acquire-slot", "{st}");

    // host-1 boots the new release; its health check fails: rolled back, release halted for
    // the group, slot given back.
    boot(&h1, &new);
    check(&h1, "echo 'app: 500 on /healthz'; exit 1");
    let out = updog_on(&h1, "b", &["health-check"]);
    assert_eq!(code(&out), 20, "{}", show(&out));
    assert_eq!(h1.next_boot(), Some(signpost::SetName::A));
    let v = view();
    assert!(v.slots.is_empty(), "{v:?}");
    assert_eq!(v.halted.len(), 1, "{v:?}");
    assert_eq!(v.halted[0].version, Version::new(1, 1, 0));
    assert!(v.halted[0].reason.contains("500 on /healthz"), "{v:?}");
    assert_eq!(v.halted[0].by_host, "host-1");
    let h1_report = v
        .hosts
        .iter()
        .find(|h| h.host.as_str() == "host-1")
        .unwrap();
    assert_eq!(h1_report.report.state, fleet::HostState::RolledBack);
    assert!(status(&h1, "b")["fleet_slot"].is_null());

    // host-2 may not reboot into the halted release.
    let out = h2.updog(&["update", "--reboot"]);
    assert_eq!(
        code(&out),
        i32::from(updog::ExitStatus::ReleaseHalted.code()),
        "{}",
        show(&out)
    );
    assert!(!path.join("host-2/rebooted").exists());
    assert_eq!(h2.next_boot(), Some(signpost::SetName::A));

    // An operator resumes it: host-2 goes through, healthy, and gives its slot back.
    {
        use fleet::Coordinator as _;
        rt.block_on(coordinator.resume(&group, &Version::new(1, 1, 0)))
            .unwrap();
    }
    let out = h2.updog(&["update", "--reboot"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("already staged"));
    assert!(path.join("host-2/rebooted").exists());
    boot(&h2, &new);
    check(&h2, "exit 0");
    let out = updog_on(&h2, "b", &["health-check"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let v = view();
    assert!(v.slots.is_empty(), "{v:?}");
    let h2_report = v
        .hosts
        .iter()
        .find(|h| h.host.as_str() == "host-2")
        .unwrap();
    assert_eq!(h2_report.report.state, fleet::HostState::Healthy);
    assert_eq!(status(&h2, "b")["state"], "healthy");
}

#[test]
fn unreachable_etcd_never_reboots() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", MIB, &[]);
    let new = make_release(&path, "1.1.0", MIB, &[]);
    let files = [old.target_files(), new.target_files()].concat();
    repo.publish(&manifest(&[&old, &new]), &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let h = make_host(
        &path,
        "lonely",
        &repo,
        &server.url(),
        &old,
        &etcd::dead_endpoint(),
    );
    let out = h.updog(&["update", "--reboot"]);
    assert_eq!(code(&out), 23, "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("coordinator unreachable"), "{stderr}");
    assert!(!path.join("lonely/rebooted").exists());
    assert_eq!(h.next_boot(), Some(signpost::SetName::A));
    assert_eq!(status(&h, "a")["state"], "staged");
}
