//! The 2 GiB layout against the fact sheet through sfdisk/sgdisk, erofs and tar inputs, both
//! sets, and bad inputs (too big, bad root.json, unwritable output) leaving no partial output.

use os_image::identity::{Identity, ImageName};
use os_image::layout::LayoutSize;
use os_image::rootfs::{Extras, FsKind, RootfsSource};
use os_image::verify_disk::SetContent;
use os_image::{BuildSpec, NoReporter, Populate, bootfs::BootOptions};
use std::path::Path;
use std::process::Command;

fn tools(extra: &[&str]) -> bool {
    [
        "mkfs.ext4",
        "debugfs",
        "resize2fs",
        "dumpe2fs",
        "lz4",
        "sgdisk",
        "sfdisk",
    ]
    .iter()
    .chain(extra)
    .all(|t| test_support::require_tool(t))
}

fn rootfs(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("usr/bin/app"), vec![7u8; 200_000]).unwrap();
    root
}

fn spec(rootfs: &Path, out: &Path) -> BuildSpec {
    BuildSpec {
        rootfs: RootfsSource::from_path(rootfs).unwrap(),
        identity: Identity {
            name: ImageName::default(),
            variant: "aws-dev".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: "2.0.0".parse().unwrap(),
            build_id: "feed".parse().unwrap(),
        },
        extras: Extras::default(),
        boot: BootOptions::default(),
        layout: LayoutSize::SmallTest,
        fs: FsKind::Ext4,
        populate: Populate::SetA,
        out_dir: out.to_path_buf(),
        epoch: jiff::Timestamp::from_second(1_600_000_000).unwrap(),
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn two_gib_both_sets_matches_the_fact_sheet() {
    if !tools(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let out = dir.path().join("out");
    let mut s = spec(&rootfs(dir.path()), &out);
    s.layout = LayoutSize::Gib(2);
    s.populate = Populate::BothSets;
    let d = os_image::build(&s, &NoReporter).unwrap();
    let disk = out.join(d.disk_image.as_ref().unwrap().file_name.clone());
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 2 << 30);
    // Sparse: only what was written takes space.
    let used = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&disk).unwrap()) * 512;
    assert!(used < 64 << 20, "disk image uses {used} bytes");

    let v = Command::new("sgdisk")
        .arg("-v")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains("No problems found"));

    // sfdisk --json as an independent reader: offsets, sizes, names and types of §4.1.
    let j = Command::new("sfdisk")
        .arg("--json")
        .arg(&disk)
        .output()
        .unwrap();
    assert!(j.status.success());
    let json: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let parts = json["partitiontable"]["partitions"].as_array().unwrap();
    let want = [
        ("BIOS-BOOT", 1, 4, "21686148-6449-6E6F-744E-656564454649"),
        ("EFI-SYSTEM", 5, 5, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
        (
            "BOTTLEROCKET-BOOT-A",
            10,
            40,
            "6B636168-7420-6568-2070-6C616E657421",
        ),
        (
            "BOTTLEROCKET-ROOT-A",
            50,
            920,
            "5526016A-1A97-4EA4-B39A-B7C8C6CA4502",
        ),
        (
            "BOTTLEROCKET-HASH-A",
            970,
            10,
            "598F10AF-C955-4456-6A99-7720068A6CEA",
        ),
        (
            "BOTTLEROCKET-RESERVED-A",
            980,
            25,
            "0C5D99A5-D331-4147-BAEF-08E2B855BDC9",
        ),
        (
            "EFI-BACKUP",
            1005,
            5,
            "B39CE39C-0A00-B4AB-2D11-F18F8237A21C",
        ),
        (
            "BOTTLEROCKET-BOOT-B",
            1010,
            40,
            "6B636168-7420-6568-2070-6C616E657421",
        ),
        (
            "BOTTLEROCKET-ROOT-B",
            1050,
            920,
            "5526016A-1A97-4EA4-B39A-B7C8C6CA4502",
        ),
        (
            "BOTTLEROCKET-HASH-B",
            1970,
            10,
            "598F10AF-C955-4456-6A99-7720068A6CEA",
        ),
        (
            "BOTTLEROCKET-RESERVED-B",
            1980,
            25,
            "0C5D99A5-D331-4147-BAEF-08E2B855BDC9",
        ),
        (
            "BOTTLEROCKET-PRIVATE",
            2005,
            41,
            "440408BB-EB0B-4328-A6E5-A29038FAD706",
        ),
        ("", 2046, 1, "626F7474-6C65-6474-6861-726D61726B73"),
    ];
    assert_eq!(parts.len(), want.len());
    for (p, (name, off, size, ty)) in parts.iter().zip(want) {
        assert_eq!(p["name"].as_str().unwrap_or(""), name);
        assert_eq!(p["start"].as_u64().unwrap(), off * 2048, "{name}");
        assert_eq!(p["size"].as_u64().unwrap(), size * 2048, "{name}");
        assert_eq!(p["type"].as_str().unwrap(), ty, "{name}");
    }
    assert_eq!(
        parts[2]["attrs"].as_str(),
        Some("GUID:48,56"),
        "BOOT-A: priority 1 + successful"
    );
    assert!(parts[7].get("attrs").is_none(), "BOOT-B: no flags");
    assert_eq!(
        parts[12]["uuid"].as_str().unwrap(),
        "69040874-417D-4E26-A764-7885F22007EA"
    );

    let report = os_image::verify_disk(&disk).unwrap();
    assert_eq!(report.layout, LayoutSize::Gib(2));
    for set in &report.sets {
        let SetContent::Verified {
            version, root_hash, ..
        } = &set.content
        else {
            panic!("{set:?}")
        };
        assert_eq!(version, "2.0.0");
        assert_eq!(root_hash, &d.verity.root_hash);
    }
}

