//! Benchmark (ignored by default; prints, never asserts timings): a whole `updog update` from a
//! delta against the same update with `delta = false`, through the real binaries (pubsys `repo
//! --delta`, updog), from loopback HTTP into a disk image file.
//!
//! ```text
//! cargo build -p updog -p pubsys --bins
//! cargo test -p updog --test delta_bench -- --ignored --nocapture
//! ```
//!
//! The running root is real files (a tar of /usr/lib, /usr/bin, /usr/share cut to
//! `UPDOG_DELTA_BENCH_MIB`, default 256); the new release rewrites 2 % of its 4 KiB blocks, in runs
//! of 8 blocks spread over the image (a package update touches files here and there). Reported:
//! bytes downloaded for the root (from the outcome JSON), wall time and peak RSS of the updog
//! process (getrusage of the child, via python3), and for the delta its scan + plan + execute as
//! logged. Both runs start from the same fresh disk.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::*;

use test_support::bench::{Better, row};

#[test]
#[ignore = "benchmark: builds a 256 MiB release twice; run with --ignored --nocapture"]
fn bench_delta_update_against_full_update() {
    if !tools() {
        return;
    }
    let scene = DeltaBenchScene::new("updog-delta-bench");
    let (mib, host, server, rel) = (scene.mib, &scene.host, &scene.server, &scene.new);
    let full_len = std::fs::metadata(rel.dir.join(&rel.root_name))
        .unwrap()
        .len();
    // Bytes are the figure a fleet pays; wall time depends on the host's link: loopback (no
    // limit), then paced at 1 Gbit/s and 100 Mbit/s by the test server.
    for (link, rate) in [
        ("loopback", None),
        ("1 Gbit/s", Some(125_000_000u64)),
        ("100 Mbit/s", Some(12_500_000u64)),
    ] {
        server.set_rate(rate);
        eprintln!("== link: {link}");
        let mut figures = Vec::new();
        for delta in [true, false] {
            scene.reset(&format!("delta = {delta}\n"));
            let run = measured(&mut host.command(&["--json", "update-image"]));
            let (secs, rss) = (run.secs, run.rss_kib);
            assert!(run.ok, "updog failed: {}{}", run.stderr, run.stdout);
            assert!(veritysetup_verify_b(&host.disk, rel, &scene.path));
            let outcome: serde_json::Value =
                serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
            let how = &outcome["root_update"];
            let root = outcome["written"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["kind"] == "root")
                .unwrap()["downloaded"]
                .as_u64()
                .unwrap();
            eprintln!(
                "delta = {delta}: {secs:.2} s, peak RSS {rss} KiB, root downloaded {root} B of {full_len} B ({:.2} %); {how}",
                root as f64 * 100.0 / full_len as f64
            );
            for l in run
                .stderr
                .lines()
                .filter(|l| l.contains("delta:") || l.contains("root image"))
            {
                eprintln!("  {l}");
            }
            figures.push((secs, rss, root));
        }
        let (d, f) = (figures[0], figures[1]);
        if rate.is_none() {
            row(
                &format!("updog delta update {mib} MiB (2 % changed): root bytes downloaded"),
                d.2 as f64 / 1e6,
                "MB",
                "full update",
                f.2 as f64 / 1e6,
                Better::Lower,
            );
            row(
                &format!("updog delta update {mib} MiB (2 % changed): peak RSS"),
                d.1 as f64 / 1024.0,
                "MiB",
                "full update",
                f.1 as f64 / 1024.0,
                Better::Lower,
            );
        }
        row(
            &format!("updog delta update {mib} MiB (2 % changed): wall time, {link}"),
            d.0,
            "s",
            "full update",
            f.0,
            Better::Lower,
        );
    }
}
