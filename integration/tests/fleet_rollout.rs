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

use integration::Bins;
use integration::fleet::{
    FleetConfig, Node, audit_lines, check_audit, fleetctl, make_node, roll_out,
};
use integration::story::{Quiet, World};
use std::path::Path;
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

/// The audit trail of one rollout: each host once, never more than CONCURRENCY in between, and
/// CONCURRENCY at some point (the limit was exercised, not just respected by a slow rollout).
fn check(audit: &Path) {
    let lines = audit_lines(audit);
    let most = check_audit(&lines, HOSTS, CONCURRENCY);
    assert_eq!(most, CONCURRENCY, "the limit was never reached: {lines:?}");
}

fn roll_out_to(nodes: &mut [Node], bins: &Bins, version: &str) {
    let versions = roll_out(nodes, bins);
    assert!(versions.iter().all(|v| v == version), "{versions:?}");
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
    let fleet = FleetConfig::new(&endpoints, GROUP);
    let mut nodes: Vec<Node> = (0..HOSTS)
        .map(|i| {
            make_node(
                &world,
                &format!("host-{i:02}"),
                &old,
                &trust,
                &fleet,
                &audit,
                "1.2.0",
                "",
                "0.3",
            )
        })
        .collect();
    let setup = started.elapsed();

    // The rollout: every host at once, each on its own thread of processes.
    let rollout = Instant::now();
    roll_out_to(&mut nodes, &bins, "1.1.0");
    let rollout = rollout.elapsed();

    // The audit trail: each host once, in order, never more than CONCURRENCY in between.
    check(&audit);

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
    for node in &nodes {
        node.audit_into(&audit, &audit_bad);
    }
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
    let rebooted: Vec<&str> = lines.iter().map(|l| l.host.as_str()).collect();
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
    for node in &nodes {
        node.audit_into(&audit_bad, &audit_fixed);
    }
    let second = Instant::now();
    roll_out_to(&mut nodes, &bins, "1.2.1");
    let second = second.elapsed();
    check(&audit_fixed);
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
