//! The etcd coordinator against a real 3-member etcd cluster on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::EtcdCluster;
use fleet::{
    AcquireObserver, AcquireOptions, Coordinator, Error, HostReport, HostState, Name, NoObserver,
    SlotKeeper, WaitStatus,
};
use semver::Version;

fn name(s: &str) -> Name {
    Name::new("name", s).unwrap()
}

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn quick(deadline: Duration, ttl_secs: u64) -> AcquireOptions {
    AcquireOptions {
        deadline,
        poll: Duration::from_millis(50),
        ttl: Duration::from_secs(ttl_secs),
    }
}

/// Records every status an acquire waited on.
#[derive(Debug, Default)]
struct Statuses(Mutex<Vec<WaitStatus>>);

impl AcquireObserver for Statuses {
    fn waiting(&self, status: &WaitStatus) {
        self.0.lock().unwrap().push(status.clone());
    }
}

impl Statuses {
    fn all(&self) -> Vec<WaitStatus> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// The slot was granted (recorded after etcd answered).
    Acquired,
    /// About to release (recorded before etcd is asked).
    Releasing,
}

/// Timestamped audit trail of a rollout: (time, host, event).
type Audit = Arc<Mutex<Vec<(Instant, String, Event)>>>;

/// Most hosts between acquired and releasing at any instant, from the audit trail.
fn max_overlap(audit: &[(Instant, String, Event)]) -> usize {
    let mut events = audit.to_vec();
    // At equal times count releases first: an interval is [acquired, releasing).
    events.sort_by_key(|(t, _, e)| (*t, *e == Event::Acquired));
    let (mut now, mut max) = (0usize, 0usize);
    for (_, _, e) in events {
        match e {
            Event::Acquired => {
                now += 1;
                max = max.max(now);
            }
            Event::Releasing => now -= 1,
        }
    }
    max
}

/// One simulated host: acquire → "reboot" (sleep) → report healthy → release.
async fn host_flow(
    coord: Arc<dyn Coordinator>,
    group: Name,
    host: Name,
    version: Version,
    hold: Duration,
    audit: Audit,
) -> Result<(), Error> {
    let old = v("1.0.0");
    let report = |state| HostReport {
        target: Some(version.clone()),
        ..HostReport::new(state, old.clone())
    };
    coord
        .report(&group, &host, &report(HostState::RebootPending))
        .await?;
    let slot = coord
        .acquire_reboot_slot(
            &group,
            &host,
            &version,
            &quick(Duration::from_secs(120), 5),
            &NoObserver,
        )
        .await?;
    audit
        .lock()
        .unwrap()
        .push((Instant::now(), host.to_string(), Event::Acquired));
    let keeper = SlotKeeper::start(Arc::clone(&coord), slot.clone());
    coord
        .report(&group, &host, &report(HostState::VerifyingHealth))
        .await?;
    tokio::time::sleep(hold).await;
    coord
        .report(
            &group,
            &host,
            &HostReport::new(HostState::Healthy, version.clone()),
        )
        .await?;
    assert_eq!(keeper.lost(), None, "{host} lost its slot while holding it");
    keeper.stop();
    audit
        .lock()
        .unwrap()
        .push((Instant::now(), host.to_string(), Event::Releasing));
    coord.release(&slot).await
}

