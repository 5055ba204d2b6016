//! S3-compatible servers for tests: moto's server (Python) and `s3s-fs` (Rust), each started on
//! `127.0.0.1` at a free port and reached only through the S3 API; boto3 reads objects back with
//! their headers.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Access key the servers are started with (moto accepts any; s3s-fs checks it).
pub const ACCESS_KEY: &str = "abostestkey";
/// Secret key.
pub const SECRET_KEY: &str = "abostestsecret1234567890";

/// Which implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Impl {
    /// `moto_server` (pip `moto[server]`): anonymous GET allowed by a bucket policy.
    Moto,
    /// `s3s-fs` (cargo install s3s-fs --features binary): with keys, refuses anonymous
    /// requests; without keys, refuses signed ones.
    S3sFs,
}

impl S3Impl {
    /// Both, for tests that run against each.
    pub const ALL: [S3Impl; 2] = [S3Impl::Moto, S3Impl::S3sFs];

    /// The server's executable.
    pub fn tool(self) -> &'static str {
        match self {
            S3Impl::Moto => "moto_server",
            S3Impl::S3sFs => "s3s-fs",
        }
    }
}

/// A running server (killed on drop).
#[derive(Debug)]
pub struct S3Server {
    /// Which implementation.
    pub kind: S3Impl,
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

impl S3Server {
    /// Starts `kind`; `None` (a recorded skip; a failure under CI) if its tool or python3's
    /// boto3 is missing.
    pub fn start(kind: S3Impl) -> Option<S3Server> {
        if !crate::require_tool(kind.tool()) || !crate::require_tool("python3") {
            return None;
        }
        let boto3 = Command::new("python3")
            .args(["-c", "import boto3"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !boto3 {
            let reason = "python3 module boto3 is not installed (run scripts/setup.sh)";
            assert!(!crate::in_ci(), "{reason}; CI must have it");
            crate::skip(reason);
            return None;
        }
        let dir = crate::tempdir();
        for _ in 0..3 {
            let port = free_port();
            let port_s = port.to_string();
            let mut cmd = match kind {
                S3Impl::Moto => {
                    let mut c = Command::new("moto_server");
                    c.args(["-H", "127.0.0.1", "-p", &port_s]);
                    c
                }
                S3Impl::S3sFs => {
                    let data = dir.path().join("data");
                    std::fs::create_dir_all(&data).expect("create s3s-fs data dir");
                    let mut c = Command::new("s3s-fs");
                    c.args([
                        "--host",
                        "127.0.0.1",
                        "--port",
                        &port_s,
                        "--access-key",
                        ACCESS_KEY,
                        "--secret-key",
                        SECRET_KEY,
                    ])
                    .arg(&data);
                    c
                }
            };
            let log = std::fs::File::create(dir.path().join(format!("server-{port}.log")))
                .expect("server log");
            let mut child = cmd
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", kind.tool()));
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(S3Server {
                        kind,
                        port,
                        child,
                        _dir: dir,
                    });
                }
                if child.try_wait().ok().flatten().is_some() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{} did not start", kind.tool());
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The AWS environment a client needs (endpoint, region, keys), and no profile.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
    }

    /// Sets [`S3Server::env`] on a command (and clears other AWS settings that could leak in).
    pub fn apply(&self, cmd: &mut Command) {
        for v in ["AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"] {
            cmd.env_remove(v);
        }
        cmd.envs(self.env());
    }

    /// Runs a Python snippet with `s3` bound to a boto3 client for this server; returns stdout.
    pub fn boto3(&self, script: &str) -> String {
        let prelude = "import boto3, json, sys\nfrom botocore.config import Config\n\
            s3 = boto3.client('s3', config=Config(s3={'addressing_style': 'path'}))\n";
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(format!("{prelude}{script}"));
        self.apply(&mut cmd);
        let out = cmd.output().expect("run python3");
        assert!(
            out.status.success(),
            "boto3 script failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) {
        self.boto3(&format!("s3.create_bucket(Bucket='{name}')"));
    }

    /// Lets anyone GET the bucket's objects (a bucket policy allowing `s3:GetObject` to `*`), as
    /// a public update repository's bucket, or one behind a CDN, is configured. moto enforces
    /// it; s3s-fs has no bucket policies and refuses anonymous requests whatever is set.
    pub fn allow_anonymous_reads(&self, bucket: &str) {
        self.boto3(&format!(
            "s3.put_bucket_policy(Bucket='{bucket}', Policy=json.dumps({{'Version': '2012-10-17', \
             'Statement': [{{'Effect': 'Allow', 'Principal': '*', 'Action': 's3:GetObject', \
             'Resource': 'arn:aws:s3:::{bucket}/*'}}]}}))"
        ));
    }

    /// Every object under `prefix` with its headers, read back by boto3 (HEAD per object).
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<ObjectHead> {
        let out = self.boto3(&format!(
            "out = []\n\
             for page in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}', Prefix='{prefix}'):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       h = s3.head_object(Bucket='{bucket}', Key=o['Key'])\n\
             \x20       out.append({{'key': o['Key'], 'size': h['ContentLength'], \
             'cache_control': h.get('CacheControl'), 'content_type': h.get('ContentType'), \
             'etag': h.get('ETag'), 'last_modified': h['LastModified'].isoformat()}})\n\
             print(json.dumps(out))\n"
        ));
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("boto3 JSON");
        v.as_array()
            .expect("array")
            .iter()
            .map(|o| ObjectHead {
                key: o["key"].as_str().unwrap_or_default().to_owned(),
                size: o["size"].as_u64().unwrap_or_default(),
                cache_control: o["cache_control"].as_str().map(str::to_owned),
                content_type: o["content_type"].as_str().map(str::to_owned),
                etag: o["etag"].as_str().unwrap_or_default().to_owned(),
                last_modified: o["last_modified"].as_str().unwrap_or_default().to_owned(),
            })
            .collect()
    }

    /// Downloads one object with boto3 into `dest`.
    pub fn download(&self, bucket: &str, key: &str, dest: &Path) {
        self.boto3(&format!(
            "s3.download_file('{bucket}', '{key}', '{}')",
            dest.display()
        ));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One object as boto3 sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Key.
    pub key: String,
    /// Content-Length.
    pub size: u64,
    /// Cache-Control.
    pub cache_control: Option<String>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// ETag.
    pub etag: String,
    /// Last-Modified (ISO 8601).
    pub last_modified: String,
}

/// A plain anonymous HTTP GET (as a host or CDN would do); returns the status code.
pub fn anonymous_get_status(url: &str) -> u16 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request, urllib.error\n\
             try:\n    print(urllib.request.urlopen(sys.argv[1]).status)\n\
             except urllib.error.HTTPError as e:\n    print(e.code)\n",
            url,
        ])
        .output()
        .expect("run python3");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}
