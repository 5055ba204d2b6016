//! Benchmark (issue 16): bytes a delta fetches against the full `.lz4` artifact, on a ~1 GiB
//! ext4 root built from real files (`/usr/lib`, `/usr/share`), for (a) ~2 % of files changed,
//! (b) identical content with a new version string, (c) a file inserted early in the tree, (d)
//! everything changed (nothing reusable). Time of planning (scan + plan) and executing next to
//! decompressing the full artifact in the same run.
//!
//! Run: `scripts/bench.sh abos-delta` (or `cargo test --release -p abos-delta --test bench --
//! --ignored --nocapture`). `ABOS_DELTA_BENCH_MIB` sets the image size (default 1024).
#![allow(clippy::print_stdout)]

use abos_delta::execute::execute;
use abos_delta::fetch::FileFetch;
use abos_delta::plan::Options;
use abos_delta::publish::publish_file;
use abos_delta::{LocalIndex, Plan};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use test_support::bench::{Better, row};

const UUID: &str = "4a3e1f3c-2f0d-4c3e-9d59-6c1c8a8f0b16";
const EPOCH: &str = "1700000000";

fn mkfs(tree: &Path, image: &Path, mib: u64) {
    let _ = std::fs::remove_file(image);
    let status = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-O",
            "^has_journal",
            "-E",
        ])
        .arg(format!(
            "lazy_itable_init=0,root_owner=0:0,nodiscard,hash_seed={UUID}"
        ))
        .args(["-U", UUID, "-d"])
        .arg(tree)
        .arg(image)
        .arg(format!("{mib}M"))
        .env("E2FSPROGS_FAKE_TIME", EPOCH)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .status()
        .expect("mkfs.ext4");
    assert!(status.success(), "mkfs.ext4 failed");
}

fn lz4_9(image: &Path) -> PathBuf {
    let out = image.with_extension("lz4");
    let status = Command::new("lz4")
        .args(["-9", "-q", "-f"])
        .arg(image)
        .arg(&out)
        .status()
        .expect("lz4");
    assert!(status.success());
    out
}

/// Regular files under `roots`, sorted, until `budget` bytes.
fn pick_files(roots: &[&str], budget: u64) -> Vec<(PathBuf, u64)> {
    let mut all = Vec::new();
    let mut stack: Vec<PathBuf> = roots.iter().map(PathBuf::from).collect();
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries.into_iter().rev() {
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() && m.len() > 0 {
                all.push((p, m.len()));
            }
        }
    }
    let mut total = 0;
    all.into_iter()
        .take_while(|(_, len)| {
            total += len;
            total <= budget
        })
        .collect()
}

fn xor_file(path: &Path) {
    let mut data = std::fs::read(path).unwrap();
    for b in data.iter_mut().step_by(97) {
        *b ^= 0x5a;
    }
    data.extend_from_slice(b"updated\n");
    std::fs::write(path, data).unwrap();
}

fn full_decompress_secs(lz4: &Path) -> f64 {
    let t = Instant::now();
    let mut d = lz4_flex::frame::FrameDecoder::new(std::io::BufReader::new(
        std::fs::File::open(lz4).unwrap(),
    ));
    let mut buf = vec![0u8; 1 << 20];
    let mut sink = std::fs::File::create(lz4.with_extension("full-out")).unwrap();
    loop {
        let n = d.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        std::io::Write::write_all(&mut sink, &buf[..n]).unwrap();
    }
    sink.sync_data().unwrap();
    t.elapsed().as_secs_f64()
}