/// Run `hosts` simulated hosts at once; returns the audit trail.
async fn rollout(endpoints: String, group: Name, hosts: usize, hold: Duration, audit: Audit) {
    let version = v("2.0.0");
    let tasks: Vec<_> = (0..hosts)
        .map(|i| {
            // Each host has its own client (own connections), as separate machines would.
            let coord: Arc<dyn Coordinator> = common::coordinator(&endpoints);
            tokio::spawn(host_flow(
                coord,
                group.clone(),
                name(&format!("host-{i:02}")),
                version.clone(),
                hold,
                Arc::clone(&audit),
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("host task").expect("host flow");
    }
}

async fn assert_all_healthy(coord: &dyn Coordinator, group: &Name, hosts: usize) {
    let view = coord.fleet_view(group).await.unwrap();
    assert!(view.slots.is_empty(), "slots left: {:?}", view.slots);
    assert_eq!(view.hosts.len(), hosts);
    for e in &view.hosts {
        assert_eq!(e.report.state, HostState::Healthy, "{}", e.host);
        assert_eq!(e.report.version, v("2.0.0"), "{}", e.host);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_most_n_slots_with_12_hosts() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("web");
    assert_eq!(coord.set_max_concurrency(&group, 2).await.unwrap(), 1);
    let audit: Audit = Arc::default();
    let hold = Duration::from_millis(300);
    let started = Instant::now();
    rollout(
        cluster.endpoints(),
        group.clone(),
        12,
        hold,
        Arc::clone(&audit),
    )
    .await;
    let wall = started.elapsed();
    let audit = audit.lock().unwrap().clone();
    assert_eq!(audit.len(), 24);
    assert_eq!(max_overlap(&audit), 2, "audit: {audit:?}");
    // 12 hosts, 2 at a time, 300 ms each: at least 6 rounds.
    assert!(wall >= hold * 6, "{wall:?}");
    assert_all_healthy(coord.as_ref(), &group, 12).await;
}

#[test]
fn overlap_counter_sees_violations() {
    // The audit check itself can fail: three overlapping intervals count as three.
    let t = Instant::now();
    let ms = |n| t + Duration::from_millis(n);
    let audit = vec![
        (ms(0), "a".into(), Event::Acquired),
        (ms(1), "b".into(), Event::Acquired),
        (ms(2), "c".into(), Event::Acquired),
        (ms(3), "a".into(), Event::Releasing),
        (ms(3), "d".into(), Event::Acquired),
        (ms(4), "b".into(), Event::Releasing),
        (ms(5), "c".into(), Event::Releasing),
        (ms(6), "d".into(), Event::Releasing),
    ];
    assert_eq!(max_overlap(&audit), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollout_goes_on_when_a_member_dies() {
    let Some(mut cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("db");
    coord.set_max_concurrency(&group, 2).await.unwrap();
    let audit: Audit = Arc::default();
    let run = tokio::spawn(rollout(
        cluster.endpoints(),
        group.clone(),
        12,
        Duration::from_millis(300),
        Arc::clone(&audit),
    ));
    // Kill the first member (every client starts there) once the rollout is under way.
    let deadline = Instant::now() + Duration::from_secs(60);
    while audit
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.2 == Event::Releasing)
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "rollout did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill(0);
    let killed_at = Instant::now();
    run.await.unwrap();
    let audit = audit.lock().unwrap().clone();
    assert!(
        audit
            .iter()
            .filter(|e| e.0 > killed_at && e.2 == Event::Acquired)
            .count()
            >= 3,
        "hosts acquired after the kill"
    );
    assert!(max_overlap(&audit) <= 2, "audit: {audit:?}");
    assert_all_healthy(coord.as_ref(), &group, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_holder_frees_its_slot_when_the_lease_expires() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("g");
    let slot = coord
        .acquire_reboot_slot(
            &group,
            &name("dies"),
            &v("2.0.0"),
            &quick(Duration::from_secs(5), 2),
            &NoObserver,
        )
        .await
        .unwrap();
    // The holder "dies": its keepalives stop (keeper dropped), it never releases.
    drop(SlotKeeper::start(coord.clone(), slot));
    let granted = Instant::now();
    let statuses = Statuses::default();
    let other = coord
        .acquire_reboot_slot(
            &group,
            &name("next"),
            &v("2.0.0"),
            &quick(Duration::from_secs(20), 2),
            &statuses,
        )
        .await
        .unwrap();
    let waited = granted.elapsed();
    assert_eq!(other.host, name("next"));
    assert!(
        waited >= Duration::from_millis(900),
        "granted before the TTL ran out: {waited:?}"
    );
    assert_eq!(
        statuses.all().first(),
        Some(&WaitStatus::SlotsFull {
            held: 1,
            max: 1,
            holders: vec!["dies".into()]
        })
    );
    let view = coord.fleet_view(&group).await.unwrap();
    assert_eq!(
        view.slots
            .iter()
            .map(|s| s.host.to_string())
            .collect::<Vec<_>>(),
        ["next"]
    );
}

#[tokio::test]
async fn unreachable_etcd_never_grants_a_slot() {
    // Nothing listens on these ports: connection refused on both.
    let endpoints = format!("{},{}", common::dead_endpoint(), common::dead_endpoint());
    let coord = common::coordinator(&endpoints);
    let statuses = Statuses::default();
    let started = Instant::now();
    let err = coord
        .acquire_reboot_slot(
            &name("g"),
            &name("h"),
            &v("2.0.0"),
            &quick(Duration::from_secs(1), 5),
            &statuses,
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    let text = err.to_string();
    assert!(matches!(err, Error::AcquireTimeout { .. }), "{text}");
    assert!(text.contains("no reboot slot granted within"), "{text}");
    assert!(
        text.contains("coordinator unreachable") && text.contains("not rebooting"),
        "{text}"
    );
    assert!(matches!(
        statuses.all().first(),
        Some(WaitStatus::Unreachable { .. })
    ));
    assert_eq!(err.exit_status(), fleet::ExitStatus::Timeout);
}

#[tokio::test]
async fn silent_etcd_times_out_without_a_slot() {
    // A listener that accepts connections and never answers: every request times out.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let timeouts = fleet::ClientTimeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_millis(700),
    };
    let client =
        fleet::EtcdClient::new(fleet::parse_endpoints(&endpoint).unwrap(), timeouts).unwrap();
    let coord = fleet::EtcdCoordinator::new(client);
    let started = Instant::now();
    let err = coord
        .acquire_reboot_slot(
            &name("g"),
            &name("h"),
            &v("2.0.0"),
            &quick(Duration::from_secs(1), 5),
            &NoObserver,
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halt_stops_a_version_and_resume_lets_it_go() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("g");
    let bad = v("2.0.0");
    let halt = coord
        .halt(
            &group,
            &bad,
            "health check web.sh failed: exit 3",
            "host-01",
        )
        .await
        .unwrap();
    assert_eq!(halt.by_host, "host-01");
    // A second halt keeps the first reason.
    let again = coord
        .halt(&group, &bad, "also failed", "host-02")
        .await
        .unwrap();
    assert_eq!(again, halt);
    assert_eq!(
        coord.is_halted(&group, &bad).await.unwrap(),
        Some(halt.clone())
    );

    let err = coord
        .acquire_reboot_slot(
            &group,
            &name("h"),
            &bad,
            &quick(Duration::from_secs(10), 5),
            &NoObserver,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Halted { halt: h } if **h == halt),
        "{err}"
    );
    assert!(
        err.to_string().contains("health check web.sh failed"),
        "{err}"
    );
    // Refused at once, nothing held.
    assert!(coord.fleet_view(&group).await.unwrap().slots.is_empty());

    // Another version of the same group is not halted.
    let ok = coord
        .acquire_reboot_slot(
            &group,
            &name("h"),
            &v("2.0.1"),
            &quick(Duration::from_secs(10), 5),
            &NoObserver,
        )
        .await
        .unwrap();
    coord.release(&ok).await.unwrap();

    assert_eq!(coord.resume(&group, &bad).await.unwrap(), Some(halt));
    assert_eq!(coord.resume(&group, &bad).await.unwrap(), None);
    assert_eq!(coord.is_halted(&group, &bad).await.unwrap(), None);
    let slot = coord
        .acquire_reboot_slot(
            &group,
            &name("h"),
            &bad,
            &quick(Duration::from_secs(10), 5),
            &NoObserver,
        )
        .await
        .unwrap();
    assert_eq!(slot.version, bad);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_concurrency_changes_the_limit() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("g");
    let version = v("2.0.0");
    let acquire = |host: &'static str, deadline_ms| {
        let coord = coord.clone();
        let (group, version) = (group.clone(), version.clone());
        async move {
            coord
                .acquire_reboot_slot(
                    &group,
                    &name(host),
                    &version,
                    &quick(Duration::from_millis(deadline_ms), 5),
                    &NoObserver,
                )
                .await
        }
    };
    // Default limit 1.
    let a = acquire("a", 5000).await.unwrap();
    let err = acquire("b", 300).await.unwrap_err();
    assert!(
        err.to_string().ends_with("waiting: 1/1 slots held by [a]"),
        "{err}"
    );
    assert_eq!(coord.set_max_concurrency(&group, 2).await.unwrap(), 1);
    let b = acquire("b", 5000).await.unwrap();
    let err = acquire("c", 300).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("waiting: 2/2 slots held by [a, b]"),
        "{err}"
    );
    // Lowering the limit keeps the slots held and lets nobody in until the count drops below.
    assert_eq!(coord.set_max_concurrency(&group, 1).await.unwrap(), 2);
    coord.release(&a).await.unwrap();
    let err = acquire("c", 300).await.unwrap_err();
    assert!(
        err.to_string().ends_with("waiting: 1/1 slots held by [b]"),
        "{err}"
    );
    coord.release(&b).await.unwrap();
    acquire("c", 5000).await.unwrap();
    assert_eq!(coord.fleet_view(&group).await.unwrap().max_concurrency, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_gets_its_slot_back_and_keepalives_hold_it() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("g");
    let version = v("2.0.0");
    let opts = quick(Duration::from_millis(500), 2);
    let first = coord
        .acquire_reboot_slot(&group, &name("a"), &version, &opts, &NoObserver)
        .await
        .unwrap();
    // After its "reboot" the host asks again and keeps its slot (limit 1, still full for others).
    let again = coord
        .acquire_reboot_slot(&group, &name("a"), &version, &opts, &NoObserver)
        .await
        .unwrap();
    assert_eq!(again.host, first.host);
    let keeper = SlotKeeper::start(coord.clone(), again.clone());
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(keeper.lost(), None);
    let view = coord.fleet_view(&group).await.unwrap();
    assert_eq!(view.slots.len(), 1, "slot kept alive past twice its TTL");
    assert!(
        coord
            .acquire_reboot_slot(&group, &name("b"), &version, &opts, &NoObserver)
            .await
            .is_err()
    );
    keeper.stop();
    coord.release(&again).await.unwrap();
    let err = coord.keep_alive(&again).await.unwrap_err();
    assert!(matches!(err, Error::SlotLost { .. }), "{err}");
    coord
        .acquire_reboot_slot(&group, &name("b"), &version, &opts, &NoObserver)
        .await
        .unwrap();
}

/// etcd round trips of acquire + release with one host, against a 3-member cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test -p fleet --test etcd -- --ignored bench_"]
async fn bench_acquire_release_round_trips() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("bench");
    let (host, version) = (name("h"), v("2.0.0"));
    let opts = quick(Duration::from_secs(10), 10);
    let n = 50;
    // Baseline: one plain read of the slot keys (a single round trip).
    let started = Instant::now();
    for _ in 0..n {
        coord.fleet_view(&group).await.unwrap();
    }
    let read = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let trips_before = coord.client().round_trips();
    let started = Instant::now();
    for _ in 0..n {
        let slot = coord
            .acquire_reboot_slot(&group, &host, &version, &opts, &NoObserver)
            .await
            .unwrap();
        coord.release(&slot).await.unwrap();
    }
    let cycle = started.elapsed().as_secs_f64() * 1000.0 / f64::from(n);
    let trips = (coord.client().round_trips() - trips_before) as f64 / f64::from(n);
    test_support::bench::row(
        "fleet acquire+release (etcd, 3 members)",
        cycle,
        "ms",
        "one etcd read (fleet view)",
        read,
        test_support::bench::Better::Lower,
    );
    test_support::bench::row(
        "fleet acquire+release round trips",
        trips,
        "requests",
        "theoretical minimum (read, grant, txn, revoke)",
        4.0,
        test_support::bench::Better::Lower,
    );
}

/// A 12-host rollout at concurrency 2 (each host holds its slot 200 ms) next to its theoretical
/// minimum, hosts / concurrency × per-host time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: cargo test -p fleet --test etcd -- --ignored bench_"]
async fn bench_rollout_12_hosts_wall_time() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("bench");
    coord.set_max_concurrency(&group, 2).await.unwrap();
    let hold = Duration::from_millis(200);
    let started = Instant::now();
    rollout(cluster.endpoints(), group.clone(), 12, hold, Arc::default()).await;
    let wall = started.elapsed().as_secs_f64();
    test_support::bench::row(
        "fleet 12-host rollout, concurrency 2, 200 ms/host",
        wall,
        "s",
        "theoretical minimum (12 / 2 x 0.2 s)",
        1.2,
        test_support::bench::Better::Lower,
    );
}

/// The whole cluster goes away while a host waits for a full group: it keeps waiting with the
/// "unreachable" status and ends without a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_outage_while_waiting_never_grants() {
    let Some(mut cluster) = EtcdCluster::start(3) else {
        return;
    };
    let coord = cluster.coordinator();
    let group = name("g");
    let version = v("2.0.0");
    coord
        .acquire_reboot_slot(
            &group,
            &name("a"),
            &version,
            &quick(Duration::from_secs(5), 30),
            &NoObserver,
        )
        .await
        .unwrap();
    let statuses = Arc::new(Statuses::default());
    let waiter = {
        let (coord, group, version, statuses) = (
            coord.clone(),
            group.clone(),
            version.clone(),
            Arc::clone(&statuses),
        );
        tokio::spawn(async move {
            coord
                .acquire_reboot_slot(
                    &group,
                    &name("b"),
                    &version,
                    &quick(Duration::from_secs(3), 30),
                    statuses.as_ref(),
                )
                .await
        })
    };
    while statuses.all().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for i in 0..3 {
        cluster.kill(i);
    }
    let err = waiter.await.unwrap().unwrap_err();
    let all = statuses.all();
    assert_eq!(
        all.first(),
        Some(&WaitStatus::SlotsFull {
            held: 1,
            max: 1,
            holders: vec!["a".into()]
        })
    );
    assert!(
        matches!(all.last(), Some(WaitStatus::Unreachable { .. })),
        "{all:?}"
    );
    assert!(err.to_string().contains("coordinator unreachable"), "{err}");
}
