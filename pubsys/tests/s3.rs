//! pubsys with a repository in object storage (`--repo-dir s3://BUCKET/PREFIX`), against two
//! independent S3 servers started here on 127.0.0.1 (moto's server and s3s-fs), each reached
//! only through its S3 API; boto3 reads back what was written, with its headers.

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use test_support::s3::{ObjectHead, S3Impl, S3Server};

const BUCKET: &str = "updates";
const PREFIX: &str = "prod";
const METADATA: &str = "prod/metadata/aws-dev/x86_64/";

fn repo_url() -> String {
    format!("s3://{BUCKET}/{PREFIX}")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pubsys_cmd(server: &S3Server, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pubsys"));
    cmd.args(args).env("NO_COLOR", "1");
    server.apply(&mut cmd);
    cmd
}

fn pubsys(server: &S3Server, args: &[&str]) -> Output {
    pubsys_cmd(server, args).output().expect("run pubsys")
}

fn ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Three image files for `version`: the root image `root_size` bytes (over 8 MiB: a multipart
/// upload), the others small; content depends on the version.
fn images(dir: &Path, version: &str, root_size: usize) -> [PathBuf; 3] {
    let d = dir.join(format!("build-{version}"));
    std::fs::create_dir_all(&d).unwrap();
    let seed = version
        .bytes()
        .fold(7u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    let mut out = Vec::new();
    for (part, size) in [
        ("boot.ext4.lz4", 4096 + version.len()),
        ("root.ext4.lz4", root_size),
        ("root.verity.lz4", 8192),
    ] {
        let path = d.join(format!("bottlerocket-aws-dev-x86_64-{version}-{part}"));
        let mut x = u64::from(seed) | 1;
        let mut bytes = vec![0u8; size.next_multiple_of(8)];
        for chunk in bytes.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        bytes.truncate(size);
        std::fs::write(&path, bytes).unwrap();
        out.push(path);
    }
    [out[0].clone(), out[1].clone(), out[2].clone()]
}

fn repo_args<'a>(
    fx: &'a Fixture,
    version: &'a str,
    imgs: &'a [PathBuf; 3],
    url: &'a str,
) -> Vec<&'a str> {
    vec![
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        url,
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        version,
        "--boot",
        p(&imgs[0]),
        "--root",
        p(&imgs[1]),
        "--hash",
        p(&imgs[2]),
    ]
}

fn on_repo<'a>(fx: &'a Fixture, sub: &'a str, signed: bool, url: &'a str) -> Vec<&'a str> {
    let mut v = vec![sub, "--root-role-path", p(&fx.root)];
    if signed {
        v.extend(["--key", p(&fx.key.path)]);
    }
    v.extend([
        "--repo-dir",
        url,
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ]);
    v
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(path).unwrap(),
    ))
}

/// The manifest the live `timestamp.json` leads to (timestamp -> snapshot -> targets ->
/// manifest.json), read with boto3.
fn live_manifest(server: &S3Server) -> serde_json::Value {
    let out = server.boto3(&format!(
        "get = lambda k: json.loads(s3.get_object(Bucket='{BUCKET}', Key=k)['Body'].read())\n\
         ts = get('{METADATA}timestamp.json')\n\
         snap = get('{METADATA}%d.snapshot.json' % ts['signed']['meta']['snapshot.json']['version'])\n\
         tv = snap['signed']['meta']['targets.json']['version']\n\
         targets = get('{METADATA}%d.targets.json' % tv)\n\
         sha = targets['signed']['targets']['manifest.json']['hashes']['sha256']\n\
         print(json.dumps(get('{PREFIX}/targets/%s.manifest.json' % sha)))\n"
    ));
    serde_json::from_str(out.trim()).expect("manifest JSON")
}