#[test]
fn erofs_root_from_a_tar() {
    if !tools(&["mkfs.erofs", "fsck.erofs", "veritysetup"]) {
        return;
    }
    let dir = test_support::tempdir();
    let root = rootfs(dir.path());
    let tar_path = dir.path().join("rootfs.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        b.append_dir_all(".", &root).unwrap();
        b.finish().unwrap();
    }
    let out = dir.path().join("out");
    let mut s = spec(&tar_path, &out);
    s.fs = FsKind::Erofs;
    assert!(matches!(s.rootfs, RootfsSource::Tar(_)));
    let d = os_image::build(&s, &NoReporter).unwrap();
    assert_eq!(d.root_fs, "erofs");
    // Reproducible for erofs too.
    let mut again = spec(&tar_path, &dir.path().join("again"));
    again.fs = FsKind::Erofs;
    assert_eq!(os_image::build(&again, &NoReporter).unwrap(), d);
    // Bottlerocket's quirk kept: the root artifact is named .ext4.lz4 even for erofs.
    assert!(d.artifacts.root.file_name.ends_with("-root.ext4.lz4"));
    let disk = out.join(&d.disk_image.as_ref().unwrap().file_name);
    let report = os_image::verify_disk(&disk).unwrap();
    let SetContent::Verified {
        root_fs, version, ..
    } = &report.sets[0].content
    else {
        panic!()
    };
    assert_eq!((root_fs.as_str(), version.as_str()), ("erofs", "2.0.0"));
    // veritysetup accepts the erofs root and its tree as written into ROOT-A and HASH-A.
    let sp = signpost::Disk::open_read_only(&disk).unwrap();
    let a = sp.set(signpost::SetName::A).unwrap();
    let root_raw = dir.path().join("root.raw");
    let hash_raw = dir.path().join("hash.raw");
    let copy = |from: u64, len: u64, to: &Path| {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(&disk).unwrap();
        f.seek(std::io::SeekFrom::Start(from)).unwrap();
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf).unwrap();
        std::fs::write(to, buf).unwrap();
    };
    copy(a.root.first_byte, d.verity.data_blocks * 4096, &root_raw);
    copy(a.hash.first_byte, a.hash.len_bytes, &hash_raw);
    let o = Command::new("veritysetup")
        .arg("verify")
        .arg(&root_raw)
        .arg(&hash_raw)
        .arg(&d.verity.root_hash)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn root_too_big_leaves_no_output() {
    if !tools(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let root = rootfs(dir.path());
    // The small layout's ROOT is 92 MiB; 100 MiB of incompressible content cannot fit.
    let mut x: u64 = 88172645463325252;
    let big: Vec<u8> = (0..100 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(root.join("usr/bin/huge"), big).unwrap();
    let out = dir.path().join("out");
    let err = os_image::build(&spec(&root, &out), &NoReporter).unwrap_err();
    assert!(
        matches!(err, os_image::Error::ContentTooBig { what: "root filesystem", max_bytes, .. } if max_bytes == 92 << 20),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), os_image::ExitStatus::BadInput);
    assert!(
        err.to_string()
            .contains("does not fit its 92 MiB partition"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("--os-size-gib"));
    assert!(
        dir_names(&out).is_empty(),
        "left behind: {:?}",
        dir_names(&out)
    );
}

#[test]
fn bad_extras_and_unwritable_output() {
    if !tools(&[]) {
        return;
    }
    let dir = test_support::tempdir();
    let root = rootfs(dir.path());
    let out = dir.path().join("out");
    let bad_json = dir.path().join("root.json");
    std::fs::write(&bad_json, "{ not json").unwrap();
    let mut s = spec(&root, &out);
    s.extras.root_json = Some(bad_json.clone());
    let err = os_image::build(&s, &NoReporter).unwrap_err();
    assert!(
        matches!(&err, os_image::Error::InvalidRootJson { path, .. } if *path == bad_json),
        "{err:?}"
    );
    assert!(dir_names(&out).is_empty());

    let bad_toml = dir.path().join("updog.toml");
    std::fs::write(&bad_toml, "seed = = 1").unwrap();
    let mut s = spec(&root, &out);
    s.extras.updog_toml = Some(bad_toml);
    assert!(matches!(
        os_image::build(&s, &NoReporter).unwrap_err(),
        os_image::Error::InvalidUpdogToml { .. }
    ));

    // Output "directory" below a regular file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    let err = os_image::build(&spec(&root, &file.join("out")), &NoReporter).unwrap_err();
    assert!(matches!(err, os_image::Error::OutputDir { .. }), "{err:?}");
    assert_eq!(err.exit_code(), os_image::ExitStatus::Environment);

    // A missing input.
    assert!(matches!(
        RootfsSource::from_path(&dir.path().join("nope")).unwrap_err(),
        os_image::Error::RootfsSource { .. }
    ));
}
