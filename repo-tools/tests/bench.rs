//! Benchmarks (ignored by default; they print figures, they never assert on time).
//!
//! `cargo test -p repo-tools --test bench -- --ignored --nocapture`
//! (`REPO_TOOLS_BENCH_MIB` sets the target size, default 256). Each figure is printed next to a
//! same-run baseline: sha256 over the same bytes in memory, and a plain file copy.
#![allow(clippy::print_stderr)]

mod common;

use aws_lc_rs::digest::{Context, SHA256};
use common::*;
use repo_tools::Outcome;
use std::time::Instant;
use test_support::http::Server;

fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / secs
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bench_mirror_export_import() {
    let mib: u64 = std::env::var("REPO_TOOLS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    let bytes: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let total = bytes.len() as u64;
    repo.add_files(&[("image.bin", &bytes)]);
    repo.publish(1).await;

    // Baselines in this run.
    let t = Instant::now();
    let mut ctx = Context::new(&SHA256);
    ctx.update(&bytes);
    let _ = ctx.finish();
    let sha = t.elapsed().as_secs_f64();
    drop(bytes);
    let t = Instant::now();
    std::fs::copy(repo.inputs().join("image.bin"), dir.path().join("copy.bin")).unwrap();
    let copy = t.elapsed().as_secs_f64();
    eprintln!(
        "baseline: sha256 in memory {:.0} MiB/s; file copy {:.0} MiB/s",
        mib_per_s(total, sha),
        mib_per_s(total, copy)
    );

    let report = |what: &str, secs: f64| {
        test_support::bench::row(
            &format!("repo-tools: {what}, MiB/s"),
            mib_per_s(total, secs),
            "MiB/s",
            "sha256 of the same bytes in memory",
            mib_per_s(total, sha),
            test_support::bench::Better::Higher,
        );
        eprintln!(
            "{what:<34} {:>7.2} s  {:>6.0} MiB/s  ({:.2}x sha256 time, {:.2}x copy time)",
            secs,
            mib_per_s(total, secs),
            secs / sha,
            secs / copy
        );
    };

    let server = Server::serve_dir(&repo.dir);
    let out = dir.path().join("mirror");
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    let args = [
        "mirror",
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ];
    let t = Instant::now();
    let Outcome::Mirrored(r) = cli(&args).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.fetched, 1);
    report(
        &format!("mirror over HTTP ({mib} MiB)"),
        t.elapsed().as_secs_f64(),
    );
    let t = Instant::now();
    let Outcome::Mirrored(r) = cli(&args).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.reused, 1);
    report("incremental re-run (re-hash)", t.elapsed().as_secs_f64());

    let archive = dir.path().join("repo.tar");
    let t = Instant::now();
    cli(&["export", s(&out), "-o", s(&archive)]).await.unwrap();
    report("export (tar + hash + fsync)", t.elapsed().as_secs_f64());
    let far = dir.path().join("far");
    let t = Instant::now();
    cli(&[
        "import",
        s(&archive),
        "--root",
        s(&repo.root),
        "--out",
        s(&far),
    ])
    .await
    .unwrap();
    report(
        "import (unpack + verify + fsync)",
        t.elapsed().as_secs_f64(),
    );
}