fn versions(manifest: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = manifest["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["version"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn start(kind: S3Impl) -> Option<S3Server> {
    let server = S3Server::start(kind)?;
    server.create_bucket(BUCKET);
    Some(server)
}

/// Publish, validate, check expirations, publish again, refresh, yank; every object carries the
/// Cache-Control and Content-Type of its kind; nothing but the repository is in the bucket.
fn lifecycle(kind: S3Impl) {
    let Some(server) = start(kind) else { return };
    let fx = Fixture::new();
    let url = repo_url();
    let v1 = images(fx.dir.path(), "1.0.0", 9 * 1024 * 1024);
    ok(
        "publish 1.0.0",
        &pubsys(&server, &repo_args(&fx, "1.0.0", &v1, &url)),
    );
    let out = pubsys(&server, &on_repo(&fx, "validate-repo", false, &url));
    ok("validate", &out);
    assert!(text(&out.stdout).contains("4 targets") && text(&out.stdout).contains("0 failed"));
    ok(
        "expirations",
        &pubsys(
            &server,
            &on_repo(&fx, "check-repo-expirations", false, &url),
        ),
    );
    let v2 = images(fx.dir.path(), "1.1.0", 64 * 1024);
    ok(
        "publish 1.1.0",
        &pubsys(&server, &repo_args(&fx, "1.1.0", &v2, &url)),
    );
    let out = pubsys(&server, &on_repo(&fx, "refresh-repo", true, &url));
    ok("refresh", &out);
    let mut yank = on_repo(&fx, "yank", true, &url);
    yank.extend(["--max-version", "1.0.0"]);
    ok("yank", &pubsys(&server, &yank));
    let out = pubsys(&server, &on_repo(&fx, "validate-repo", false, &url));
    ok("validate after yank", &out);
    assert!(
        text(&out.stdout).contains("7 targets"),
        "{}",
        text(&out.stdout)
    );
    let manifest = live_manifest(&server);
    assert_eq!(versions(&manifest), ["1.0.0", "1.1.0"]);
    assert!(
        manifest["updates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["max_version"] == "1.0.0")
    );

    // Headers, as boto3 reads them back.
    let objects = server.objects(BUCKET, "");
    let cc = |o: &ObjectHead| o.cache_control.clone().unwrap_or_default();
    let mut kinds = [0usize; 3];
    for o in &objects {
        assert!(o.key.starts_with("prod/"), "stray object {}", o.key);
        assert!(
            !o.key.contains(".pubsys.lock"),
            "lock object in bucket: {}",
            o.key
        );
        if o.key == format!("{METADATA}timestamp.json") {
            kinds[0] += 1;
            assert_eq!(cc(o), repo_store::kind::TIMESTAMP, "{o:?}");
            assert_eq!(o.content_type.as_deref(), Some("application/json"), "{o:?}");
        } else if o.key.starts_with(METADATA) {
            kinds[1] += 1;
            assert!(
                o.key.ends_with(".root.json")
                    || o.key.ends_with(".snapshot.json")
                    || o.key.ends_with(".targets.json"),
                "{o:?}"
            );
            assert_eq!(cc(o), repo_store::kind::IMMUTABLE, "{o:?}");
            assert_eq!(o.content_type.as_deref(), Some("application/json"), "{o:?}");
        } else {
            kinds[2] += 1;
            assert!(o.key.starts_with("prod/targets/"), "{o:?}");
            assert_eq!(cc(o), repo_store::kind::IMMUTABLE, "{o:?}");
            assert_eq!(
                o.content_type.as_deref(),
                Some("application/octet-stream"),
                "{o:?}"
            );
        }
    }

    assert_eq!(kinds, [1, 9, 9], "{objects:#?}");
    // The multipart-uploaded root image reads back byte for byte.
    let key = format!(
        "prod/targets/{}.{}",
        sha256_hex(&v1[1]),
        v1[1].file_name().unwrap().to_str().unwrap()
    );
    let back = fx.dir.path().join("back.img");
    server.download(BUCKET, &key, &back);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(&v1[1]).unwrap()
    );

    // The same repository through a named profile: keys in the shared credentials file,
    // endpoint and region in the config file, nothing in the environment.
    let creds = fx.dir.path().join("aws-credentials");
    let config = fx.dir.path().join("aws-config");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[ops]\n\
             aws_access_key_id = {}\naws_secret_access_key = {}\n",
            test_support::s3::ACCESS_KEY,
            test_support::s3::SECRET_KEY
        ),
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[profile ops]\nregion = us-east-1\nendpoint_url = {}\n",
            server.endpoint()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pubsys"))
        .args(on_repo(&fx, "check-repo-expirations", false, &url))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", fx.dir.path())
        .env("AWS_PROFILE", "ops")
        .env("AWS_SHARED_CREDENTIALS_FILE", &creds)
        .env("AWS_CONFIG_FILE", &config)
        .output()
        .unwrap();
    ok("expirations through an AWS profile", &out);

    // Hosts read anonymously: both servers refuse that for a private bucket; moto allows it
    // under a public-read bucket policy, s3s-fs has no policies (README "Object storage").
    let ts_url = format!("{}/{BUCKET}/{METADATA}timestamp.json", server.endpoint());
    assert_eq!(test_support::s3::anonymous_get_status(&ts_url), 403);
    if kind == S3Impl::Moto {
        server.allow_anonymous_reads(BUCKET);
        assert_eq!(test_support::s3::anonymous_get_status(&ts_url), 200);
    }
}

