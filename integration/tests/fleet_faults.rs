//! Faults during a coordinated rollout (issue 14, "Tests: Faults"), with real processes: a real
//! 3-member etcd cluster on 127.0.0.1 (the fleet crate's test cluster), simulated hosts (host
//! directories + os-image disks) each running `updog update --reboot` → emulated boot →
//! `updog health-check` as its own processes (see `integration::fleet`). Every verdict comes from
//! the audit trail written inside the slots (`reboot-start`, `healthy`, wall-clock nanoseconds),
//! from `updog status --json` and from `fleetctl status`, never from logs.
//!
//! - `rollout_goes_on_when_an_etcd_member_is_killed`: member 0 (the first endpoint every
//!   process tries) is SIGKILLed once the first host has rebooted; all hosts end healthy on the
//!   new version, never more than 2 between reboot and healthy.
//! - `a_host_killed_holding_its_slot_frees_it_when_the_lease_expires`: a host's updog is
//!   SIGKILLed (with its process group) during its reboot and never comes back; the others wait
//!   (`updog status` says `1/1 slots held by [doomed]`) and roll out once its lease (5 s TTL)
//!   expired, one at a time.
//! - `hosts_wait_while_etcd_is_unreachable_and_go_on_when_it_returns`: every member is killed;
//!   hosts stage, then wait with `state: staged` and `waiting.reason` "coordinator unreachable"
//!   in `updog status --json`, their next boot unchanged and nothing in the audit trail; a host
//!   with a 2 s deadline exits 23 (staged, `last_failure` at `acquire-slot`). The members are
//!   restarted: the waiting hosts go on, the impatient one's next run (the timer) takes the
//!   already staged update, and every reboot in the trail is after etcd came back.

#![allow(clippy::print_stderr)]

#[path = "../../fleet/tests/common/mod.rs"]
mod etcd;

use integration::Bins;
use integration::fleet::{
    AuditLine, FleetConfig, Node, audit_lines, check_audit, fleetctl, make_node, now_nanos,
    roll_out,
};
use integration::story::{Build, Quiet, Trust, World};
use serde_json::Value;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

const QUIET: Quiet = Quiet;
const GROUP: &str = "web";

fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs", "sgdisk", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

/// A world with 1.0.0 (what hosts run) and 1.1.0 (the rollout) published.
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

fn nodes(
    world: &World<'_>,
    old: &Build,
    trust: &Trust,
    fleet: &FleetConfig,
    audit: &Path,
    names: &[&str],
) -> Vec<Node> {
    names
        .iter()
        .map(|n| make_node(world, n, old, trust, fleet, audit, "9.9.9", "", "0.2"))
        .collect()
}

/// Poll `f` every 100 ms until it returns Some (panics after `limit` with `what`).
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn every_host_healthy_on(nodes: &[Node], bins: &Bins, endpoints: &str, version: &str) {
    for node in nodes {
        let st = node.status(bins);
        assert_eq!(st["state"], "healthy", "{}: {st}", node.name);
        assert_eq!(st["running_version"], version, "{}: {st}", node.name);
        assert!(st["waiting"].is_null(), "{}: {st}", node.name);
    }
    let view = fleetctl(bins, endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    assert!(view["slots"].as_array().unwrap().is_empty(), "{view}");
}

#[test]
fn rollout_goes_on_when_an_etcd_member_is_killed() {
    if !tools_present() {
        return;
    }
    let Some(mut cluster) = etcd::EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let started = Instant::now();
    let dir = test_support::tempdir();
    let (world, trust, old) = world(dir.path());
    let bins = world.bins.clone();
    fleetctl(&bins, &endpoints, &["set-concurrency", GROUP, "2"]).ok();
    let audit = dir.path().join("audit");
    let fleet = FleetConfig::new(&endpoints, GROUP);
    let names = ["h0", "h1", "h2", "h3", "h4", "h5"];
    let mut nodes = nodes(&world, &old, &trust, &fleet, &audit, &names);

    let killed_at = std::thread::scope(|scope| {
        let rollout = scope.spawn(|| roll_out(&mut nodes, &bins));
        // Mid-rollout: as soon as the first host has rebooted into the new set.
        wait_for(Duration::from_secs(60), "the first reboot", || {
            (!audit_lines(&audit).is_empty()).then_some(())
        });
        cluster.kill(0);
        let killed_at = now_nanos();
        let versions = rollout.join().unwrap();
        assert!(versions.iter().all(|v| v == "1.1.0"), "{versions:?}");
        killed_at
    });
    let lines = audit_lines(&audit);
    let most = check_audit(&lines, names.len(), 2);
    assert_eq!(most, 2, "the limit was never reached: {lines:?}");
    let after: Vec<&AuditLine> = lines
        .iter()
        .filter(|l| l.kind == "reboot-start" && l.nanos > killed_at)
        .collect();
    assert!(
        after.len() >= 2,
        "the member died too late to test anything: {lines:?}"
    );
    // The survivors answer fleetctl too (it tries each endpoint in turn).
    every_host_healthy_on(&nodes, &bins, &endpoints, "1.1.0");
    eprintln!(
        "member killed mid-rollout: {} of {} reboots after the kill, whole test {:?}",
        after.len(),
        names.len(),
        started.elapsed()
    );
}

/// Start `updog update --reboot` on `node` in its own process group (so the host's "death" takes
/// its reboot command with it).
fn spawn_update(node: &Node, bins: &Bins) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = node.updog_cmd(bins, &["update", "--reboot"]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    cmd.spawn().expect("spawn updog")
}

fn sigkill_group(child: &mut Child) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -KILL -{}", child.id());
    let _ = child.wait();
}

