//! Offline media: export a verified mirror to one tar file and import it on the far side,
//! verifying everything against the trusted root; tampered, incomplete or hostile archives are
//! refused with an error naming the file, and nothing is installed.

mod common;

use aws_lc_rs::digest::{SHA256, digest};
use common::*;
use repo_tools::Outcome;
use repo_tools::archive::{INDEX_FILE, Index, IndexEntry};
use repo_tools::error::{Error, ExitStatus};
use std::path::{Path, PathBuf};

/// A mirrored repository (file://) with a few targets, in `dir/mirror`.
async fn mirrored(dir: &Path) -> (Repo, PathBuf) {
    let repo = Repo::simple(&dir.join("src"));
    repo.add_files(&[
        ("a.bin", &[1u8; 3000]),
        ("b.bin", b"bee"),
        ("c.bin", &[3u8; 10]),
    ]);
    repo.publish(1).await;
    let out = dir.join("mirror");
    cli(&[
        "mirror",
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ])
    .await
    .unwrap();
    (repo, out)
}

async fn import(archive: &Path, root: &Path, out: &Path) -> repo_tools::Result<Outcome> {
    cli(&["import", s(archive), "--root", s(root), "--out", s(out)]).await
}

/// Writes a tar of `files` (path, bytes) plus an index that matches them exactly (so only the
/// TUF verification can catch what was changed). `raw_extra` entries are appended with their
/// path bytes written verbatim (for hostile names the tar crate would refuse).
fn pack(archive: &Path, files: &[(String, Vec<u8>)], raw_extra: &[(&str, &[u8])]) {
    let mut b = tar::Builder::new(std::fs::File::create(archive).unwrap());
    let mut index = Index {
        format: 1,
        files: Vec::new(),
    };
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, bytes.as_slice()).unwrap();
        index.files.push(IndexEntry {
            path: path.clone(),
            length: bytes.len() as u64,
            sha256: hex::encode(digest(&SHA256, bytes)),
        });
    }
    for (path, bytes) in raw_extra {
        let (path, kind) = match path.strip_prefix("symlink:") {
            Some(p) => (p, tar::EntryType::Symlink),
            None => (*path, tar::EntryType::Regular),
        };
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        if kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        b.append(&h, *bytes).unwrap();
        index.files.push(IndexEntry {
            path: (*path).to_owned(),
            length: bytes.len() as u64,
            sha256: hex::encode(digest(&SHA256, bytes)),
        });
    }
    let idx = serde_json::to_vec(&index).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(idx.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, INDEX_FILE, idx.as_slice()).unwrap();
    b.finish().unwrap();
}

fn mirror_files(mirror: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(mirror)
        .into_iter()
        .map(|f| (f.clone(), std::fs::read(mirror.join(&f)).unwrap()))
        .collect()
}

#[tokio::test]
async fn export_import_round_trip_is_readable_by_tough() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let archive = dir.path().join("media").join("repo.tar");
    std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
    let Outcome::Exported(e) = cli(&["export", s(&mirror), "-o", s(&archive)])
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(e.files, files_under(&mirror).len());

    let far = dir.path().join("far-side").join("repo");
    let Outcome::Imported(r) = import(&archive, &repo.root, &far).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.verified.target_files, 3);
    assert_eq!(files_under(&far), files_under(&mirror));
    let m = url::Url::from_directory_path(far.join("metadata")).unwrap();
    let t = url::Url::from_directory_path(far.join("targets")).unwrap();
    assert_eq!(
        load_all(&repo.root, m, t).await,
        vec!["a.bin", "b.bin", "c.bin"]
    );
    // No staging leftovers next to the destination.
    let siblings: Vec<_> = std::fs::read_dir(far.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(siblings.len(), 1, "{siblings:?}");

    // Importing again refuses to overwrite; --replace swaps the verified tree in.
    let err = import(&archive, &repo.root, &far).await.unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    let Outcome::Imported(r) = cli(&[
        "import",
        s(&archive),
        "--root",
        s(&repo.root),
        "--out",
        s(&far),
        "--replace",
    ])
    .await
    .unwrap() else {
        panic!()
    };
    assert!(r.replaced);
}

