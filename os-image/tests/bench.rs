//! Benchmarks (ignored; never timed assertions). Run once with:
//!
//! ```text
//! cargo test --release -p os-image --test bench -- --ignored --nocapture --test-threads=1
//! ```
//!
//! - `bench_hash_tree_1gib`: our hash tree over 1 GiB against `veritysetup format` on the same
//!   file in the same run (same salt and UUID, so the root hashes must match), with the ratio.
//! - `bench_whole_image_build`: a 2 GiB-layout image from a ~200 MiB root tree, both sets,
//!   against the same-run baseline of copying the root image bytes once (`cp` of the raw root fs).
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::process::Command;
use std::time::Instant;

fn random_file(path: &std::path::Path, bytes: u64) {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..bytes >> 20 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&buf).unwrap();
    }
    f.flush().unwrap();
}

#[test]
#[ignore = "benchmark: 1 GiB"]
fn bench_hash_tree_1gib() {
    if !test_support::require_tool("veritysetup") {
        return;
    }
    let dir = test_support::tempdir();
    let data = dir.path().join("data");
    random_file(&data, 1 << 30);
    let salt = [0x42u8; 32];
    let uuid = [0x11u8; 16];
    // Warm the page cache for both contenders.
    std::io::copy(
        &mut std::fs::File::open(&data).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();

    let theirs = dir.path().join("hash.veritysetup");
    let t = Instant::now();
    let out = Command::new("veritysetup")
        .args([
            "format",
            "--salt",
            &hex::encode(salt),
            "--uuid",
            &os_image::verity::format_uuid(&uuid),
        ])
        .arg(&data)
        .arg(&theirs)
        .output()
        .unwrap();
    let veritysetup_s = t.elapsed().as_secs_f64();
    assert!(out.status.success());

    let ours = dir.path().join("hash.ours");
    let t = Instant::now();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&ours).unwrap());
    let params = os_image::verity::build_with_uuid(
        &mut std::fs::File::open(&data).unwrap(),
        1 << 30,
        &salt,
        uuid,
        &mut w,
    )
    .unwrap();
    w.flush().unwrap();
    drop(w);
    let ours_s = t.elapsed().as_secs_f64();

    assert!(String::from_utf8_lossy(&out.stdout).contains(&params.root_hash_hex()));
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    let mib = 1024.0;
    test_support::bench::row(
        "os-image: dm-verity hash tree over 1 GiB, s",
        ours_s,
        "s",
        "veritysetup format, same file",
        veritysetup_s,
        test_support::bench::Better::Lower,
    );
    println!(
        "hash tree over 1 GiB (page cache warm, {} rayon threads):",
        rayon::current_num_threads()
    );
    println!(
        "  os-image verity::build   {ours_s:7.3} s  {:7.0} MiB/s",
        mib / ours_s
    );
    println!(
        "  veritysetup format       {veritysetup_s:7.3} s  {:7.0} MiB/s",
        mib / veritysetup_s
    );
    println!(
        "  ratio (veritysetup / ours) {:.2}x",
        veritysetup_s / ours_s
    );
}

#[test]
#[ignore = "benchmark: whole image build"]
fn bench_whole_image_build() {
    if !["mkfs.ext4", "debugfs", "resize2fs", "dumpe2fs", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
    {
        return;
    }
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("usr/lib")).unwrap();
    for i in 0..20 {
        random_file(&root.join(format!("usr/lib/blob{i}")), 5 << 20);
    }
    for i in 0..2000 {
        std::fs::write(
            root.join(format!("usr/lib/small{i}")),
            format!("file {i}\n").repeat(50),
        )
        .unwrap();
    }
    // Zero-filled (compressible) content too, as real trees have.
    std::fs::write(root.join("usr/lib/zeros"), vec![0u8; 100 << 20]).unwrap();
    struct Timer(std::cell::RefCell<Vec<(String, Instant)>>);
    impl os_image::Reporter for Timer {
        fn step(&self, step: &os_image::Step) {
            self.0
                .borrow_mut()
                .push((format!("{step:?}"), Instant::now()));
        }
    }
    let spec = os_image::BuildSpec {
        rootfs: os_image::rootfs::RootfsSource::Dir(root.clone()),
        identity: os_image::identity::Identity {
            name: Default::default(),
            variant: "bench".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: "1.0.0".parse().unwrap(),
            build_id: "bench".parse().unwrap(),
        },
        extras: Default::default(),
        boot: Default::default(),
        layout: os_image::layout::LayoutSize::Gib(2),
        fs: os_image::rootfs::FsKind::Ext4,
        populate: os_image::Populate::BothSets,
        out_dir: dir.path().join("out"),
        epoch: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    };
    let timer = Timer(Default::default());
    let start = Instant::now();
    let d = os_image::build(&spec, &timer).unwrap();
    let total = start.elapsed().as_secs_f64();
    let root_img = dir.path().join("out").join(&d.artifacts.root.file_name);

    // Baseline: one plain copy of the tree's bytes (cp -a), the least any builder must do.
    let t = Instant::now();
    let status = Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(dir.path().join("copy"))
        .status()
        .unwrap();
    assert!(status.success());
    let copy_s = t.elapsed().as_secs_f64();

    println!(
        "whole image build (2 GiB layout, both sets, root fs {} MiB, {} files):",
        d.artifacts.root.uncompressed_size >> 20,
        2021
    );
    let steps = timer.0.into_inner();
    for (i, (name, at)) in steps.iter().enumerate() {
        let end = steps
            .get(i + 1)
            .map_or(start + std::time::Duration::from_secs_f64(total), |s| s.1);
        println!("  {:<60} {:7.3} s", name, (end - *at).as_secs_f64());
    }
    test_support::bench::row(
        "os-image: whole image build (2 GiB layout, both sets), s",
        total,
        "s",
        "cp -a of the input tree",
        copy_s,
        test_support::bench::Better::Lower,
    );
    println!("  total                                                        {total:7.3} s");
    println!("  baseline cp -a of the input tree                             {copy_s:7.3} s");
    println!("  ratio (build / copy)  {:.1}x", total / copy_s);
    println!(
        "  root artifact {} bytes compressed ({})",
        d.artifacts.root.size,
        root_img.display()
    );
}
