//! Benchmarks (ignored by default; they print figures, they never assert on time).
//!
//! Run: `cargo test -p pubsys --release --test bench -- --ignored --nocapture --test-threads 1`
//! (the dev profile builds dependencies with opt-level 2, so a debug run is indicative too).
//!
//! - `bench_publish_1gib_release`: publishing a release whose three images total 1 GiB, against a
//!   same-run baseline of reading + sha256 over the same bytes (warm page cache for both).
//! - `bench_add_release_to_repo_with_1000_targets`: adding a release to a repository that already
//!   lists 1000 targets, against adding the same release to a repository with one release.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::*;
use pubsys::NoReporter;
use pubsys::store::{LocalStore, TargetMode};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

fn write_pseudo_random(path: &Path, len: u64, seed: u64) {
    let mut f = std::io::BufWriter::with_capacity(4 << 20, std::fs::File::create(path).unwrap());
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
    f.get_ref().sync_all().unwrap();
}

fn sha256_files(paths: &[&Path]) -> (u64, Duration) {
    let start = Instant::now();
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    for p in paths {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let mut f = std::fs::File::open(p).unwrap();
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
            ctx.update(&buf[..n]);
        }
        std::hint::black_box(ctx.finish());
    }
    (total, start.elapsed())
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

#[test]
#[ignore = "benchmark: writes 1 GiB of images and two 1 GiB repositories"]
fn bench_publish_1gib_release() {
    let fx = Fixture::new();
    let mut req = fx.request("1.0.0", now());
    // Bottlerocket-like proportions: BOOT 40 MiB, HASH 14 MiB, ROOT the rest of 1 GiB.
    let sizes = [40 * MIB, 1024 * MIB - 54 * MIB, 14 * MIB];
    let paths = [
        &req.inputs.images.boot,
        &req.inputs.images.root,
        &req.inputs.images.hash,
    ];
    for (i, (p, len)) in paths.iter().zip(sizes).enumerate() {
        write_pseudo_random(p, len, 0x9E37_79B9_7F4A_7C15 ^ i as u64);
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    sha256_files(&refs); // warm the page cache
    let (bytes, base) = sha256_files(&refs);

    let start = Instant::now();
    fx.publish(&req).unwrap();
    let copy = start.elapsed();

    req.target_mode = TargetMode::Hardlink;
    let store2 = LocalStore::repo_dir(&fx.dir.path().join("repo-linked"), &fx.variant, fx.arch);
    let start = Instant::now();
    rt().block_on(pubsys::release::publish(
        &req,
        &store2,
        Arc::new(NoReporter),
    ))
    .unwrap();
    let link = start.elapsed();

    for (what, took) in [("copy + fsync", copy), ("--link-targets", link)] {
        test_support::bench::row(
            &format!("pubsys: publish 1 GiB release ({what}), s"),
            took.as_secs_f64(),
            "s",
            "sha256 over the same bytes",
            base.as_secs_f64(),
            test_support::bench::Better::Lower,
        );
    }
    println!(
        "publish 1 GiB release ({} bytes in 3 images), repository on the same filesystem:",
        bytes
    );
    println!(
        "  baseline sha256 over the same bytes: {:>7.3} s  {:>7.0} MiB/s",
        base.as_secs_f64(),
        mbps(bytes, base)
    );
    println!(
        "  pubsys repo (copy + fsync, default): {:>7.3} s  {:>7.0} MiB/s  ratio {:.2}x",
        copy.as_secs_f64(),
        mbps(bytes, copy),
        copy.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  pubsys repo --link-targets:          {:>7.3} s  {:>7.0} MiB/s  ratio {:.2}x",
        link.as_secs_f64(),
        mbps(bytes, link),
        link.as_secs_f64() / base.as_secs_f64()
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Adds releases 1.1.0 ..= 1.5.0 one after another; returns each one's time.
fn add_five(fx: &Fixture) -> Vec<Duration> {
    (1..=5)
        .map(|minor| {
            let req = fx.request(&format!("1.{minor}.0"), now());
            let start = Instant::now();
            fx.publish(&req).unwrap();
            start.elapsed()
        })
        .collect()
}

#[test]
#[ignore = "benchmark: builds a repository with 1000 targets"]
fn bench_add_release_to_repo_with_1000_targets() {
    // Baseline: a repository with one release (4 targets), then five more releases.
    let small = Fixture::new();
    small.publish(&small.request("1.0.0", now())).unwrap();
    let base_runs = add_five(&small);

    // A repository with 1000 targets: one release plus 996 extra targets.
    let big = Fixture::new();
    let extras = big.dir.path().join("extras");
    std::fs::create_dir_all(&extras).unwrap();
    let mut first = big.request("1.0.0", now());
    for i in 0..996 {
        let p = extras.join(format!("migrate_v1.0.0_step-{i:04}.lz4"));
        std::fs::write(&p, format!("migration {i}").repeat(64)).unwrap();
        first.extra_targets.push(p);
    }
    let start = Instant::now();
    big.publish(&first).unwrap();
    let create_1000 = start.elapsed();
    let big_runs = add_five(&big);
    let targets_json_len = std::fs::read_dir(big.metadata_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".targets.json"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .max()
        .unwrap();
    let report = rt()
        .block_on(pubsys::validate::validate(
            &big.root_bytes(),
            &big.source(),
            &pubsys::repo::LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok());

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (base, big_add) = (median(base_runs.clone()), median(big_runs.clone()));
    test_support::bench::row(
        "pubsys: add a release to a repository of 1000 targets, ms",
        ms(big_add),
        "ms",
        "same release, repository of 4 targets",
        ms(base),
        test_support::bench::Better::Lower,
    );
    println!("add a release (3 x 64 KiB images) to an existing repository, median of 5 releases:");
    println!(
        "  baseline, repository with 4..20 targets:       {:>8.1} ms  (runs: {:?})",
        ms(base),
        base_runs.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    );
    println!(
        "  repository with 1000..1020 targets:            {:>8.1} ms  (runs: {:?})  ratio {:.2}x",
        ms(big_add),
        big_runs.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
        big_add.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  ({} targets at the end, targets.json {} bytes; creating the 1000-target repository took {:.1} ms)",
        report.targets,
        targets_json_len,
        ms(create_1000)
    );
}
