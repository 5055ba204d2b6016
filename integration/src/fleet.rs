//! Simulated hosts of a coordinated fleet rollout (`[fleet]` in updog.toml), shared by the fleet
//! tests (`tests/fleet_rollout.rs`, `tests/fleet_faults.rs`), the fleet benchmark and the
//! quickstart's fleet chapter; and a one-member etcd on 127.0.0.1 for the quickstart.
//!
//! A host's coordinated update is three processes, as on a real host: `updog update --reboot`
//! (stages, takes a reboot slot, activates, runs the reboot command) → the emulated boot of the
//! story (`signpost boot-select`, `os-image boot-check`) → `updog health-check` (commits the boot
//! and gives the slot back, or rolls back and halts the release).
//!
//! The audit trail is written from inside the slot: the reboot command appends
//! `reboot-start HOST NANOS` and the last health check appends `healthy HOST NANOS` (wall-clock
//! nanoseconds, `date +%s%N`), so every audited interval lies within the time the host held its
//! slot.

use crate::story::{Build, Host, Trust, World, os_release_field, s, set_letter};
use crate::{Bins, Run, run};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a host talks to the coordinator (`[fleet]` keys).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// etcd client URLs, comma-separated.
    pub endpoints: String,
    /// The host's group.
    pub group: String,
    /// `slot_ttl_secs`.
    pub slot_ttl_secs: u64,
    /// `acquire_deadline_secs`.
    pub acquire_deadline_secs: u64,
    /// `poll_ms`.
    pub poll_ms: u64,
}

impl FleetConfig {
    /// The settings of the fleet tests: a minute to live, 90 s to wait, a look every 100 ms.
    pub fn new(endpoints: &str, group: &str) -> FleetConfig {
        FleetConfig {
            endpoints: endpoints.to_owned(),
            group: group.to_owned(),
            slot_ttl_secs: 60,
            acquire_deadline_secs: 90,
            poll_ms: 100,
        }
    }
}

/// One simulated host of a rollout.
#[derive(Debug)]
pub struct Node {
    /// Host name (also its fleet name).
    pub name: String,
    /// The host's `/`.
    pub root: PathBuf,
    /// Its OS disk image.
    pub disk: PathBuf,
    /// The set it runs.
    pub active: char,
}

impl Node {
    /// `updog --host-root … --disk … --active … ARGS`.
    pub fn updog_cmd(&self, bins: &Bins, args: &[&str]) -> Command {
        let mut cmd = bins.cmd("updog");
        cmd.arg("--host-root")
            .arg(&self.root)
            .arg("--disk")
            .arg(&self.disk)
            .args(["--active", &self.active.to_string()])
            .args(args);
        cmd
    }

    /// Run updog on this host.
    pub fn updog(&self, bins: &Bins, args: &[&str]) -> Run {
        run(self.updog_cmd(bins, args))
    }

    /// `updog status --json`.
    pub fn status(&self, bins: &Bins) -> Value {
        let r = self.updog(bins, &["status", "--json"]);
        assert_eq!(r.code, 0, "{}: status: {}", self.name, r.stderr);
        r.json()
    }

    /// The set that boots next (`signpost status`).
    pub fn next_boot(&self, bins: &Bins) -> String {
        let mut cmd = bins.cmd("signpost");
        cmd.arg("--disk").arg(&self.disk).args([
            "--active",
            &self.active.to_string(),
            "status",
            "--json",
        ]);
        let r = run(cmd);
        assert_eq!(r.code, 0, "{}: signpost status: {}", self.name, r.stderr);
        r.json()["next_boot"].as_str().unwrap_or("-").to_owned()
    }

    /// The emulated boot of the story: the bootloader's choice, then the verified root's
    /// os-release. Returns the booted version.
    pub fn boot(&mut self, bins: &Bins) -> String {
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

    /// One coordinated update, each step its own process; panics on an unexpected exit code.
    /// Returns the booted version.
    pub fn coordinated_update(&mut self, bins: &Bins) -> String {
        let r = self.updog(bins, &["update", "--reboot"]);
        assert_eq!(
            r.code, 0,
            "{}: update: {} {}",
            self.name, r.stdout, r.stderr
        );
        let version = self.boot(bins);
        let r = self.updog(bins, &["health-check"]);
        assert_eq!(
            r.code, 0,
            "{}: health-check: {} {}",
            self.name, r.stdout, r.stderr
        );
        version
    }

    /// Point the reboot command and the health check at another audit file.
    pub fn audit_into(&self, from: &Path, to: &Path) {
        for file in ["etc/updog.toml", "etc/updog/health.d/10-app"] {
            let file = self.root.join(file);
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains(s(from)), "{}", file.display());
            std::fs::write(&file, text.replace(s(from), s(to))).unwrap();
        }
    }
}

