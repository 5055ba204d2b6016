//! The post-write check: updog's dm-verity verifier against `veritysetup` (independent oracle),
//! an update whose signed images are inconsistent is never marked valid, and the check behind the
//! writer (a changed download named as such, a resumed root read back before it goes on).

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
fn inconsistent_signed_images_are_never_marked_valid() {
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

/// Bytes no compressor can shrink, so `lz4` stores them as uncompressed blocks and a flipped
/// byte in the served target still decodes (into a wrong block).
fn incompressible(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len as usize);
    while (out.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Two releases whose new root (`new_mib` MiB) is incompressible, on a host with `extra` config.
fn incompressible_world(
    new_mib: u64,
    extra: &str,
) -> (tempfile::TempDir, Repo, Server, Release, Host) {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", MIB, &["-B4"]);
    let src = path.join("new-root.img");
    std::fs::write(&src, incompressible(new_mib * MIB, 7)).unwrap();
    let new = make_release_from(&path, "1.1.0", &src, &["-B4"]);
    repo.publish(
        &manifest(&[&old, &new]),
        &[old.target_files(), new.target_files()].concat(),
        RoleVersions::all(1),
    );
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, new_mib + 2, extra);
    (dir, repo, server, new, host)
}

fn assert_nothing_activated(host: &Host) {
    let b = host.flags(signpost::SetName::B);
    assert_eq!((b.priority, b.tries_left, b.successful), (0, 0, false));
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
}

/// The root is checked against the tree behind the writer, so a served root whose bytes were
/// changed (here: inside a stored block, so it still decodes) is found before the download ends;
/// the download still runs to its end, and the error names the cause: the received bytes do not
/// have the signed SHA-256 (not a bad disk block). Nothing is kept for resuming.
#[test]
fn a_changed_root_download_is_reported_as_that_not_as_a_bad_disk_block() {
    if !tools() {
        return;
    }
    let (_dir, repo, _server, new, host) = incompressible_world(3, "");
    let served = repo.target_file(&new.root_name);
    let mut bytes = std::fs::read(&served).unwrap();
    // Frame header (7 bytes), then block 0's size word: high bit set = stored uncompressed.
    let word = u32::from_le_bytes(bytes[7..11].try_into().unwrap());
    assert!(word & 0x8000_0000 != 0, "block 0 is not stored: {word:#x}");
    bytes[11 + 5000] ^= 0x40;
    std::fs::write(&served, &bytes).unwrap();
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(11), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: SHA-256 mismatch", new.root_name)),
        "{stderr}"
    );
    assert!(!stderr.contains("data block"), "{stderr}");
    assert_nothing_activated(&host);
    assert!(!host.root.join("var/lib/updog/resume/root.json").exists());
}

/// A resumed root image: the part an earlier run wrote is read back from the device and checked
/// against the tree before the run goes on, so a block changed on the disk between the runs is
/// found (exit 11, naming the block), nothing is activated, the records are dropped, and the next
/// run writes the image again and succeeds.
#[test]
fn a_resumed_root_is_read_back_and_checked_before_it_continues() {
    if !tools() {
        return;
    }
    let (dir, repo, server, new, host) = incompressible_world(6, "retries = 0\n");
    // The connection is cut after 4 MiB of the root target: the run stops with a checkpoint.
    server.set_fault(test_support::http::Fault::CutAfter {
        suffix: new.root_name.clone(),
        bytes: 4 * MIB,
        times: 1,
    });
    let out = host.updog(&["update"]);
    assert!(!out.status.success(), "{}", show(&out));
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(host.root.join("var/lib/updog/resume/root.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["complete"], false, "{record}");
    let produced = record["decoder"]["produced"].as_u64().unwrap();
    assert!(produced >= MIB, "{record}");
    // A block inside the part already written changes on the disk.
    let (root_b, _) = partition(&host.disk, ROOT_B);
    let bad_block = produced / 4096 / 2;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&host.disk)
        .unwrap();
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, root_b + bad_block * 4096 + 9)
        .unwrap();
    byte[0] ^= 0x10;
    f.write_all_at(&byte, root_b + bad_block * 4096 + 9)
        .unwrap();
    drop(f);

    host.set_config(&server.url(), "");
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(11), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resuming root image")
            && stderr.contains(&format!("data block {bad_block} is corrupt")),
        "{stderr}"
    );
    assert_nothing_activated(&host);
    assert!(!host.root.join("var/lib/updog/resume/root.json").exists());

    let out = host.updog(&["update"]);
    assert!(out.status.success(), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("root checked against the tree as it was written"),
        "{stderr}"
    );
    assert!(veritysetup_verify_b(&host.disk, &new, dir.path()));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
    drop(repo);
}

/// The check behind the writer at library level, on a real disk image: a watched
/// `DiskTarget` writing set B's root image in order is `Verified`; a wrong block written in order
/// is the error naming it; bytes written again after they were checked make it `NotProven` (the
/// separate pass must run), whatever they hold.
#[test]
fn the_check_behind_a_disk_target_follows_its_writes() {
    use std::io::{Seek, SeekFrom, Write};
    use updog::blockio::{DirectPolicy, DiskTarget};
    use updog::verity::{Checked, RootCheck};
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let release = make_release(dir.path(), "1.1.0", 3 * MIB, &[]);
    let disk = disk_with_b(dir.path(), &release);
    let set = signpost::Disk::open_read_only(&disk)
        .unwrap()
        .set(signpost::SetName::B)
        .unwrap();
    let boot_len = std::fs::metadata(&release.boot_img).unwrap().len();
    let image = std::fs::read(&release.root_img).unwrap();
    // Writes `pieces` (offset, bytes) through a watched target; returns the check's result.
    let run = |pieces: &[(u64, &[u8])]| -> updog::Result<Checked> {
        let check = RootCheck::prepare(&disk, &set, boot_len)?;
        let (tx, thread) = check.spawn(0)?;
        let mut target = DiskTarget::open(
            &disk,
            set.root.first_byte,
            set.root.len_bytes,
            DirectPolicy::from_env(),
        )?
        .watched(tx);
        for (at, bytes) in pieces {
            target.seek(SeekFrom::Start(*at)).unwrap();
            target.write_all(bytes).unwrap();
        }
        target.sync()?;
        drop(target);
        thread.join().unwrap()
    };
    let half = image.len() / 2;
    // In order, in two runs of writes (a new writer at the second).
    assert_eq!(
        run(&[(0, &image[..half]), (half as u64, &image[half..])]).unwrap(),
        Checked::Verified
    );
    // Block 100 rewritten after the whole image was checked: not proven here.
    let checked = run(&[
        (0, &image[..]),
        (100 * 4096, &image[100 * 4096..101 * 4096]),
    ])
    .unwrap();
    assert!(
        matches!(checked, Checked::NotProven(ref why) if why.contains("written again")),
        "{checked:?}"
    );
    // A wrong block in order: the error names it.
    let mut bad = image.clone();
    bad[300 * 4096 + 1] ^= 1;
    let e = run(&[(0, &bad[..])]).unwrap_err();
    assert!(
        cause(&e).contains("data block 300 is corrupt"),
        "{e}: {}",
        cause(&e)
    );
    // Put the right bytes back; the image stops short: not proven (the writer stopped early).
    let checked = run(&[(0, &image[..half])]).unwrap();
    assert!(matches!(checked, Checked::NotProven(_)), "{checked:?}");
}
