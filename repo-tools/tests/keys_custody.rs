//! Keys in custody, through the real binary: keys on a real SoftHSM2 token (created here, in a
//! temp dir, with `softhsm2-util` and `pkcs11-tool`) and in AWS KMS as moto's server answers it on
//! 127.0.0.1, used by `repo-tools root add-key` (public key read from the token / KMS) and
//! `repo-tools root sign`; `root verify` checks the result with tough's verification.

#![allow(clippy::print_stderr)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A SoftHSM2 token in a temp dir, with key pairs made by pkcs11-tool.
struct Token {
    conf: PathBuf,
    pin_file: PathBuf,
}

impl Token {
    fn new(dir: &Path) -> Option<Token> {
        if !test_support::require_tool("softhsm2-util")
            || !test_support::require_tool("pkcs11-tool")
        {
            return None;
        }
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin_file = dir.join("pin");
        std::fs::write(&pin_file, "1234\n").unwrap();
        let t = Token { conf, pin_file };
        t.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                "abos",
                "--pin",
                "1234",
                "--so-pin",
                "5678",
            ],
        );
        Some(t)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let o = Command::new(tool)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// Generates a key pair (`EC:prime256v1`, `rsa:2048`, `EC:edwards25519`).
    fn keygen(&self, key_type: &str, label: &str, id: &str) {
        self.run(
            "pkcs11-tool",
            &[
                "--module",
                MODULE,
                "--token-label",
                "abos",
                "--login",
                "--pin",
                "1234",
                "--keypairgen",
                "--key-type",
                key_type,
                "--label",
                label,
                "--id",
                id,
            ],
        );
    }

    fn url(&self, label: &str) -> String {
        format!(
            "pkcs11:token=abos;object={label}?pin-source={}",
            self.pin_file.display()
        )
    }
}

/// moto's server on a free loopback port, stopped on drop.
struct Kms {
    child: Child,
    endpoint: String,
}

