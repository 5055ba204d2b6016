//! A coordinated fleet rollout across real processes (issue 14, "Tests"): a 3-member etcd
//! cluster on 127.0.0.1, 12 simulated hosts (host directories + copies of one os-image disk),
//! each driven by its own thread that runs the real binaries one process at a time, as the host
//! would: `updog update --reboot` (stages, takes a reboot slot, activates, runs the reboot
//! command) → emulated boot (`signpost boot-select`, `os-image boot-check`, as the quickstart
//! does) → `updog health-check` (commits the boot and gives the slot back). Concurrency 2.
//!
//! The audit trail is written from inside the slot: the reboot command appends
//! `reboot-start HOST NANOS` and the last health check appends `healthy HOST NANOS`, so every
//! audited interval lies within the time the host held its slot. The test checks from it that
//! never more than 2 hosts were between reboot and healthy (and that 2 actually were, so the
//! limit was exercised), and that all 12 hosts end healthy on the new version.
//!
//! Then a fault: release 1.2.0 fails its health check on the first host; that host rolls back
//! by itself (its next boot comes up on 1.1.0), the release is halted for the group in etcd
//! (`fleetctl status`), and no other host reboots into it (exit 22, nothing in the audit trail).
//! The operator resumes it and publishes a fixed 1.2.1: all 12 roll out again within the limit.

#![allow(clippy::print_stderr)]

#[path = "../../fleet/tests/common/mod.rs"]
mod etcd;

use integration::story::{Build, Host, Quiet, Trust, World, os_release_field, s, set_letter};
use integration::{Bins, Run, run};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

const QUIET: Quiet = Quiet;
const HOSTS: usize = 12;
const CONCURRENCY: usize = 2;
const GROUP: &str = "web";

fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs", "sgdisk", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

/// One simulated host of the rollout.
struct Node {
    name: String,
    root: PathBuf,
    disk: PathBuf,
    active: char,
}

impl Node {
    fn updog(&self, bins: &Bins, args: &[&str]) -> Run {
        let mut cmd = bins.cmd("updog");
        cmd.arg("--host-root")
            .arg(&self.root)
            .arg("--disk")
            .arg(&self.disk)
            .args(["--active", &self.active.to_string()])
            .args(args);
        run(cmd)
    }

    fn status(&self, bins: &Bins) -> Value {
        let r = self.updog(bins, &["status", "--json"]);
        assert_eq!(r.code, 0, "{}: status: {}", self.name, r.stderr);
        r.json()
    }

    /// The emulated boot of the story: the bootloader's choice, then the verified root's
    /// os-release. Returns the booted version.
    fn boot(&mut self, bins: &Bins) -> String {
        let mut sel = bins.cmd("signpost");
        sel.arg("--disk")
            .arg(&self.disk)
            .args(["boot-select", "--json"]);
        let sel = run(sel);
        assert_eq!(sel.code, 0, "{}: boot-select: {}", self.name, sel.stderr);
        let set = set_letter(&sel.json());
        let mut check = bins.cmd("os-image");
        check.args(["boot-check", "--disk"]).arg(&self.disk).args([
            "--set",
            &set.to_string(),
            "--json",
        ]);
        let check = run(check);
        assert_eq!(
            check.code, 0,
            "{}: boot-check of set {set}: {}",
            self.name, check.stderr
        );
        let version = os_release_field(&check.json(), "VERSION_ID").expect("VERSION_ID");
        self.active = set;
        Host {
            name: self.name.clone(),
            root: self.root.clone(),
            disk: self.disk.clone(),
            active: set,
        }
        .write_os_release(&version);
        version
    }
}

fn fleetctl(bins: &Bins, endpoints: &str, args: &[&str]) -> Run {
    let mut cmd = bins.cmd("fleetctl");
    cmd.args(["--endpoints", endpoints]).args(args);
    run(cmd)
}

