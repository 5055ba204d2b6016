//! The post-write check: updog's dm-verity verifier against `veritysetup` (independent oracle),
//! and an update whose signed images are inconsistent is written but never marked valid.

mod common;

use common::*;
use std::os::unix::fs::FileExt;
use test_support::http::Server;

/// A disk whose set B holds `release` (written directly), for the verifier alone.
fn disk_with_b(dir: &std::path::Path, release: &Release) -> std::path::PathBuf {
    let disk = dir.join("verify.img");
    make_disk(&disk, 4, release);
    write_partition(&disk, BOOT_B, &std::fs::read(&release.boot_img).unwrap());
    write_partition(&disk, ROOT_B, &std::fs::read(&release.root_img).unwrap());
    write_partition(&disk, HASH_B, &std::fs::read(&release.hash_img).unwrap());
    disk
}

fn check(disk: &std::path::Path, boot_len: u64) -> updog::Result<()> {
    let (boot, _) = partition(disk, BOOT_B);
    let (root, root_len) = partition(disk, ROOT_B);
    let (hash, hash_len) = partition(disk, HASH_B);
    let f = std::fs::File::open(disk).unwrap();
    let params = updog::verity::boot_params_from_partition(&f, boot, boot_len)?;
    updog::verity::verify(disk, root, root_len, hash, hash_len, &params)
}

/// The first cause below updog's own message (what the dm-verity check found).
fn cause(e: &updog::Error) -> String {
    std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default()
}

#[test]
fn verifier_agrees_with_veritysetup() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    // 3 MiB = 768 blocks: two levels; 9 MiB... keep it small but with a partial last hash block.
    let rel = make_release(dir.path(), "1.0.0", 3 * MIB + 40 * 4096, &[]);
    let disk = disk_with_b(dir.path(), &rel);
    let boot_len = std::fs::metadata(&rel.boot_img).unwrap().len();
    check(&disk, boot_len).unwrap();
    assert!(veritysetup_verify_b(&disk, &rel, dir.path()));

    // One flipped bit in a data block: both refuse, updog names the block.
    let (root, _) = partition(&disk, ROOT_B);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&disk)
        .unwrap();
    let mut b = [0u8; 1];
    let at = root + 700 * 4096 + 123;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
    let e = check(&disk, boot_len).unwrap_err();
    assert!(
        cause(&e).starts_with("data block 700 is corrupt (byte offset 2867200)"),
        "{e}: {}",
        cause(&e)
    );
    assert_eq!(e.exit_code(), updog::ExitStatus::VerificationFailed);
    assert!(!veritysetup_verify_b(&disk, &rel, dir.path()));
    f.write_all_at(&b, at).unwrap();
    check(&disk, boot_len).unwrap();

    // A flipped byte in the hash tree (level 0, after the superblock and the top block).
    let (hash, _) = partition(&disk, HASH_B);
    let at = hash + 2 * 4096 + 64;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
    let e = check(&disk, boot_len).unwrap_err();
    assert!(
        cause(&e).starts_with("verity hash block "),
        "{e}: {}",
        cause(&e)
    );
    assert!(!veritysetup_verify_b(&disk, &rel, dir.path()));
    f.write_all_at(&b, at).unwrap();

    // A different salt in the superblock than in the boot partition's table.
    let at = hash + 88;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], at).unwrap();
    let e = check(&disk, boot_len).unwrap_err();
    assert!(
        cause(&e).starts_with("verity superblock salt is "),
        "{e}: {}",
        cause(&e)
    );
    assert_eq!(e.exit_code(), updog::ExitStatus::VerificationFailed);
}

#[test]
fn inconsistent_signed_images_are_written_but_never_marked_valid() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", MIB, &[]);
    let new = make_release(&path, "1.1.0", 2 * MIB, &[]);
    let other = make_release(&path, "1.2.0", 2 * MIB, &[]);
    // The publisher ships 1.1.0 with 1.2.0's hash tree: every signature and hash is right, the
    // set is not.
    let mut m = manifest(&[&old, &new]);
    let mut images = new.images();
    images.hash = other.hash_name.parse().unwrap();
    m.updates[1].images = images;
    let files = [old.target_files(), new.target_files(), other.target_files()].concat();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 4, "");
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(11), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("verification of the written"), "{stderr}");
    let b = host.flags(signpost::SetName::B);
    assert_eq!((b.priority, b.tries_left, b.successful), (0, 0, false));
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
    // Nothing is kept for resuming: the next run starts over.
    assert!(!host.root.join("var/lib/updog/resume/root.json").exists());
}