#[test]
fn a_host_killed_holding_its_slot_frees_it_when_the_lease_expires() {
    if !tools_present() {
        return;
    }
    let Some(cluster) = etcd::EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let started = Instant::now();
    let dir = test_support::tempdir();
    let (world, trust, old) = world(dir.path());
    let bins = world.bins.clone();
    fleetctl(&bins, &endpoints, &["set-concurrency", GROUP, "1"]).ok();
    let audit = dir.path().join("audit");
    // The doomed host's slot lives 5 s without keepalives; the others' a minute.
    const TTL: u64 = 5;
    let doomed_fleet = FleetConfig {
        slot_ttl_secs: TTL,
        ..FleetConfig::new(&endpoints, GROUP)
    };
    let doomed = make_node(
        &world,
        "doomed",
        &old,
        &trust,
        &doomed_fleet,
        &audit,
        "9.9.9",
        "sleep 120",
        "0.2",
    );
    let fleet = FleetConfig::new(&endpoints, GROUP);
    let mut others = nodes(&world, &old, &trust, &fleet, &audit, &["h1", "h2", "h3"]);
    // Staged beforehand (the timer's work), so they ask for a slot while the dead host's lease
    // still runs, however slow the machine.
    for node in &others {
        let r = node.updog(&bins, &["update-image"]);
        assert_eq!(r.code, 0, "{}: update-image: {}", node.name, r.stderr);
    }

    // The doomed host takes the only slot and hangs in its reboot; then it is SIGKILLed.
    let mut child = spawn_update(&doomed, &bins);
    let doomed_reboot = wait_for(Duration::from_secs(60), "doomed's reboot", || {
        audit_lines(&audit).into_iter().find(|l| l.host == "doomed")
    });
    sigkill_group(&mut child);
    let view = fleetctl(&bins, &endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    assert_eq!(view["slots"][0]["host"], "doomed", "{view}");
    let st = doomed.status(&bins);
    assert_eq!(st["state"], "reboot-pending", "{st}");

    std::thread::scope(|scope| {
        let rollout = scope.spawn(|| roll_out(&mut others, &bins));
        // While the dead host's lease runs, the others wait and say why.
        let probe = Node {
            name: "h1".into(),
            root: dir.path().join("host-h1"),
            disk: dir.path().join("host-h1/os-disk.img"),
            active: 'a',
        };
        let waiting: Value = wait_for(Duration::from_secs(30), "h1 waiting", || {
            let st = probe.status(&bins);
            st["waiting"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("1/1 slots held by [doomed]"))
                .then_some(st)
        });
        assert_eq!(waiting["state"], "staged", "{waiting}");
        assert_eq!(waiting["waiting"]["what"], "reboot-slot", "{waiting}");
        let versions = rollout.join().unwrap();
        assert!(versions.iter().all(|v| v == "1.1.0"), "{versions:?}");
    });

    let lines: Vec<AuditLine> = audit_lines(&audit)
        .into_iter()
        .filter(|l| l.host != "doomed")
        .collect();
    check_audit(&lines, others.len(), 1);
    // Nobody rebooted before the dead host's lease ran out (granted just before its reboot).
    let first = lines[0].nanos;
    let waited = Duration::from_nanos(u64::try_from(first - doomed_reboot.nanos).unwrap());
    assert!(
        waited >= Duration::from_secs(TTL) - Duration::from_millis(1500),
        "the first other host rebooted {waited:?} after the dead one: its slot was not held"
    );
    every_host_healthy_on(&others, &bins, &endpoints, "1.1.0");
    let view = fleetctl(&bins, &endpoints, &["--json", "status", GROUP])
        .ok()
        .json();
    let hosts = view["hosts"].as_array().unwrap();
    let dead = hosts
        .iter()
        .find(|h| h["host"] == "doomed")
        .expect("doomed");
    assert_eq!(dead["report"]["state"], "reboot-pending", "{view}");
    eprintln!(
        "dead holder: the next host rebooted {waited:?} after it (TTL {TTL} s), whole test {:?}",
        started.elapsed()
    );
}

#[test]
fn hosts_wait_while_etcd_is_unreachable_and_go_on_when_it_returns() {
    if !tools_present() {
        return;
    }
    let Some(mut cluster) = etcd::EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let started = Instant::now();
    let dir = test_support::tempdir();
    let (world, trust, old) = world(dir.path());
    let bins = world.bins.clone();
    fleetctl(&bins, &endpoints, &["set-concurrency", GROUP, "2"]).ok();
    let audit = dir.path().join("audit");
    let fleet = FleetConfig::new(&endpoints, GROUP);
    let mut waiting = nodes(&world, &old, &trust, &fleet, &audit, &["h1", "h2", "h3"]);
    let impatient_fleet = FleetConfig {
        acquire_deadline_secs: 2,
        ..FleetConfig::new(&endpoints, GROUP)
    };
    let mut impatient = make_node(
        &world,
        "impatient",
        &old,
        &trust,
        &impatient_fleet,
        &audit,
        "9.9.9",
        "",
        "0.2",
    );

    for i in 0..3 {
        cluster.kill(i);
    }
    // The impatient host gives up after its deadline: staged, not activated, exit 23.
    let r = impatient.updog(&bins, &["update", "--reboot"]);
    assert_eq!(r.code, 23, "{} {}", r.stdout, r.stderr);
    let st = impatient.status(&bins);
    assert_eq!(st["state"], "staged", "{st}");
    assert_eq!(st["staged_version"], "1.1.0", "{st}");
    assert_eq!(st["last_failure"]["step"], "acquire-slot", "{st}");
    assert!(
        st["last_failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("coordinator unreachable"),
        "{st}"
    );
    assert!(st["waiting"].is_null(), "{st}");
    assert_eq!(impatient.next_boot(&bins), "A");

    let restarted_at = std::thread::scope(|scope| {
        let rollout = scope.spawn(|| roll_out(&mut waiting, &bins));
        // Each host stages, then waits for the coordinator with a clear status.
        for name in ["h1", "h2", "h3"] {
            let probe = Node {
                name: name.into(),
                root: dir.path().join(format!("host-{name}")),
                disk: dir.path().join(format!("host-{name}/os-disk.img")),
                active: 'a',
            };
            let st: Value = wait_for(Duration::from_secs(60), "a waiting host", || {
                let st = probe.status(&bins);
                st["waiting"]["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("coordinator unreachable"))
                    .then_some(st)
            });
            assert_eq!(st["state"], "staged", "{name}: {st}");
            assert_eq!(st["staged_version"], "1.1.0", "{name}: {st}");
            assert!(st["waiting"]["deadline"].is_string(), "{name}: {st}");
            assert_eq!(probe.next_boot(&bins), "A", "{name} would boot the update");
        }
        // A while longer: still nobody reboots uncoordinated.
        std::thread::sleep(Duration::from_secs(2));
        assert!(audit_lines(&audit).is_empty(), "{:?}", audit_lines(&audit));
        let restarted_at = now_nanos();
        for i in 0..3 {
            cluster.restart(i);
        }
        let versions = rollout.join().unwrap();
        assert!(versions.iter().all(|v| v == "1.1.0"), "{versions:?}");
        restarted_at
    });
    cluster.wait_healthy(Duration::from_secs(30));
    // The timer's next run on the impatient host: the staged update, no new download.
    assert_eq!(impatient.coordinated_update(&bins), "1.1.0");

    let lines = audit_lines(&audit);
    check_audit(&lines, 4, 2);
    assert!(
        lines.iter().all(|l| l.nanos > restarted_at),
        "a host rebooted while etcd was down: {lines:?} (restarted at {restarted_at})"
    );
    waiting.push(impatient);
    every_host_healthy_on(&waiting, &bins, &endpoints, "1.1.0");
    eprintln!("etcd outage: whole test {:?}", started.elapsed());
}