#[tokio::test]
async fn one_flipped_byte_in_the_archive_is_refused_naming_the_file() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let archive = dir.path().join("repo.tar");
    cli(&["export", s(&mirror), "-o", s(&archive)])
        .await
        .unwrap();
    // Flip one byte inside a.bin's data (3000 bytes of 0x01; find the run).
    let mut bytes = std::fs::read(&archive).unwrap();
    let pos = bytes
        .windows(3000)
        .position(|w| w.iter().all(|&b| b == 1))
        .unwrap();
    bytes[pos + 1234] ^= 0x80;
    std::fs::write(&archive, bytes).unwrap();
    let out = dir.path().join("far");
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ArchiveEntry { .. }), "{}", chain(&err));
    assert!(err.to_string().contains(".a.bin"), "{err}");
    assert_eq!(err.exit_status(), ExitStatus::Untrusted);
    assert!(!out.exists());
}

#[tokio::test]
async fn tampered_target_with_a_matching_index_is_caught_by_tuf() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let mut files = mirror_files(&mirror);
    let (name, bytes) = files
        .iter_mut()
        .find(|(n, _)| n.ends_with(".b.bin"))
        .unwrap();
    bytes[0] ^= 0x01;
    let name = name.clone();
    let archive = dir.path().join("evil.tar");
    pack(&archive, &files, &[]);
    let out = dir.path().join("far");
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(
        matches!(err, Error::VerifyTarget { ref path, .. } if path == &name),
        "{}",
        chain(&err)
    );
    assert!(
        chain(&err).to_lowercase().contains("hash mismatch"),
        "{}",
        chain(&err)
    );
    assert_eq!(err.exit_status(), ExitStatus::Untrusted);
    assert!(!out.exists());
}

#[tokio::test]
async fn tampered_metadata_signature_is_refused_naming_the_role() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let mut files = mirror_files(&mirror);
    let (_, ts) = files
        .iter_mut()
        .find(|(n, _)| n == "metadata/timestamp.json")
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(ts).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &sig[..10],
        if &sig[10..11] == "0" { "1" } else { "0" }
    ) + &sig[11..];
    v["signatures"][0]["sig"] = flipped.into();
    *ts = serde_json::to_vec_pretty(&v).unwrap();
    let archive = dir.path().join("evil.tar");
    pack(&archive, &files, &[]);
    let out = dir.path().join("far");
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Repo {
                source: abos_repo_core::Error::Load { .. }
            }
        ),
        "{}",
        chain(&err)
    );
    assert!(chain(&err).contains("timestamp"), "{}", chain(&err));
    assert_eq!(err.exit_status(), ExitStatus::Untrusted);
    assert!(!out.exists());
}

#[tokio::test]
async fn path_traversal_entry_is_refused() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let files = mirror_files(&mirror);
    let archive = dir.path().join("evil.tar");
    pack(&archive, &files, &[("../../escaped.txt", b"gotcha")]);
    let out = dir.path().join("a").join("far");
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ArchiveEntry { .. }), "{err}");
    assert!(
        err.to_string().contains("../../escaped.txt") && err.to_string().contains("traversal"),
        "{err}"
    );
    assert!(!dir.path().join("escaped.txt").exists());
    assert!(!out.exists());
    // A symbolic link is refused whatever it points at.
    let archive = dir.path().join("link.tar");
    pack(&archive, &files, &[("symlink:targets/link", b"")]);
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ArchiveEntry { .. }), "{err}");
    assert!(
        err.to_string().contains("targets/link") && err.to_string().contains("Symlink"),
        "{err}"
    );
    // An extra file inside the tree that no repository lists is refused too.
    let archive = dir.path().join("extra.tar");
    let mut with_extra = files.clone();
    with_extra.push(("targets/surprise.bin".to_owned(), b"?".to_vec()));
    pack(&archive, &with_extra, &[]);
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::UnexpectedFile { .. }), "{err}");
    assert!(err.to_string().contains("targets/surprise.bin"), "{err}");
}