/// Publishes `new`, plans it against `old` (None: nothing local), executes, checks the result.
fn case(name: &str, work: &Path, old: Option<&Path>, new: &Path, budget_pct: f64) {
    let full = lz4_9(new);
    let full_len = std::fs::metadata(&full).unwrap().len();
    let repo = work.join(format!("repo-{name}"));
    std::fs::create_dir_all(&repo).unwrap();
    let t = Instant::now();
    let published = publish_file(new, &repo, "root.ext4").unwrap();
    let publish_secs = t.elapsed().as_secs_f64();
    let index_len = std::fs::metadata(&published.index_path).unwrap().len();
    let chunks_len = std::fs::metadata(&published.chunks_path).unwrap().len();

    let t = Instant::now();
    let mut local = LocalIndex::new();
    let mut sources = Vec::new();
    if let Some(old) = old {
        local
            .add_source(
                std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(old).unwrap()),
                published.index.header.chunking,
                "old",
            )
            .unwrap();
        sources.push(std::fs::File::open(old).unwrap());
    }
    let plan = Plan::new(&published.index, &local, Options::default());
    let plan_secs = t.elapsed().as_secs_f64();
    let decision = plan.decide(index_len, full_len);

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let target_path = work.join(format!("out-{name}.img"));
    let mut target = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&target_path)
        .unwrap();
    let mut fetch = FileFetch::open(&published.chunks_path).unwrap();
    let t = Instant::now();
    let outcome = rt
        .block_on(execute(
            &published.index,
            &plan,
            &sources,
            &mut fetch,
            &mut target,
            None,
        ))
        .unwrap();
    let exec_secs = t.elapsed().as_secs_f64();
    drop(target);
    let full_secs = full_decompress_secs(&full);
    let same = {
        let a = std::fs::read(&target_path).unwrap();
        let b = std::fs::read(new).unwrap();
        a == b
    };
    assert!(same, "{name}: executor output differs from the new image");
    let delta_bytes = index_len + plan.fetch_bytes;
    let pct = 100.0 * delta_bytes as f64 / full_len as f64;
    let effective = delta_bytes.min(full_len + index_len);
    println!(
        "\n{name}: full .lz4 {full_len} B; chunk file {chunks_len} B ({:.1} %); index {index_len} B; \
         planned fetch {} B in {} requests + index = {delta_bytes} B = {pct:.2} % of full \
         (target ≤ {budget_pct} %); decision {}; reuse {} B; publish {publish_secs:.2} s, scan+plan \
         {plan_secs:.2} s, execute {exec_secs:.2} s (fetched {} B), full decompress {full_secs:.2} s",
        100.0 * chunks_len as f64 / full_len as f64,
        plan.fetch_bytes,
        plan.requests.len(),
        match decision {
            abos_delta::Decision::Delta(_) => "delta",
            abos_delta::Decision::Full(_) => "full",
        },
        plan.reuse_bytes,
        outcome.fetched_bytes,
    );
    row(
        &format!("delta {name}: bytes downloaded (incl. index; full if not smaller)"),
        effective as f64 / 1e6,
        "MB",
        "full .lz4 artifact",
        full_len as f64 / 1e6,
        Better::Lower,
    );
    row(
        &format!("delta {name}: scan+plan+execute"),
        plan_secs + exec_secs,
        "s",
        "decompress+write full artifact",
        full_secs,
        Better::Lower,
    );
    let _ = std::fs::remove_file(&target_path);
    let _ = std::fs::remove_file(full.with_extension("full-out"));
    let _ = std::fs::remove_file(&full);
    let _ = std::fs::remove_dir_all(&repo);
}

#[test]
#[ignore = "benchmark: builds ~1 GiB ext4 images; run with scripts/bench.sh"]
fn bench() {
    for tool in ["mkfs.ext4", "lz4"] {
        test_support::require_tool(tool);
    }
    let mib: u64 = std::env::var("ABOS_DELTA_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let work =
        tempfile::tempdir_in(std::env::var("ABOS_BENCH_DIR").unwrap_or("/var/tmp".into())).unwrap();
    let tree = work.path().join("tree");
    // Content: ~70 % of the filesystem (apparent size), real files from /usr.
    let files = pick_files(&["/usr/lib", "/usr/share"], mib * (1 << 20) * 70 / 100);
    let mut rels = Vec::new();
    for (i, (src, _)) in files.iter().enumerate() {
        let rel = PathBuf::from(format!("usr/d{:03}", i / 200)).join(format!(
            "{i:06}-{}",
            src.file_name().unwrap().to_string_lossy()
        ));
        let dst = tree.join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, &dst).unwrap();
        rels.push(rel);
    }
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    let os_release = tree.join("etc/os-release");
    std::fs::write(&os_release, "NAME=abos\nVERSION_ID=1.0.0\nBUILD_ID=aaaa\n").unwrap();
    let base = work.path().join("base.img");
    mkfs(&tree, &base, mib);

    // (b) identical content, new version string.
    std::fs::write(&os_release, "NAME=abos\nVERSION_ID=1.0.1\nBUILD_ID=bbbb\n").unwrap();
    let b = work.path().join("b.img");
    mkfs(&tree, &b, mib);
    case("(b) new version string", work.path(), Some(&base), &b, 1.0);
    std::fs::remove_file(&b).unwrap();

    // (c) a file inserted early in the tree (sorted first, in the first directory).
    let inserted = tree.join("usr/d000/000000-aaa-inserted");
    std::fs::copy(&files[files.len() / 2].0, &inserted).unwrap();
    let c = work.path().join("c.img");
    mkfs(&tree, &c, mib);
    case(
        "(c) file inserted early",
        work.path(),
        Some(&base),
        &c,
        12.0,
    );
    std::fs::remove_file(&c).unwrap();
    std::fs::remove_file(&inserted).unwrap();

    // (a) ~2 % of the files changed (every 50th), like a package update.
    for rel in rels.iter().step_by(50) {
        xor_file(&tree.join(rel));
    }
    let a = work.path().join("a.img");
    mkfs(&tree, &a, mib);
    case(
        "(a) 2 % of files changed",
        work.path(),
        Some(&base),
        &a,
        10.0,
    );
    std::fs::remove_file(&a).unwrap();

    // (d) everything changed: nothing on the host is reusable.
    case("(d) everything changed", work.path(), None, &base, 105.0);
}
