//! Test repositories built at test time with tough's editor (test keys generated per test,
//! far-future whole-second expiries; nothing committed, nothing expires on a date).
#![allow(dead_code, clippy::print_stderr)]

use clap::Parser;
use repo_tools::cli::Cli;
use repo_tools::clock::FixedClock;
use repo_tools::reporter::NoReporter;
use repo_tools::{Env, Outcome};
use std::path::Path;
use url::Url;

/// The fixed "now" of these tests (whole seconds plus a fraction, to catch fractional leaks).
pub fn now() -> jiff::Timestamp {
    "2030-06-01T12:00:00.123456789Z".parse().unwrap()
}

pub fn far_future() -> jiff::Timestamp {
    test_support::tuf::far_future()
}

pub fn env() -> Env {
    Env {
        clock: Box::new(FixedClock(now())),
        transport: Box::new(tough::DefaultTransport::new()),
    }
}

/// Runs `repo-tools ARGS…` in-process (clap parsing + the library entry point).
pub async fn cli(args: &[&str]) -> repo_tools::Result<Outcome> {
    let mut full = vec!["repo-tools"];
    full.extend_from_slice(args);
    let parsed =
        Cli::try_parse_from(&full).unwrap_or_else(|e| panic!("bad test arguments {args:?}: {e}"));
    repo_tools::run(parsed.command, &env(), &NoReporter).await
}

/// `err` and its whole cause chain as one string.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        s.push_str(" | ");
        s.push_str(&e.to_string());
        source = e.source();
    }
    s
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A repository on disk: `dir/metadata`, `dir/targets`, inputs in `dir/inputs` (test-support's
/// one builder of signed test repositories).
pub use test_support::tuf::SignedRepo as Repo;

/// A manifest with two variants; `aws-dev` x86_64 at 1.0.0, 1.1.0 and 1.2.0 (with migrations),
/// `other` x86_64 at 1.0.0. Image names follow Bottlerocket's convention.
pub fn manifest_files() -> Vec<(String, Vec<u8>)> {
    let image = |variant: &str, version: &str, part: &str| {
        format!("bottlerocket-{variant}-x86_64-{version}-abcdef01-{part}.lz4")
    };
    let mut updates = Vec::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (variant, version) in [
        ("aws-dev", "1.0.0"),
        ("aws-dev", "1.1.0"),
        ("aws-dev", "1.2.0"),
        ("other", "1.0.0"),
    ] {
        let names: Vec<String> = ["boot.ext4", "root.ext4", "root.verity"]
            .iter()
            .map(|p| image(variant, version, p))
            .collect();
        for n in &names {
            files.push((n.clone(), format!("image {n}").repeat(50).into_bytes()));
        }
        updates.push(serde_json::json!({
            "variant": variant, "arch": "x86_64", "version": version, "max_version": "1.2.0",
            "waves": {}, "images": {"boot": names[0], "root": names[1], "hash": names[2]}
        }));
    }
    for m in ["migrate_v1.1.0_a.lz4", "migrate_v1.2.0_b.lz4"] {
        files.push((m.to_owned(), format!("migration {m}").into_bytes()));
    }
    let manifest = serde_json::json!({
        "updates": updates,
        "migrations": {
            "(1.0.0, 1.1.0)": ["migrate_v1.1.0_a.lz4"],
            "(1.1.0, 1.2.0)": ["migrate_v1.2.0_b.lz4"]
        }
    });
    files.push((
        "manifest.json".to_owned(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    ));
    files
}

/// A published repository holding [`manifest_files`].
pub async fn manifest_repo(dir: &Path) -> Repo {
    let repo = Repo::simple(dir);
    let files = manifest_files();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    repo.add_files(&refs);
    repo.publish(1).await;
    repo
}

/// Loads a repository with tough (trusting `root`) and reads every target, returning the names.
pub async fn load_all(root: &Path, metadata: Url, targets: Url) -> Vec<String> {
    let bytes = std::fs::read(root).unwrap();
    let repo = tough::RepositoryLoader::new(&bytes, metadata, targets)
        .load()
        .await
        .unwrap();
    let mut names = Vec::new();
    for name in repo.targets().signed.targets.keys() {
        use tough::IntoVec;
        let stream = repo.read_target(name).await.unwrap().unwrap();
        stream.into_vec().await.unwrap();
        names.push(name.raw().to_owned());
    }
    names.sort();
    names
}

/// Every file under `dir` (relative paths).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn go(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                go(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}
