//! Fleet benchmark (issue 14), run by `scripts/bench.sh` with release binaries
//! (`ABOS_BIN_DIR=target/release`): a real 3-member etcd cluster on 127.0.0.1 and real processes.
//!
//! - etcd round trips: one acquire + release of a reboot slot (the fleet library, as updog calls
//!   it) next to one plain etcd read (the fleet view), and the HTTP requests it takes;
//! - the seconds a coordinated update adds per host: the same host flow (`updog update --reboot`
//!   → emulated boot → `updog health-check`) timed on hosts with and without `[fleet]`, in the
//!   same run, one host at a time;
//! - a 12-host rollout at concurrency 2, every host at once, next to its theoretical minimum:
//!   hosts / concurrency × the per-host time of the part the semaphore serializes (activate,
//!   reboot, boot, health check of an already staged host, measured above); staging needs no
//!   slot and overlaps.

#![allow(clippy::print_stderr)]

#[path = "../../fleet/tests/common/mod.rs"]
mod etcd;

use fleet::{AcquireOptions, Coordinator, Name, NoObserver};
use integration::Bins;
use integration::fleet::{
    FleetConfig, Node, audit_lines, check_audit, fleetctl, make_node, roll_out,
};
use integration::story::{Quiet, World};
use std::time::{Duration, Instant};
use test_support::bench::{Better, row};

const QUIET: Quiet = Quiet;
const HOSTS: usize = 12;
const CONCURRENCY: usize = 2;
const ALONE: usize = 3;

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

#[test]
#[ignore = "benchmark: scripts/bench.sh"]
fn bench() {
    for t in ["mkfs.ext4", "debugfs", "sgdisk", "lz4"] {
        if !test_support::require_tool(t) {
            return;
        }
    }
    let Some(cluster) = etcd::EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();

    // 1. etcd round trips through the library.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let coord = cluster.coordinator();
    let (group, host) = (
        Name::new("group", "bench").unwrap(),
        Name::new("host", "h").unwrap(),
    );
    let version: semver::Version = "2.0.0".parse().unwrap();
    let opts = AcquireOptions {
        deadline: Duration::from_secs(10),
        poll: Duration::from_millis(10),
        ttl: Duration::from_secs(60),
    };
    let n = 100;
    let (read_ms, cycle_ms, trips) = rt.block_on(async {
        let started = Instant::now();
        for _ in 0..n {
            coord.fleet_view(&group).await.unwrap();
        }
        let read = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        let before = coord.client().round_trips();
        let started = Instant::now();
        for _ in 0..n {
            let slot = coord
                .acquire_reboot_slot(&group, &host, &version, &opts, &NoObserver)
                .await
                .unwrap();
            coord.release(&slot).await.unwrap();
        }
        let cycle = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
        let trips = (coord.client().round_trips() - before) as f64 / f64::from(n);
        (read, cycle, trips)
    });
    row(
        "fleet: etcd acquire+release of a reboot slot (3 members)",
        cycle_ms,
        "ms",
        "one etcd read (fleet view)",
        read_ms,
        Better::Lower,
    );
    row(
        "fleet: HTTP requests per acquire+release",
        trips,
        "requests",
        "minimum (read, lease grant, txn, revoke)",
        4.0,
        Better::Lower,
    );

    // 2. Per host, with and without coordination, in the same world.
    let dir = test_support::tempdir();
    let bins = Bins::locate().expect("binaries (ABOS_BIN_DIR)");
    let world = World::new(dir.path(), bins.clone(), &QUIET);
    let trust = world.root_of_trust();
    let old = world.build_os("1.0.0", &trust);
    let new = world.build_os("1.1.0", &trust);
    let past = "2020-01-01T00:00:00Z";
    world.publish(&trust, &old, "default", past, &[]).ok();
    world.publish(&trust, &new, "default", past, &[]).ok();
    fleetctl(&bins, &endpoints, &["set-concurrency", "web", "2"]).ok();
    let audit = dir.path().join("audit");
    let fleet = FleetConfig::new(&endpoints, "web");
    let node = |name: &str| {
        make_node(
            &world, name, &old, &trust, &fleet, &audit, "9.9.9", "", "0.3",
        )
    };
    // One host's flow in two timed parts: staging (`update-image`, no slot needed) and the part
    // the semaphore serializes (`update --reboot` of the staged update → boot → `health-check`).
    let timed = |n: &mut Node| -> (f64, f64) {
        let started = Instant::now();
        let r = n.updog(&bins, &["update-image"]);
        assert_eq!(r.code, 0, "{}: update-image: {}", n.name, r.stderr);
        let stage = started.elapsed().as_secs_f64();
        let started = Instant::now();
        assert_eq!(n.coordinated_update(&bins), "1.1.0");
        (stage, started.elapsed().as_secs_f64())
    };
    let mut plain: Vec<Node> = (0..ALONE).map(|i| node(&format!("plain-{i}"))).collect();
    for n in &plain {
        // The same host without [fleet]: stand-alone.
        let config = n.root.join("etc/updog.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("fleet")).collect();
        std::fs::write(&config, kept.join("\n") + "\n").unwrap();
    }
    let mut coordinated: Vec<Node> = (0..ALONE).map(|i| node(&format!("alone-{i}"))).collect();
    // Interleaved, so drift on a shared machine hits both alike.
    let (mut t_plain, mut t_coord, mut t_slot) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..ALONE {
        let (stage, rest) = timed(&mut plain[i]);
        t_plain.push(stage + rest);
        let (stage, rest) = timed(&mut coordinated[i]);
        t_coord.push(stage + rest);
        t_slot.push(rest);
    }
    let (per_plain, per_coord, per_slot) = (mean(&t_plain), mean(&t_coord), mean(&t_slot));
    row(
        "fleet: one host's stage+activate+boot+health, coordinated",
        per_coord,
        "s",
        "the same, stand-alone (no [fleet])",
        per_plain,
        Better::Lower,
    );
    eprintln!(
        "fleet: coordination adds {:.3} s per host ({per_coord:.3} s vs {per_plain:.3} s); \
         the serialized part (activate, reboot, boot, health) takes {per_slot:.3} s",
        per_coord - per_plain
    );

    // 3. 12 hosts at once, concurrency 2.
    let rollout_audit = dir.path().join("audit-rollout");
    let mut nodes: Vec<Node> = (0..HOSTS)
        .map(|i| {
            make_node(
                &world,
                &format!("host-{i:02}"),
                &old,
                &trust,
                &fleet,
                &rollout_audit,
                "9.9.9",
                "",
                "0.3",
            )
        })
        .collect();
    let started = Instant::now();
    let versions = roll_out(&mut nodes, &bins);
    let wall = started.elapsed().as_secs_f64();
    assert!(versions.iter().all(|v| v == "1.1.0"), "{versions:?}");
    check_audit(&audit_lines(&rollout_audit), HOSTS, CONCURRENCY);
    // Staging needs no slot and overlaps; what the semaphore serializes is the rest.
    let minimum = HOSTS as f64 / CONCURRENCY as f64 * per_slot;
    row(
        "fleet: 12-host rollout wall time, concurrency 2",
        wall,
        "s",
        "theoretical minimum (12 / 2 x per-host slot time)",
        minimum,
        Better::Lower,
    );
}