/// A host running `build`, coordinated through `endpoints`, with a health check that fails on
/// `bad_version` and otherwise takes a moment (a service warming up) before it audits `healthy`.
fn make_node(
    world: &World<'_>,
    name: &str,
    build: &Build,
    trust: &Trust,
    endpoints: &str,
    audit: &Path,
    bad_version: &str,
) -> Node {
    let repo = world.repo();
    let base = repo.file_base();
    let host = world.make_host(
        name,
        build,
        trust,
        &repo.metadata_url(&base),
        &repo.targets_url(&base),
        7,
    );
    let list = endpoints
        .split(',')
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = host.root.join("etc/updog.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "reboot_command = [\"sh\", \"-c\", \"echo reboot-start {name} $(date +%s%N) >> {audit}\"]\n\
         fleet = {{ endpoints = [{list}], group = \"{GROUP}\", host = \"{name}\", slot_ttl_secs = 60, acquire_deadline_secs = 90, poll_ms = 100 }}\n",
        audit = s(audit),
    ));
    std::fs::write(&config, text).unwrap();
    let dir = host.root.join("etc/updog/health.d");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("10-app");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n. {root}/etc/os-release\n\
             if [ \"$VERSION_ID\" = \"{bad_version}\" ]; then echo 'app: 500 on /healthz'; exit 1; fi\n\
             sleep 0.3\n\
             echo healthy {name} $(date +%s%N) >> {audit}\n",
            root = s(&host.root),
            audit = s(audit),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Node {
        name: name.to_string(),
        root: host.root,
        disk: host.disk,
        active: host.active,
    }
}

/// One host's coordinated update, each step its own process. Returns the booted version.
fn coordinated_update(node: &mut Node, bins: &Bins) -> String {
    let r = node.updog(bins, &["update", "--reboot"]);
    assert_eq!(
        r.code, 0,
        "{}: update: {} {}",
        node.name, r.stdout, r.stderr
    );
    let version = node.boot(bins);
    let r = node.updog(bins, &["health-check"]);
    assert_eq!(
        r.code, 0,
        "{}: health-check: {} {}",
        node.name, r.stdout, r.stderr
    );
    version
}

/// Audit lines as (nanos, kind, host), in time order.
fn audit_lines(audit: &Path) -> Vec<(u128, String, String)> {
    let text = std::fs::read_to_string(audit).unwrap_or_default();
    let mut lines: Vec<(u128, String, String)> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad audit line {l:?}");
            (f[2].parse().unwrap(), f[0].to_string(), f[1].to_string())
        })
        .collect();
    lines.sort();
    lines
}

/// The audit trail of one rollout: each of the HOSTS hosts rebooted once and became healthy
/// after, never more than CONCURRENCY hosts were in between, and CONCURRENCY were at some point
/// (the limit was exercised, not just respected by a slow rollout).
fn check_audit(audit: &Path) {
    let lines = audit_lines(audit);
    assert_eq!(lines.len(), 2 * HOSTS, "{lines:?}");
    let (mut inside, mut most) = (Vec::<String>::new(), 0);
    for (t, kind, host) in &lines {
        match kind.as_str() {
            "reboot-start" => {
                assert!(!inside.contains(host), "{host} rebooted twice: {lines:?}");
                inside.push(host.clone());
                most = most.max(inside.len());
                assert!(
                    inside.len() <= CONCURRENCY,
                    "at {t} {inside:?} were between reboot and healthy: {lines:?}"
                );
            }
            "healthy" => {
                let before = inside.len();
                inside.retain(|h| h != host);
                assert_eq!(inside.len() + 1, before, "{host} healthy before reboot");
            }
            other => panic!("unknown audit line kind {other}"),
        }
    }
    assert!(inside.is_empty(), "{inside:?} never became healthy");
    assert_eq!(most, CONCURRENCY, "the limit was never reached: {lines:?}");
}