/// A host running `build` from a `file://` repository, coordinated by `fleet`. Its reboot
/// command appends `reboot-start NAME NANOS` to `audit` then runs `reboot_tail` (a shell
/// fragment; empty for an instant reboot); its health check fails on `bad_version` ("app: 500
/// on /healthz") and otherwise takes `warmup` seconds (a service warming up) before it audits
/// `healthy`.
#[allow(clippy::too_many_arguments)]
pub fn make_node(
    world: &World<'_>,
    name: &str,
    build: &Build,
    trust: &Trust,
    fleet: &FleetConfig,
    audit: &Path,
    bad_version: &str,
    reboot_tail: &str,
    warmup: &str,
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
    let list = fleet
        .endpoints
        .split(',')
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let config = host.root.join("etc/updog.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "reboot_command = [\"sh\", \"-c\", \"echo reboot-start {name} $(date +%s%N) >> {audit}{tail}\"]\n\
         fleet = {{ endpoints = [{list}], group = \"{group}\", host = \"{name}\", slot_ttl_secs = {ttl}, acquire_deadline_secs = {deadline}, poll_ms = {poll} }}\n",
        audit = s(audit),
        tail = if reboot_tail.is_empty() {
            String::new()
        } else {
            format!("; {reboot_tail}")
        },
        group = fleet.group,
        ttl = fleet.slot_ttl_secs,
        deadline = fleet.acquire_deadline_secs,
        poll = fleet.poll_ms,
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
             sleep {warmup}\n\
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

/// `fleetctl --endpoints ENDPOINTS ARGS`.
pub fn fleetctl(bins: &Bins, endpoints: &str, args: &[&str]) -> Run {
    let mut cmd = bins.cmd("fleetctl");
    cmd.args(["--endpoints", endpoints]).args(args);
    run(cmd)
}

/// One audit line: when (wall-clock nanoseconds), what (`reboot-start`, `healthy`), which host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditLine {
    /// Nanoseconds since the epoch.
    pub nanos: u128,
    /// `reboot-start` or `healthy`.
    pub kind: String,
    /// The host.
    pub host: String,
}

/// The audit lines of `audit`, in time order (a missing file has none).
pub fn audit_lines(audit: &Path) -> Vec<AuditLine> {
    let text = std::fs::read_to_string(audit).unwrap_or_default();
    let mut lines: Vec<AuditLine> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "bad audit line {l:?}");
            AuditLine {
                nanos: f[2].parse().expect("nanos"),
                kind: f[0].to_string(),
                host: f[1].to_string(),
            }
        })
        .collect();
    lines.sort();
    lines
}

/// Wall-clock nanoseconds now (the audit trail's clock).
pub fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Checks one rollout's audit trail: each of `hosts` hosts rebooted once and became healthy after,
/// never more than `limit` hosts were in between. Returns the most that were in between at once.
pub fn check_audit(lines: &[AuditLine], hosts: usize, limit: usize) -> usize {
    assert_eq!(lines.len(), 2 * hosts, "{lines:?}");
    let (mut inside, mut most) = (Vec::<String>::new(), 0);
    for l in lines {
        match l.kind.as_str() {
            "reboot-start" => {
                assert!(
                    !inside.contains(&l.host),
                    "{} rebooted twice: {lines:?}",
                    l.host
                );
                inside.push(l.host.clone());
                most = most.max(inside.len());
                assert!(
                    inside.len() <= limit,
                    "at {} {inside:?} were between reboot and healthy: {lines:?}",
                    l.nanos
                );
            }
            "healthy" => {
                let before = inside.len();
                inside.retain(|h| h != &l.host);
                assert_eq!(inside.len() + 1, before, "{} healthy before reboot", l.host);
            }
            other => panic!("unknown audit line kind {other}"),
        }
    }
    assert!(inside.is_empty(), "{inside:?} never became healthy");
    most
}

/// Every host rolls out at once, each on its own thread of processes; returns the versions
/// they booted.
pub fn roll_out(nodes: &mut [Node], bins: &Bins) -> Vec<String> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = nodes
            .iter_mut()
            .map(|node| scope.spawn(move || node.coordinated_update(bins)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A one-member etcd on 127.0.0.1 (free ports, data in `dir`), killed on drop: the quickstart's
/// coordinator. The tests use the fleet crate's 3-member cluster instead.
#[derive(Debug)]
pub struct LocalEtcd {
    child: Child,
    /// Its client URL.
    pub endpoint: String,
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("bind 127.0.0.1:0: {e}"))
}

impl LocalEtcd {
    /// Start `etcd` (Debian's etcd-server) with its data and log in `dir`; waits until it
    /// answers `/health` with a leader (at most 30 s).
    pub fn start(dir: &Path) -> Result<LocalEtcd, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = std::fs::File::create(dir.join("etcd.log"))
            .map_err(|e| format!("{}: {e}", dir.join("etcd.log").display()))?;
        let child = Command::new("etcd")
            .args(["--name", "quickstart", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &endpoint])
            .args(["--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("quickstart={peer_url}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                format!("cannot start etcd ({e}); install Debian's etcd-server (scripts/setup.sh)")
            })?;
        let mut etcd = LocalEtcd { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(&etcd.endpoint) {
            if let Ok(Some(status)) = etcd.child.try_wait() {
                return Err(format!(
                    "etcd exited with {status}; see {}",
                    dir.join("etcd.log").display()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd not healthy after 30 s; see {}",
                    dir.join("etcd.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(etcd)
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /health` answers `"health":"true"` (the member has a leader and serves).
pub fn healthy(client_url: &str) -> bool {
    use std::io::{Read, Write};
    let addr = client_url.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body.contains("\"health\":\"true\"")
}
