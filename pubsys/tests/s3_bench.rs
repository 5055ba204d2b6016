//! Benchmark (ignored by default; prints figures, never asserts on time): publishing a release to
//! S3 on loopback (s3s-fs on 127.0.0.1) next to boto3's multipart `upload_file` of the same
//! bytes in the same run, at 256 MiB and 1 GiB; peak RSS of each (`/usr/bin/time -f %M`), to
//! show that pubsys's memory stays flat in the image size (streamed multipart parts).
//!
//! Run: `cargo test -p pubsys --release --test s3_bench -- --ignored --nocapture` (scripts/bench.sh
//! does). pubsys's figure includes hashing the images (it reads them twice: sha256, then upload).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use test_support::bench::{Better, row};
use test_support::s3::{S3Impl, S3Server};

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
}

/// Runs `cmd` under `/usr/bin/time -f '%e %M'`: (seconds, peak RSS in MiB).
fn timed(server: &S3Server, program: &str, args: &[&str]) -> (f64, f64) {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "TIME %e %M", program]).args(args);
    server.apply(&mut cmd);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program}: {stderr}");
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("TIME "))
        .unwrap_or_else(|| panic!("no time line: {stderr}"));
    let mut it = line.split_whitespace().skip(1);
    let secs: f64 = it.next().unwrap().parse().unwrap();
    let kib: f64 = it.next().unwrap().parse().unwrap();
    (secs, kib / 1024.0)
}

#[test]
#[ignore = "benchmark: uploads 2 x 1.25 GiB to a local S3 server"]
fn bench_publish_to_s3() {
    if !test_support::require_tool("time") {
        return;
    }
    let Some(server) = S3Server::start(S3Impl::S3sFs) else {
        return;
    };
    server.create_bucket("bench");
    let fx = Fixture::new();
    let mut rss = Vec::new();
    for (total, label) in [(256 * MIB, "256 MiB"), (1024 * MIB, "1 GiB")] {
        let d = fx.dir.path().join(format!("images-{total}"));
        std::fs::create_dir_all(&d).unwrap();
        // Bottlerocket-like proportions: BOOT 40 MiB, HASH 14 MiB, ROOT the rest.
        let names = ["boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"];
        let sizes = [40 * MIB, total - 54 * MIB, 14 * MIB];
        let paths: Vec<_> = names.iter().map(|n| d.join(n)).collect();
        for (i, (p, len)) in paths.iter().zip(sizes).enumerate() {
            write_pseudo_random(p, len, total + i as u64);
        }
        let version = format!("1.0.{}", total / MIB);
        let url = format!("s3://bench/pubsys-{}", total / MIB);
        let root = fx.root.to_str().unwrap();
        let key = fx.key.path.to_str().unwrap();
        let (secs, peak) = timed(
            &server,
            env!("CARGO_BIN_EXE_pubsys"),
            &[
                "repo",
                "--root-role-path",
                root,
                "--key",
                key,
                "--repo-dir",
                &url,
                "--variant",
                "aws-dev",
                "--arch",
                "x86_64",
                "--version",
                &version,
                "--boot",
                paths[0].to_str().unwrap(),
                "--root",
                paths[1].to_str().unwrap(),
                "--hash",
                paths[2].to_str().unwrap(),
            ],
        );
        let script = format!(
            "import boto3, sys\nfrom botocore.config import Config\n\
             s3 = boto3.client('s3', config=Config(s3={{'addressing_style': 'path'}}))\n\
             for p in sys.argv[1:]:\n    s3.upload_file(p, 'bench', 'boto3-{}/' + p.rsplit('/', 1)[1])\n",
            total / MIB
        );
        let mut args = vec!["-c", script.as_str()];
        let path_strs: Vec<&str> = paths.iter().map(|p| p.to_str().unwrap()).collect();
        args.extend(path_strs.iter().copied());
        let (b_secs, b_peak) = timed(&server, "python3", &args);
        let mb = total as f64 / MIB as f64;
        row(
            &format!("pubsys repo to S3 (s3s-fs, loopback), {label} release"),
            mb / secs,
            "MiB/s",
            "boto3 upload_file (multipart), same bytes",
            mb / b_secs,
            Better::Higher,
        );
        row(
            &format!("pubsys repo to S3 peak RSS, {label} release"),
            peak,
            "MiB",
            "boto3 upload_file peak RSS",
            b_peak,
            Better::Lower,
        );
        rss.push(peak);
        for p in &paths {
            let _ = std::fs::remove_file(p);
        }
    }
    row(
        "pubsys repo to S3 peak RSS, 1 GiB release",
        rss[1],
        "MiB",
        "same at 256 MiB (flat: ratio ~1)",
        rss[0],
        Better::Lower,
    );
}