/// Every host rolls out at once, each on its own thread of processes; all boot `version`.
fn roll_out(nodes: &mut [Node], bins: &Bins, version: &str) {
    let versions: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter_mut()
            .map(|node| scope.spawn(move || coordinated_update(node, bins)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(versions.iter().all(|v| v == version), "{versions:?}");
}

/// Point every host's reboot command and health check at a new audit file.
fn audit_into(nodes: &[Node], from: &Path, to: &Path) {
    for node in nodes {
        for file in ["etc/updog.toml", "etc/updog/health.d/10-app"] {
            let file = node.root.join(file);
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains(s(from)), "{}", file.display());
            std::fs::write(&file, text.replace(s(from), s(to))).unwrap();
        }
    }
}

#[test]
fn twelve_hosts_roll_out_two_at_a_time_and_a_bad_release_halts() {
    if !tools_present() {
        return;
    }
    let Some(cluster) = etcd::EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let started = Instant::now();
    let dir = test_support::tempdir();
    let bins = Bins::locate().expect("binaries");
    let world = World::new(dir.path(), bins.clone(), &QUIET);
    let trust = world.root_of_trust();
    let old = world.build_os("1.0.0", &trust);
    let new = world.build_os("1.1.0", &trust);
    let past = "2020-01-01T00:00:00Z";
    world.publish(&trust, &old, "default", past, &[]).ok();
    world.publish(&trust, &new, "default", past, &[]).ok();
    fleetctl(
        &bins,
        &endpoints,
        &["set-concurrency", GROUP, &CONCURRENCY.to_string()],
    )
    .ok();

    let audit = dir.path().join("audit-1.1.0");
    let audit_bad = dir.path().join("audit-1.2.0");
    let mut nodes: Vec<Node> = (0..HOSTS)
        .map(|i| {
            make_node(
                &world,
                &format!("host-{i:02}"),
                &old,
                &trust,
                &endpoints,
                &audit,
                "1.2.0",
            )
        })
        .collect();
    let setup = started.elapsed();

    // The rollout: every host at once, each on its own thread of processes.
    let rollout = Instant::now();
    roll_out(&mut nodes, &bins, "1.1.0");
    let rollout = rollout.elapsed();

    // The audit trail: each host once, in order, never more than CONCURRENCY in between.
    check_audit(&audit);

    // Every host runs and reports 1.1.0, healthy; no slot is left held.
    for node in &nodes {
        let st = node.status(&bins);
        assert_eq!(st["state"], "healthy", "{}: {st}", node.name);
        assert_eq!(st["running_version"], "1.1.0", "{}: {st}", node.name);
        assert!(st["fleet_slot"].is_null(), "{}: {st}", node.name);
    }
    let view = fleetctl(&bins, &endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    assert_eq!(view["slots"].as_array().unwrap().len(), 0, "{view}");
    let hosts = view["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), HOSTS, "{view}");
    for h in hosts {
        assert_eq!(h["report"]["state"], "healthy", "{view}");
        assert_eq!(h["report"]["version"], "1.1.0", "{view}");
    }

    // The fault: 1.2.0 fails its health check on the first host that takes it.
    let bad = world.build_os("1.2.0", &trust);
    world.publish(&trust, &bad, "default", past, &[]).ok();
    audit_into(&nodes, &audit, &audit_bad);
    let first = &mut nodes[0];
    let r = first.updog(&bins, &["update", "--reboot"]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(first.boot(&bins), "1.2.0");
    let r = first.updog(&bins, &["health-check"]);
    assert_eq!(r.code, 20, "{} {}", r.stdout, r.stderr);
    let st = first.status(&bins);
    assert_eq!(st["state"], "rolled-back", "{st}");
    assert!(
        st["last_failure"].to_string().contains("500 on /healthz"),
        "{st}"
    );
    // By itself: it rebooted (the rollback's reboot is in the trail) and comes up on 1.1.0.
    assert_eq!(first.boot(&bins), "1.1.0");
    let view = fleetctl(&bins, &endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    let halted = view["halted"].as_array().unwrap();
    assert_eq!(halted.len(), 1, "{view}");
    assert_eq!(halted[0]["version"], "1.2.0", "{view}");
    assert_eq!(halted[0]["by_host"], first.name.as_str(), "{view}");
    assert!(
        halted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("500 on /healthz"),
        "{view}"
    );
    assert_eq!(view["slots"].as_array().unwrap().len(), 0, "{view}");

    // No other host reboots into it: refused (exit 22), the current set still boots next.
    std::thread::scope(|scope| {
        for node in nodes.iter_mut().skip(1) {
            let bins = &bins;
            scope.spawn(move || {
                let r = node.updog(bins, &["update", "--reboot"]);
                assert_eq!(
                    r.code, 22,
                    "{}: update into a halted release: {} {}",
                    node.name, r.stdout, r.stderr
                );
                assert_eq!(node.boot(bins), "1.1.0", "{}", node.name);
            });
        }
    });
    let lines = audit_lines(&audit_bad);
    let rebooted: Vec<&str> = lines.iter().map(|(_, _, h)| h.as_str()).collect();
    assert_eq!(
        rebooted,
        vec![nodes[0].name.as_str(); 2],
        "only the first host rebooted (into 1.2.0, then back): {lines:?}"
    );

    // The operator lifts the halt and publishes a fixed release: the rollout completes, within
    // the limit again, the host that failed included.
    fleetctl(&bins, &endpoints, &["resume", GROUP, "1.2.0"]).ok();
    let fixed = world.build_os("1.2.1", &trust);
    world.publish(&trust, &fixed, "default", past, &[]).ok();
    let audit_fixed = dir.path().join("audit-1.2.1");
    audit_into(&nodes, &audit_bad, &audit_fixed);
    let second = Instant::now();
    roll_out(&mut nodes, &bins, "1.2.1");
    let second = second.elapsed();
    check_audit(&audit_fixed);
    let view = fleetctl(&bins, &endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    assert!(view["halted"].as_array().unwrap().is_empty(), "{view}");
    assert!(view["slots"].as_array().unwrap().is_empty(), "{view}");
    for node in &nodes {
        let st = node.status(&bins);
        assert_eq!(st["state"], "healthy", "{}: {st}", node.name);
        assert_eq!(st["running_version"], "1.2.1", "{}: {st}", node.name);
    }
    eprintln!(
        "fleet rollout: setup {setup:?}, {HOSTS} hosts at concurrency {CONCURRENCY} in \
         {rollout:?} (after the resume: {second:?}), whole test {:?}",
        started.elapsed()
    );
}