#[tokio::test]
async fn missing_file_and_wrong_root_are_refused() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let files: Vec<_> = mirror_files(&mirror)
        .into_iter()
        .filter(|(n, _)| !n.ends_with(".c.bin"))
        .collect();
    let archive = dir.path().join("short.tar");
    pack(&archive, &files, &[]);
    let out = dir.path().join("far");
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    assert!(err.to_string().contains("c.bin"), "{err}");

    let good = dir.path().join("good.tar");
    cli(&["export", s(&mirror), "-o", s(&good)]).await.unwrap();
    let other = Repo::simple(&dir.path().join("other"));
    let err = import(&good, &other.root, &out).await.unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Untrusted, "{}", chain(&err));
    assert!(!out.exists());
}

/// Every text an error shows for a hostile archive: escaped (no control byte reaches the
/// terminal) and bounded (a huge name or index cannot flood it).
fn assert_tame(err: &Error) -> String {
    let text = chain(err);
    assert!(
        !text.chars().any(|c| c.is_control()),
        "control character in: {text:?}"
    );
    assert!(text.len() < 1000, "{} bytes: {text}", text.len());
    text
}

#[tokio::test]
async fn hostile_names_and_indexes_are_shown_escaped_and_bounded() {
    let dir = test_support::tempdir();
    let (repo, mirror) = mirrored(dir.path()).await;
    let files = mirror_files(&mirror);
    let out = dir.path().join("far");

    // A name carrying terminal escapes (clear screen, set title) and a newline.
    let archive = dir.path().join("escapes.tar");
    pack(
        &archive,
        &files,
        &[("targets/\x1b[2J\x1b]0;pwned\x07x\nerror: fake", b"x")],
    );
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ArchiveEntry { .. }), "{err}");
    let text = assert_tame(&err);
    assert!(
        text.contains("\\u{1b}[2J") && text.contains("control characters"),
        "{text}"
    );

    // A 5000-character name (GNU long name).
    let archive = dir.path().join("long.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let name = format!("targets/\x1b[31m{}", "A".repeat(5000));
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, &name, &b"x"[..]).unwrap();
        b.finish().unwrap();
    }
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    let text = assert_tame(&err);
    assert!(text.contains("more characters"), "{text}");

    // A header whose size field is terminal escapes (the tar reader quotes it).
    let archive = dir.path().join("header.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"targets/x");
        h.as_old_mut().size = *b"\x1b[2J\x1b[31m\x07\nZ";
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, &b""[..]).unwrap();
        b.finish().unwrap();
    }
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ReadArchive { .. }), "{err}");
    assert_tame(&err);

    // An index that is not an index: a huge string where the file list belongs.
    let archive = dir.path().join("index.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let idx = format!(
            "{{\"format\":1,\"files\":\"\\u001b[2J{}\"}}",
            "B".repeat(100_000)
        );
        let mut h = tar::Header::new_gnu();
        h.set_size(idx.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, INDEX_FILE, idx.as_bytes()).unwrap();
        b.finish().unwrap();
    }
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::ParseIndex { .. }), "{err}");
    let text = assert_tame(&err);
    assert!(text.contains("more characters"), "{text}");

    // An index listing a hostile name the archive lacks.
    let archive = dir.path().join("listed.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let index = Index {
            format: 1,
            files: vec![IndexEntry {
                path: format!("targets/\x1b[2J{}", "C".repeat(3000)),
                length: 1,
                sha256: "\x1b[2J".repeat(500),
            }],
        };
        let idx = serde_json::to_vec(&index).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(idx.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, INDEX_FILE, idx.as_slice()).unwrap();
        b.finish().unwrap();
    }
    let err = import(&archive, &repo.root, &out).await.unwrap_err();
    assert!(matches!(err, Error::MissingFile { .. }), "{err}");
    assert_tame(&err);
    assert!(!out.exists());
}
