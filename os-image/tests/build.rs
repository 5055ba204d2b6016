//! Whole builds on real tools: layout under sgdisk, reproducibility, artifacts under `lz4 -d`,
//! the hash tree under `veritysetup verify`, verify/boot read-back, and bad inputs.

use os_image::identity::{Identity, ImageName};
use os_image::layout::LayoutSize;
use os_image::rootfs::{Extras, FsKind, RootfsSource};
use os_image::{BuildSpec, NoReporter, Populate, bootfs::BootOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn tools_present(extra: &[&str]) -> bool {
    [
        "mkfs.ext4",
        "debugfs",
        "resize2fs",
        "dumpe2fs",
        "lz4",
        "sgdisk",
        "veritysetup",
    ]
    .iter()
    .chain(extra)
    .all(|t| test_support::require_tool(t))
}

fn make_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["etc", "usr/bin", "usr/lib", "var/lib"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("usr/bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(root.join("usr/lib/blob"), big).unwrap();
    std::os::unix::fs::symlink("../usr/bin/hello", root.join("etc/hello-link")).unwrap();
    root
}

fn spec(rootfs: &Path, out: &Path, version: &str) -> BuildSpec {
    BuildSpec {
        rootfs: RootfsSource::from_path(rootfs).unwrap(),
        identity: Identity {
            name: ImageName::default(),
            variant: "test-variant".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: version.parse().unwrap(),
            build_id: "abcdef12".parse().unwrap(),
        },
        extras: Extras::default(),
        boot: BootOptions::default(),
        layout: LayoutSize::SmallTest,
        fs: FsKind::Ext4,
        populate: Populate::SetA,
        out_dir: out.to_path_buf(),
        epoch: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    }
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_range(path: &Path, offset: u64, len: u64) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(std::io::SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0; len as usize];
    f.read_exact(&mut buf).unwrap();
    buf
}

#[test]
fn small_build_is_complete_and_verifies() {
    if !tools_present(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let rootfs = make_rootfs(dir.path());
    let out = dir.path().join("out");
    let kernel = dir.path().join("vmlinuz");
    let kernel_bytes: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&kernel, &kernel_bytes).unwrap();
    let mut spec = spec(&rootfs, &out, "1.0.0");
    spec.boot.kernel = Some(kernel.clone());
    spec.boot.kernel_parameters = vec!["console=ttyS0".into()];
    let d = os_image::build(&spec, &NoReporter).unwrap();

    // Exactly the promised files, nothing partial left behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let prefix = "bottlerocket-test-variant-x86_64-1.0.0-abcdef12";
    assert_eq!(
        names,
        vec![
            format!("{prefix}-boot.ext4.lz4"),
            format!("{prefix}-root.ext4.lz4"),
            format!("{prefix}-root.verity.lz4"),
            format!("{prefix}.img"),
            format!("{prefix}.json"),
        ]
    );
    let loaded = update_metadata::BuildDescription::load(&spec.description_path()).unwrap();
    assert_eq!(loaded, d);
    assert_eq!(d.root_fs, "ext4");

    // The table is clean for sgdisk and has 13 partitions.
    let disk = out.join(format!("{prefix}.img"));
    let v = run("sgdisk", &["-v", disk.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(text.contains("No problems found"), "{text}");

    // Artifacts decode with lz4 -d to what is on the disk, with the sizes and digests described.
    let sp = signpost::Disk::open_read_only(&disk).unwrap();
    let set_a = sp.set(signpost::SetName::A).unwrap();
    for (artifact, partition) in [
        (&d.artifacts.boot, &set_a.boot),
        (&d.artifacts.root, &set_a.root),
        (&d.artifacts.hash, &set_a.hash),
    ] {
        let path = out.join(&artifact.file_name);
        let (size, sha) = os_image::artifacts::file_digest(&path).unwrap();
        assert_eq!(
            (size, sha.as_str()),
            (artifact.size, artifact.sha256.as_str())
        );
        let raw = dir.path().join("raw");
        run(
            "lz4",
            &[
                "-d",
                "-f",
                "-q",
                path.to_str().unwrap(),
                raw.to_str().unwrap(),
            ],
        );
        let (usize_, usha) = os_image::artifacts::file_digest(&raw).unwrap();
        assert_eq!(
            (usize_, usha.as_str()),
            (
                artifact.uncompressed_size,
                artifact.uncompressed_sha256.as_str()
            )
        );
        assert_eq!(
            std::fs::read(&raw).unwrap(),
            read_range(&disk, partition.first_byte, usize_)
        );
    }

    // veritysetup agrees with the root hash, on the decoded artifacts.
    let root_raw = dir.path().join("root.raw");
    let hash_raw = dir.path().join("hash.raw");
    run(
        "lz4",
        &[
            "-d",
            "-f",
            "-q",
            out.join(&d.artifacts.root.file_name).to_str().unwrap(),
            root_raw.to_str().unwrap(),
        ],
    );
    run(
        "lz4",
        &[
            "-d",
            "-f",
            "-q",
            out.join(&d.artifacts.hash.file_name).to_str().unwrap(),
            hash_raw.to_str().unwrap(),
        ],
    );
    run(
        "veritysetup",
        &[
            "verify",
            root_raw.to_str().unwrap(),
            hash_raw.to_str().unwrap(),
            &d.verity.root_hash,
        ],
    );
    assert_eq!(
        d.verity.data_blocks * 4096,
        d.artifacts.root.uncompressed_size
    );

    // Read-back: verify and the emulated boot of A.
    let report = os_image::verify_disk(&disk).unwrap();
    assert_eq!(report.layout, LayoutSize::SmallTest);
    assert_eq!(report.sets.len(), 2);
    assert!(matches!(
        report.sets[1].content,
        os_image::verify_disk::SetContent::Empty
    ));
    assert_eq!(
        report.sets[0].flags,
        signpost::Flags {
            priority: 1,
            tries_left: 0,
            successful: true
        }
    );
    let booted = os_image::emulated_boot(&disk, &set_a).unwrap();
    assert_eq!(booted.os_release["VERSION_ID"], "1.0.0");
    assert_eq!(booted.os_release["VARIANT_ID"], "test-variant");
    assert_eq!(booted.os_release["BUILD_ID"], "abcdef12");
    assert_eq!(booted.boot.verity.root_hash, d.verity.root_hash);
    assert!(booted.boot.has_kernel);
    let copy = dir.path().join("vmlinuz.copy");
    os_image::tools::debugfs_dump(&disk, set_a.boot.first_byte, "/vmlinuz", &copy).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), kernel_bytes);
    let grub = dir.path().join("grub.cfg");
    os_image::tools::debugfs_dump(&disk, set_a.boot.first_byte, "/grub/grub.cfg", &grub).unwrap();
    assert!(
        std::fs::read_to_string(&grub)
            .unwrap()
            .contains("linux ($root)/vmlinuz \\\n       console=ttyS0")
    );
    let err =
        os_image::tools::debugfs_dump(&disk, set_a.boot.first_byte, "/nope", &copy).unwrap_err();
    assert!(
        matches!(err, os_image::Error::FileNotInImage { .. }),
        "{err:?}"
    );
    let grub = booted.boot.grub_dm_mod_create.clone();
    assert!(grub.starts_with(&format!(
        "root,,,ro,0 {} verity 1 PARTUUID=$boot_uuid/PARTNROFF=1",
        d.verity.data_blocks * 8
    )));

    // One flipped byte in ROOT-A: verify and boot name the block.
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(&disk)
            .unwrap();
        let offset = set_a.root.first_byte + 4096 * 7 + 100;
        let byte = read_range(&disk, offset, 1)[0];
        f.seek(std::io::SeekFrom::Start(offset)).unwrap();
        f.write_all(&[byte ^ 0x40]).unwrap();
    }
    let err = os_image::emulated_boot(&disk, &set_a).unwrap_err();
    let os_image::Error::SetVerification { set, source } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*set, signpost::SetName::A);
    assert!(
        matches!(
            **source,
            os_image::Error::Verity {
                source: os_image::verity::Error::DataBlockCorrupt { block: 7 },
                ..
            }
        ),
        "{source:?}"
    );
    assert!(os_image::verify_disk(&disk).is_err());
}