impl Drop for Kms {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Kms {
    fn start() -> Option<Kms> {
        if !test_support::require_tool("moto_server") {
            return None;
        }
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let kms = Kms {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(kms);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("moto_server did not listen on {port}");
    }

    /// Creates a signing key (`ECC_NIST_P256`, `RSA_2048`) with boto3 and an alias; returns its ID.
    fn create_key(&self, spec: &str, alias: &str) -> String {
        let script = format!(
            "import boto3\n\
             c = boto3.client('kms', endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
             k = c.create_key(KeySpec='{spec}', KeyUsage='SIGN_VERIFY')['KeyMetadata']['KeyId']\n\
             c.create_alias(AliasName='alias/{alias}', TargetKeyId=k)\n\
             print(k)\n",
            self.endpoint
        );
        let o = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap().trim().to_owned()
    }
}

/// The environment every repo-tools run gets: the token's config and a KMS endpoint (a closed
/// port when there is no server), never the user's AWS files or the instance metadata service.
fn repo_tools(token: Option<&Token>, kms_endpoint: &str, args: &[&str]) -> Output {
    let no_file = std::env::temp_dir().join("abos-keys-custody-no-such-aws-file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repo-tools"));
    cmd.args(args)
        .env("AWS_ENDPOINT_URL_KMS", kms_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", &no_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", &no_file)
        .env("AWS_MAX_ATTEMPTS", "1")
        .env_remove("PKCS11_MODULE_PATH");
    if let Some(t) = token {
        cmd.env("SOFTHSM2_CONF", &t.conf);
    }
    cmd.output().unwrap()
}

fn ok(o: &Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ALL_ROLES: [&str; 8] = [
    "--role",
    "root",
    "--role",
    "snapshot",
    "--role",
    "targets",
    "--role",
    "timestamp",
];

fn add_key(token: Option<&Token>, kms: &str, root: &Path, key: &str) {
    let mut args = vec!["root", "add-key", s(root), "--key", key];
    args.extend(ALL_ROLES);
    ok(&repo_tools(token, kms, &args));
}

#[test]
fn hsm_keys_of_each_type_sign_roots_and_failures_write_nothing() {
    let dir = test_support::tempdir();
    let Some(token) = Token::new(dir.path()) else {
        return;
    };
    let closed = format!("http://127.0.0.1:{}", free_port());
    token.keygen("EC:prime256v1", "ec", "01");
    token.keygen("rsa:2048", "rsa", "02");
    token.keygen("EC:edwards25519", "ed", "03");
    for label in ["ec", "rsa", "ed"] {
        let root = dir.path().join(format!("root-{label}.json"));
        ok(&repo_tools(None, &closed, &["root", "init", s(&root)]));
        // The public key is read from the token's public object: no PIN needed.
        add_key(
            Some(&token),
            &closed,
            &root,
            &format!("pkcs11:token=abos;object={label}"),
        );
        ok(&repo_tools(
            Some(&token),
            &closed,
            &["root", "sign", s(&root), "--key", &token.url(label)],
        ));
        ok(&repo_tools(None, &closed, &["root", "verify", s(&root)]));
    }

    // Failures name the key (PIN redacted) and the cause, exit 6, and leave the root unchanged.
    let root = dir.path().join("root-ec.json");
    let before = std::fs::read(&root).unwrap();
    for (url, expect) in [
        (
            "pkcs11:token=abos;object=ec?pin-value=9999".to_owned(),
            "wrong PIN",
        ),
        (
            format!(
                "pkcs11:token=abos;object=missing?pin-source={}",
                token.pin_file.display()
            ),
            "no private key matches",
        ),
        (
            format!(
                "pkcs11:token=nosuchtoken;object=ec?pin-source={}",
                token.pin_file.display()
            ),
            "no token matches",
        ),
        ("aws-kms:///alias/unreachable".to_owned(), "GetPublicKey"),
    ] {
        let o = repo_tools(
            Some(&token),
            &closed,
            &["root", "sign", s(&root), "--key", &url],
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(6), "{url}: {stderr}");
        assert!(stderr.contains(expect), "{url}: {stderr}");
        assert!(!stderr.contains("9999"), "the PIN leaked: {stderr}");
        let shown = url.replace("pin-value=9999", "pin-value=***");
        assert!(stderr.contains(&shown), "{url}: {stderr}");
        assert_eq!(std::fs::read(&root).unwrap(), before, "{url}");
    }
}

#[test]
fn repo_tools_accepts_file_urls_like_pubsys() {
    let dir = test_support::tempdir();
    let closed = format!("http://127.0.0.1:{}", free_port());
    let root = dir.path().join("root.json");
    let key = dir.path().join("k.pk8");
    ok(&repo_tools(None, &closed, &["root", "init", s(&root)]));
    ok(&repo_tools(None, &closed, &["root", "gen-key", s(&key)]));
    let url = format!("file://{}", key.display());
    add_key(None, &closed, &root, &url);
    ok(&repo_tools(
        None,
        &closed,
        &["root", "sign", s(&root), "--key", &url],
    ));
    ok(&repo_tools(None, &closed, &["root", "verify", s(&root)]));
    // A file:// URL to a missing file is an error about that file, not "bad key text".
    let o = repo_tools(
        None,
        &closed,
        &[
            "root",
            "sign",
            s(&root),
            "--key",
            "file:///nonexistent/k.pk8",
        ],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/k.pk8"));
}

#[test]
fn one_hsm_key_and_one_kms_key_meet_a_root_threshold_of_two() {
    let dir = test_support::tempdir();
    let Some(token) = Token::new(dir.path()) else {
        return;
    };
    let Some(kms) = Kms::start() else {
        return;
    };
    token.keygen("EC:prime256v1", "root-hsm", "11");
    let key_id = kms.create_key("ECC_NIST_P256", "root-kms");
    let root = dir.path().join("root.json");
    let ep = kms.endpoint.as_str();
    ok(&repo_tools(None, ep, &["root", "init", s(&root)]));
    add_key(Some(&token), ep, &root, "pkcs11:token=abos;object=root-hsm");
    // By key ID for add-key, by alias for signing: the same key either way.
    add_key(None, ep, &root, &format!("aws-kms:///{key_id}"));
    for role in ["root", "snapshot", "targets", "timestamp"] {
        ok(&repo_tools(
            None,
            ep,
            &["root", "set-threshold", s(&root), role, "2"],
        ));
    }
    // One key alone does not meet the threshold: nothing is written.
    let before = std::fs::read(&root).unwrap();
    let o = repo_tools(
        Some(&token),
        ep,
        &["root", "sign", s(&root), "--key", &token.url("root-hsm")],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&root).unwrap(), before);
    // Both together do.
    ok(&repo_tools(
        Some(&token),
        ep,
        &[
            "root",
            "sign",
            s(&root),
            "--key",
            &token.url("root-hsm"),
            "--key",
            "aws-kms:///alias/root-kms",
        ],
    ));
    ok(&repo_tools(None, ep, &["root", "verify", s(&root)]));
    let signed: serde_json::Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    assert_eq!(signed["signatures"].as_array().unwrap().len(), 2);

    // pubsys publishes a release under that root with the same two keys (threshold 2 for
    // targets, snapshot and timestamp too); pubsys's validation (tough) and tuftool read it.
    let exe = std::env::current_exe().unwrap();
    let pubsys = exe.parent().unwrap().parent().unwrap().join("pubsys");
    assert!(
        pubsys.is_file(),
        "{} missing: build the binaries first (cargo build --workspace --bins)",
        pubsys.display()
    );
    let repo = dir.path().join("repo");
    let mut images = Vec::new();
    for part in ["boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"] {
        let p = dir.path().join(part);
        std::fs::write(&p, part.repeat(1000)).unwrap();
        images.push(p);
    }
    let run = |args: &[&str]| {
        let mut cmd = Command::new(&pubsys);
        cmd.args(args)
            .env("SOFTHSM2_CONF", &token.conf)
            .env("AWS_ENDPOINT_URL_KMS", ep)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd.output().unwrap()
    };
    let hsm = token.url("root-hsm");
    let mut publish = vec![
        "repo",
        "--root-role-path",
        s(&root),
        "--key",
        &hsm,
        "--key",
        "aws-kms:///alias/root-kms",
        "--repo-dir",
        s(&repo),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.0.0",
    ];
    for (flag, p) in ["--boot", "--root", "--hash"].iter().zip(&images) {
        publish.push(flag);
        publish.push(s(p));
    }
    // The HSM key alone cannot meet the threshold: exit 3, nothing written.
    let o = run(&[
        "repo",
        "--root-role-path",
        s(&root),
        "--key",
        &hsm,
        "--repo-dir",
        s(&repo),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.0.0",
        "--boot",
        s(&images[0]),
        "--root",
        s(&images[1]),
        "--hash",
        s(&images[2]),
    ]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!repo.join("metadata/aws-dev/x86_64/timestamp.json").exists());
    ok(&run(&publish));
    ok(&run(&[
        "validate-repo",
        "--root-role-path",
        s(&root),
        "--repo-dir",
        s(&repo),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ]));
    if test_support::require_tool("tuftool") {
        let out = dir.path().join("tuftool-out");
        let o = Command::new("tuftool")
            .args(["download", "-r", s(&root), "-m"])
            .arg(format!(
                "file://{}/metadata/aws-dev/x86_64/",
                repo.display()
            ))
            .arg("-t")
            .arg(format!("file://{}/targets/", repo.display()))
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "tuftool: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.join("manifest.json").is_file());
    }
}
