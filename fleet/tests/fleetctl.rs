//! `fleetctl` as a process against a real 3-member etcd cluster.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::EtcdCluster;
use fleet::{AcquireOptions, Coordinator, HostReport, HostState, Name, NoObserver};

fn fleetctl(endpoints: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args(["--endpoints", endpoints])
        .args(args)
        .output()
        .expect("run fleetctl")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn name(s: &str) -> Name {
    Name::new("name", s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_halt_resume_set_concurrency() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let e = cluster.endpoints();
    let coord = cluster.coordinator();
    let group = name("web");
    let new: semver::Version = "2.0.0".parse().unwrap();
    let mut failed = HostReport::new(HostState::RolledBack, "1.0.0".parse().unwrap());
    failed.target = Some(new.clone());
    failed.detail = Some("health check web.sh: exit 3".into());
    coord
        .report(&group, &name("host-a"), &failed)
        .await
        .unwrap();
    coord
        .report(
            &group,
            &name("host-b"),
            &HostReport::new(HostState::Healthy, new.clone()),
        )
        .await
        .unwrap();

    let o = fleetctl(&e, &["set-concurrency", "web", "3"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert_eq!(text(&o).0, "group web: max concurrency 1 -> 3\n");

    let o = fleetctl(
        &e,
        &[
            "halt",
            "web",
            "2.0.0",
            "--reason",
            "web.sh failed on host-a",
            "--by",
            "host-a",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    // Hosts see the halt.
    let err = coord
        .acquire_reboot_slot(
            &group,
            &name("host-c"),
            &new,
            &AcquireOptions::default(),
            &NoObserver,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("web.sh failed on host-a"), "{err}");

    let o = fleetctl(&e, &["status", "web"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let out = text(&o).0;
    assert!(out.starts_with("group web: 0/3 slots held\n"), "{out}");
    assert!(out.contains("halted: 2.0.0 by host-a at "), "{out}");
    assert!(
        out.contains("  host-a rolled-back 1.0.0 -> 2.0.0 at "),
        "{out}"
    );
    assert!(out.contains(": health check web.sh: exit 3\n"), "{out}");
    assert!(out.contains("      1 healthy on 2.0.0\n"), "{out}");

    let o = fleetctl(&e, &["--json", "status", "web"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["command"], "status");
    assert_eq!(json["max_concurrency"], 3);
    assert_eq!(json["halted"][0]["version"], "2.0.0");
    assert_eq!(json["hosts"].as_array().unwrap().len(), 2);

    let o = fleetctl(&e, &["resume", "web", "2.0.0"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    assert!(
        text(&o)
            .0
            .starts_with("resumed 2.0.0 in group web (was halted by host-a"),
        "{:?}",
        text(&o)
    );
    let o = fleetctl(&e, &["resume", "web", "2.0.0"]);
    assert_eq!(text(&o).0, "2.0.0 was not halted in group web\n");
    coord
        .acquire_reboot_slot(
            &group,
            &name("host-c"),
            &new,
            &AcquireOptions::default(),
            &NoObserver,
        )
        .await
        .unwrap();

    // Bad input: usage error 2, with what and where.
    let o = fleetctl(&e, &["halt", "web/x", "2.0.0", "--reason", "r"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("invalid group 'web/x'"),
        "{:?}",
        text(&o)
    );
    let o = fleetctl(&e, &["resume", "web", "two"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("invalid version 'two'"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn unreachable_etcd_exits_3() {
    let e = format!("{},{}", common::dead_endpoint(), common::dead_endpoint());
    let o = fleetctl(&e, &["status", "web"]);
    assert_eq!(o.status.code(), Some(3), "{:?}", text(&o));
    let err = text(&o).1;
    assert!(
        err.starts_with("error: etcd unreachable: no endpoint answered v3/kv/txn"),
        "{err}"
    );
    assert!(err.contains("hint: check --endpoints"), "{err}");
    let o = fleetctl("127.0.0.1:2379", &["status", "web"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", text(&o));
}

/// A holder process SIGKILLed while it holds the slot: nobody releases it, its lease expires and
/// the next host gets the slot.
#[test]
fn sigkilled_holder_frees_its_slot_after_the_ttl() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let e = cluster.endpoints();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args([
            "--endpoints",
            &e,
            "hold",
            "web",
            "doomed",
            "2.0.0",
            "--ttl-secs",
            "2",
            "--",
            "sleep",
            "8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("acquired: slot of group web for 2.0.0"),
        "{first}"
    );
    holder.kill().unwrap(); // SIGKILL
    holder.wait().unwrap();
    let killed = Instant::now();

    // A second holder waits ("waiting: 1/1 slots held by [doomed]") and then runs.
    let o = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args([
            "--endpoints",
            &e,
            "hold",
            "web",
            "next",
            "2.0.0",
            "--poll-ms",
            "100",
            "--deadline-secs",
            "30",
        ])
        .args(["--", "true"])
        .output()
        .unwrap();
    let waited = killed.elapsed();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.starts_with("waiting: 1/1 slots held by [doomed]\n"),
        "{err}"
    );
    assert!(
        err.contains("acquired: slot of group web for 2.0.0"),
        "{err}"
    );
    assert!(
        out.contains("next held a slot of group web for 2.0.0; command exit: 0"),
        "{out}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "slot freed before the TTL: {waited:?}"
    );

    // A failing command: exit 7, slot released anyway.
    let o = fleetctl(&e, &["hold", "web", "next", "2.0.0", "--", "false"]);
    assert_eq!(o.status.code(), Some(7), "{:?}", text(&o));
    let o = fleetctl(&e, &["--json", "status", "web"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["slots"], serde_json::json!([]));
}

#[test]
fn release_frees_a_dead_hosts_slot_at_once() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let e = cluster.endpoints();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .args([
            "--endpoints",
            &e,
            "hold",
            "web",
            "gone",
            "2.0.0",
            "--ttl-secs",
            "600",
            "--",
            "sleep",
            "8",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stderr.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().starts_with("acquired"));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let o = fleetctl(&e, &["release", "web", "gone"]);
    assert_eq!(text(&o).0, "gone in group web: released\n");
    let o = fleetctl(&e, &["release", "web", "gone"]);
    assert_eq!(text(&o).0, "gone in group web: held no slot\n");
    // Without the release the next holder would wait 600 s; with it, it runs at once.
    let o = fleetctl(
        &e,
        &[
            "hold",
            "web",
            "next",
            "2.0.0",
            "--deadline-secs",
            "5",
            "--",
            "true",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
}

/// 12 hosts as 12 processes (`fleetctl hold`), concurrency 2: the command each one runs under its
/// slot writes the audit trail (time it starts, time it ends), so every line is written while
/// the slot is held.
#[test]
fn twelve_holder_processes_at_concurrency_2() {
    let Some(cluster) = EtcdCluster::start(3) else {
        return;
    };
    let e = cluster.endpoints();
    let o = fleetctl(&e, &["set-concurrency", "web", "2"]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let dir = test_support::tempdir();
    let audit = dir.path().join("audit");
    let script = format!(
        "echo \"$(date +%s.%N) start $0\" >> {a}; sleep 0.3; echo \"$(date +%s.%N) end $0\" >> {a}",
        a = audit.display()
    );
    let children: Vec<_> = (0..12)
        .map(|i| {
            let host = format!("host-{i:02}");
            Command::new(env!("CARGO_BIN_EXE_fleetctl"))
                .args([
                    "--endpoints",
                    &e,
                    "hold",
                    "web",
                    &host,
                    "2.0.0",
                    "--poll-ms",
                    "50",
                ])
                .args(["--deadline-secs", "120", "--", "sh", "-c", &script, &host])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let o = child.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let trail = std::fs::read_to_string(&audit).unwrap();
    let mut events: Vec<(f64, bool)> = trail
        .lines()
        .map(|l| {
            let mut f = l.split(' ');
            let t: f64 = f.next().unwrap().parse().unwrap();
            (t, f.next() == Some("start"))
        })
        .collect();
    assert_eq!(events.len(), 24, "{trail}");
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut now, mut max) = (0i32, 0i32);
    for (_, start) in events {
        now += if start { 1 } else { -1 };
        max = max.max(now);
    }
    assert_eq!(max, 2, "{trail}");
    let o = fleetctl(&e, &["--json", "status", "web"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["slots"], serde_json::json!([]));
}

/// `fleetctl --help` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_and_readme() {
    let rows = abos_shell::exit::rows::<fleet::ExitStatus>();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_fleetctl"))
        .arg("--help")
        .output()
        .unwrap();
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        flat(&help).contains(&flat(&abos_shell::exit::render_help(&rows))),
        "{help}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    assert_eq!(
        abos_shell::exit::find_readme_row(&readme, "fleetctl").as_deref(),
        Some(abos_shell::exit::readme_row(&rows).as_str())
    );
}