#[test]
fn same_inputs_same_bytes() {
    if !tools_present(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let rootfs = make_rootfs(dir.path());
    let a = os_image::build(&spec(&rootfs, &dir.path().join("a"), "1.0.0"), &NoReporter).unwrap();
    // Touch the input so its timestamps differ; the output must not.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(rootfs.join("usr/bin/hello"), b"#!/bin/sh\necho hello\n").unwrap();
    let b = os_image::build(&spec(&rootfs, &dir.path().join("b"), "1.0.0"), &NoReporter).unwrap();
    assert_eq!(a, b, "descriptions (all digests and the root hash) differ");
    for name in [
        &a.artifacts.boot.file_name,
        &a.artifacts.root.file_name,
        &a.artifacts.hash.file_name,
    ] {
        assert_eq!(
            std::fs::read(dir.path().join("a").join(name)).unwrap(),
            std::fs::read(dir.path().join("b").join(name)).unwrap()
        );
    }
    // A different epoch gives a different salt and root hash.
    let mut other = spec(&rootfs, &dir.path().join("c"), "1.0.0");
    other.epoch = jiff::Timestamp::from_second(1_700_000_001).unwrap();
    let c = os_image::build(&other, &NoReporter).unwrap();
    assert_ne!(a.verity.root_hash, c.verity.root_hash);
}

#[test]
fn kernel_too_big_for_boot_is_named() {
    if !tools_present(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let rootfs = make_rootfs(dir.path());
    let kernel = dir.path().join("huge-vmlinuz");
    std::fs::write(&kernel, vec![0x5au8; 5 << 20]).unwrap();
    let out = dir.path().join("out");
    let mut s = spec(&rootfs, &out, "1.0.0");
    s.boot.kernel = Some(kernel.clone());
    let err = os_image::build(&s, &NoReporter).unwrap_err();
    assert!(
        matches!(&err, os_image::Error::ContentTooBig { what: "boot filesystem", source_dir, .. } if *source_dir == kernel),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// `verify` of a block device reads the device, not pages an earlier reader left in its page
/// cache: a ROOT-A byte changed underneath the loop device (in its backing file, so the loop
/// device's cached pages go stale) is found by the second verify, which would pass on the stale
/// pages.
#[test]
fn verify_of_a_block_device_reads_the_device_not_its_cache() {
    use std::os::unix::fs::FileExt;
    use test_support::loopdev::{Loop, need_loop_devices};
    if !tools_present(&[]) || !need_loop_devices() {
        return;
    }
    let dir = test_support::tempdir();
    let rootfs = make_rootfs(dir.path());
    let out = dir.path().join("out");
    let d = os_image::build(&spec(&rootfs, &out, "1.0.0"), &NoReporter).unwrap();
    let image = out.join(d.disk_image.unwrap().file_name);
    let root_a = signpost::Disk::open_read_only(&image)
        .unwrap()
        .set(signpost::SetName::A)
        .unwrap()
        .root;
    let dev = Loop::attach(&image, &["--read-only"]);
    // Held open, as a host's disk is (the kernel drops a block device's cache at its last
    // close).
    let _held = std::fs::File::open(&dev.dev).unwrap();
    // The first verify reads (and so caches) every ROOT-A block through the loop device.
    os_image::verify_disk(&dev.dev).unwrap();
    // A byte of ROOT-A changes in the backing file: the loop device's cached page is now stale.
    let at = root_a.first_byte + 1_000 * 4096 + 17;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&image)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0x20], at).unwrap();
    f.sync_all().unwrap();
    let e = os_image::verify_disk(&dev.dev).unwrap_err();
    let chain = {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            s.push_str(&format!(": {c}"));
            src = c.source();
        }
        s
    };
    assert!(chain.contains("data block 1000 is corrupt"), "{chain}");
}
