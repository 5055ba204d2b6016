//! A real 3-member etcd cluster on 127.0.0.1 for tests, killed on drop.
#![allow(dead_code, clippy::print_stderr)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleet::{ClientTimeouts, EtcdClient, EtcdCoordinator, parse_endpoints};

/// One etcd member process.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub client_url: String,
    child: Option<Child>,
    /// The command line it was started with (a restart reuses it and its data directory).
    args: Vec<String>,
}

/// A running cluster; every member is killed when it is dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    pub members: Vec<Member>,
    dir: tempfile::TempDir,
    // One cluster at a time per test binary: the machine is small and elections must not starve.
    _serial: std::sync::MutexGuard<'static, ()>,
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

impl EtcdCluster {
    /// Start `n` members and wait until each one answers `/health` with a leader. `None` when
    /// etcd is not installed (skipped visibly; a failure under CI=true).
    pub fn start(n: usize) -> Option<Self> {
        if !test_support::require_tool("etcd") {
            return None;
        }
        let mut serial = Some(SERIAL.lock().unwrap_or_else(|p| p.into_inner()));
        for attempt in 0..3 {
            let guard = serial
                .take()
                .unwrap_or_else(|| SERIAL.lock().unwrap_or_else(|p| p.into_inner()));
            match Self::try_start(n, guard) {
                Ok(c) => return Some(c),
                Err(e) => eprintln!("etcd cluster start attempt {attempt} failed: {e}"),
            }
        }
        panic!("could not start a {n}-member etcd cluster");
    }

    fn try_start(n: usize, serial: std::sync::MutexGuard<'static, ()>) -> Result<Self, String> {
        let dir = test_support::tempdir();
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let token = format!("abos-test-{}-{}", std::process::id(), ports[0].0);
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect();
        let mut members = Vec::new();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let client_url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let log = std::fs::File::create(dir.path().join(format!("{name}.log")))
                .map_err(|e| e.to_string())?;
            let mut args: Vec<String> = vec!["--name".into(), name.clone(), "--data-dir".into()];
            args.push(dir.path().join(&name).to_string_lossy().into_owned());
            for (flag, value) in [
                ("--listen-client-urls", &client_url),
                ("--advertise-client-urls", &client_url),
                ("--listen-peer-urls", &peer_url),
                ("--initial-advertise-peer-urls", &peer_url),
                ("--initial-cluster", &initial.join(",")),
                ("--initial-cluster-state", &"new".to_owned()),
                ("--initial-cluster-token", &token),
            ] {
                args.push(flag.into());
                args.push(value.clone());
            }
            let child = spawn(&args, log)?;
            members.push(Member {
                name,
                client_url,
                child: Some(child),
                args,
            });
        }
        let mut cluster = EtcdCluster {
            members,
            dir,
            _serial: serial,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cluster.members.iter().all(|m| healthy(&m.client_url)) {
            // A member that exited (a port taken between our probe and its bind) fails fast.
            for m in &mut cluster.members {
                if let Some(Ok(Some(status))) = m.child.as_mut().map(Child::try_wait) {
                    return Err(format!(
                        "member {} exited with {status}; its log ends:\n{}",
                        m.name,
                        log_tail(cluster.dir.path(), &m.name)
                    ));
                }
            }
            if Instant::now() > deadline {
                let tails: Vec<String> = cluster
                    .members
                    .iter()
                    .map(|m| format!("{}:\n{}", m.name, log_tail(cluster.dir.path(), &m.name)))
                    .collect();
                return Err(format!(
                    "members not healthy after 30 s\n{}",
                    tails.join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(cluster)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Every member's client URL, comma-separated.
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A coordinator over every member.
    pub fn coordinator(&self) -> Arc<EtcdCoordinator> {
        coordinator(&self.endpoints())
    }

    /// Start a killed member again on its data directory and ports (a member restarted after a
    /// crash). Does not wait for it to be healthy: see [`EtcdCluster::wait_healthy`].
    pub fn restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        assert!(m.child.is_none(), "member {} still runs", m.name);
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.path().join(format!("{}.log", m.name)))
            .expect("member log");
        m.child = Some(spawn(&m.args, log).expect("restart etcd member"));
    }

    /// Wait until every running member answers `/health` with a leader (panics after `limit`).
    pub fn wait_healthy(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .all(|m| healthy(&m.client_url))
        {
            assert!(
                Instant::now() < deadline,
                "etcd members not healthy after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL one member.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[String], log: std::fs::File) -> Result<Child, String> {
    Command::new("etcd")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("spawn etcd: {e}"))
}

pub fn coordinator(endpoints: &str) -> Arc<EtcdCoordinator> {
    let timeouts = ClientTimeouts {
        connect: Duration::from_millis(500),
        request: Duration::from_secs(3),
    };
    Arc::new(EtcdCoordinator::new(
        EtcdClient::new(parse_endpoints(endpoints).unwrap(), timeouts).unwrap(),
    ))
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// `GET /health` answers `"health":"true"` (the member has a leader and serves).
fn healthy(client_url: &str) -> bool {
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

/// A port on 127.0.0.1 that nothing listens on.
pub fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The last lines of a member's log (the directory goes away with the cluster).
fn log_tail(dir: &std::path::Path, member: &str) -> String {
    let log = std::fs::read_to_string(dir.join(format!("{member}.log"))).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