#[test]
fn lifecycle_on_moto() {
    lifecycle(S3Impl::Moto);
}

#[test]
fn lifecycle_on_s3s_fs() {
    lifecycle(S3Impl::S3sFs);
}

#[test]
fn bad_bucket_urls_are_usage_errors() {
    let fx = Fixture::new();
    for url in ["s3://Not_A_Bucket/x", "s3:///x", "s3://bkt/a/../b"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pubsys"))
            .args(on_repo(&fx, "validate-repo", false, url))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(url), "{}", text(&out.stderr));
    }
}

/// Reads `--json` progress events from the publisher's stderr until one matches `pred`
/// (pubsys reports a phase when it begins and an item when it is stored); false at EOF.
fn wait_for_event(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> bool {
    for line in lines {
        let Ok(line) = line else { return false };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && pred(&v)
        {
            return true;
        }
    }
    false
}

/// A publisher killed with SIGKILL at chosen points: the repository stays valid and serves the
/// old release (or, if the kill came after the switch, the whole new one); the rerun completes
/// without uploading again the targets that were already there.
fn killed_publisher(kind: S3Impl) {
    let Some(server) = start(kind) else { return };
    let fx = Fixture::new();
    let url = repo_url();
    let v1 = images(fx.dir.path(), "1.0.0", 64 * 1024);
    ok(
        "publish 1.0.0",
        &pubsys(&server, &repo_args(&fx, "1.0.0", &v1, &url)),
    );
    type Point = (&'static str, fn(&serde_json::Value) -> bool);
    let points: [Point; 3] = [
        ("target uploads began", |v| v["phase"] == "writing targets"),
        ("the first target was stored", |v| v["event"] == "item"),
        ("every target was stored, metadata writing began", |v| {
            v["phase"] == "writing metadata"
        }),
    ];
    let mut expected = vec!["1.0.0".to_owned()];
    for (i, (point, pred)) in points.iter().enumerate() {
        let version = format!("2.{i}.0");
        let imgs = images(fx.dir.path(), &version, 10 * 1024 * 1024);
        let ts_key = format!("{METADATA}timestamp.json");
        let ts_before = server
            .objects(BUCKET, &ts_key)
            .pop()
            .expect("timestamp")
            .etag;
        let mut args = repo_args(&fx, &version, &imgs, &url);
        args.push("--json");
        let mut publisher = pubsys_cmd(&server, &args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = publisher.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        assert!(wait_for_event(&mut lines, pred), "no event for: {point}");
        publisher.kill().unwrap();
        let status = publisher.wait().unwrap();
        let ts_after = server
            .objects(BUCKET, &ts_key)
            .pop()
            .expect("timestamp")
            .etag;
        eprintln!(
            "{kind:?}: killed when {point} (publisher {status}, timestamp {})",
            if ts_after == ts_before {
                "unchanged"
            } else {
                "replaced"
            }
        );

        // Readable by a client; every target it lists is there and verifies.
        ok(
            &format!("validate after kill when {point}"),
            &pubsys(&server, &on_repo(&fx, "validate-repo", false, &url)),
        );
        let live = versions(&live_manifest(&server));
        expected.push(version.clone());
        if ts_after != ts_before {
            // Killed after the switch: the whole new release is live; nothing to rerun.
            assert_eq!(
                live, expected,
                "new release complete after kill when {point}"
            );
            continue;
        }
        assert_eq!(
            live,
            expected[..expected.len() - 1],
            "old release still served after kill when {point}"
        );

        // The rerun completes and uploads nothing that was already complete.
        let before: Vec<ObjectHead> = server.objects(BUCKET, "prod/targets/");
        std::thread::sleep(Duration::from_millis(1100));
        ok(
            &format!("rerun after kill when {point}"),
            &pubsys(&server, &repo_args(&fx, &version, &imgs, &url)),
        );
        let after = server.objects(BUCKET, "prod/targets/");
        for b in &before {
            let a = after.iter().find(|a| a.key == b.key).expect("target kept");
            assert_eq!(a.last_modified, b.last_modified, "{} uploaded again", b.key);
        }
        assert_eq!(versions(&live_manifest(&server)), expected);
    }
}

#[test]
fn killed_publisher_on_moto() {
    killed_publisher(S3Impl::Moto);
}

#[test]
fn killed_publisher_on_s3s_fs() {
    killed_publisher(S3Impl::S3sFs);
}

/// Two publishers at once: one wins, the other exits 5 (conflict) with nothing of its own live
/// and its versioned metadata removed; the repository validates and holds the winner's release.
/// (One runs five minutes ahead under faketime, inside SigV4's allowed clock skew, so the two
/// never pick the same metadata version and the race is decided by timestamp.json's ETag
/// compare-and-swap.)
fn concurrent_publishers(kind: S3Impl) {
    if !test_support::require_tool("faketime") {
        return;
    }
    let Some(server) = start(kind) else { return };
    let fx = Fixture::new();
    let url = repo_url();
    let v1 = images(fx.dir.path(), "1.0.0", 64 * 1024);
    ok(
        "publish 1.0.0",
        &pubsys(&server, &repo_args(&fx, "1.0.0", &v1, &url)),
    );
    let mut expected = vec!["1.0.0".to_owned()];
    let mut published = 1;
    let mut conflicts = 0;
    let deadline = Instant::now() + Duration::from_secs(45);
    for round in 0..4 {
        if conflicts > 0 || Instant::now() > deadline {
            break;
        }
        let a_version = format!("3.{round}.0");
        let b_version = format!("4.{round}.0");
        let a_imgs = images(fx.dir.path(), &a_version, 9 * 1024 * 1024);
        let b_imgs = images(fx.dir.path(), &b_version, 9 * 1024 * 1024);
        let bin = env!("CARGO_BIN_EXE_pubsys");
        let mut a = Command::new("faketime");
        a.args(["-f", "+5m", bin])
            .args(&repo_args(&fx, &a_version, &a_imgs, &url)[..])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        server.apply(&mut a);
        let a = a.spawn().unwrap();
        let b = pubsys_cmd(&server, &repo_args(&fx, &b_version, &b_imgs, &url))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let a = a.wait_with_output().unwrap();
        let b = b.wait_with_output().unwrap();
        let codes = (a.status.code(), b.status.code());
        eprintln!("{kind:?} round {round}: exit codes {codes:?}");
        for (out, version) in [(&a, &a_version), (&b, &b_version)] {
            match out.status.code() {
                Some(0) => {
                    expected.push(version.clone());
                    published += 1;
                }
                Some(5) => {
                    conflicts += 1;
                    assert!(
                        text(&out.stderr).contains("another publisher"),
                        "{}",
                        text(&out.stderr)
                    );
                }
                other => panic!(
                    "publisher of {version}: exit {other:?}: {}",
                    text(&out.stderr)
                ),
            }
        }
        assert_ne!(codes, (Some(5), Some(5)), "both publishers lost");
        expected.sort();
        ok(
            "validate after concurrent publishes",
            &pubsys(&server, &on_repo(&fx, "validate-repo", false, &url)),
        );
        assert_eq!(versions(&live_manifest(&server)), expected);
        let snapshots = server
            .objects(BUCKET, METADATA)
            .iter()
            .filter(|o| o.key.ends_with(".snapshot.json"))
            .count();
        assert_eq!(
            snapshots, published,
            "a loser's versioned metadata was left behind"
        );
    }
    assert!(conflicts > 0, "the two publishers never overlapped");
}

#[test]
fn concurrent_publishers_on_moto() {
    concurrent_publishers(S3Impl::Moto);
}

#[test]
fn concurrent_publishers_on_s3s_fs() {
    concurrent_publishers(S3Impl::S3sFs);
}
