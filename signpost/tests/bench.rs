//! Benchmark (ignored by default): latency of one durable flag change (two GPT copies, two
//! fsyncs, read-back check) next to a same-run baseline of just opening and reading the table.
//!
//! Run: `cargo test -p signpost --release --test bench -- --ignored --nocapture`
#![allow(clippy::print_stderr)]

mod common;

use common::*;
use signpost::{Disk, SetName, Signpost};
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
#[ignore]
fn bench_durable_transition() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let rounds = 40;
    let mut read = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let d = Disk::open_read_only(&path).unwrap();
        std::hint::black_box(d.state());
        read.push(t.elapsed());
    }
    let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    let mut change = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        if i % 2 == 0 {
            sp.mark_inactive_valid().unwrap();
        } else {
            sp.clear_inactive().unwrap();
        }
        change.push(t.elapsed());
    }
    let (r, c) = (median(read), median(change));
    test_support::bench::row(
        "signpost: durable flag change (both GPT copies, 2 fsyncs), ms",
        c.as_secs_f64() * 1e3,
        "ms",
        "open + read the table",
        r.as_secs_f64() * 1e3,
        test_support::bench::Better::Lower,
    );
    eprintln!(
        "signpost durable transition: median {:.3} ms; baseline open+read table: {:.3} ms; ratio {:.1}x ({} rounds, {})",
        c.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        c.as_secs_f64() / r.as_secs_f64(),
        rounds,
        dir.path().display()
    );
}
