//! The root-of-trust ceremony end to end: keys, thresholds, signing on separate copies,
//! merging, verification, rotation walked by a real tough client, and bad input.

mod common;

use common::*;
use repo_tools::Outcome;
use repo_tools::error::{Error, ExitStatus};
use tough::schema::{Root, Signed};

fn load(p: &std::path::Path) -> Signed<Root> {
    repo_tools::root::load(p).unwrap()
}

async fn gen_key(dir: &std::path::Path, name: &str, kind: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    match cli(&["root", "gen-key", s(&path), "--type", kind])
        .await
        .unwrap()
    {
        Outcome::KeyGenerated {
            key_id,
            public_path,
            ..
        } => {
            assert!(public_path.exists());
            (path, key_id)
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Builds an unsigned root: `root_keys` hold root with `threshold`; `signing` holds the others.
async fn edited_root(
    path: &std::path::Path,
    root_keys: &[&std::path::Path],
    threshold: &str,
    signing: &std::path::Path,
) {
    cli(&["root", "init", s(path), "--expires", "in 52 weeks"])
        .await
        .unwrap();
    for k in root_keys {
        cli(&["root", "add-key", s(path), "--key", s(k), "--role", "root"])
            .await
            .unwrap();
    }
    cli(&["root", "set-threshold", s(path), "root", threshold])
        .await
        .unwrap();
    cli(&[
        "root",
        "add-key",
        s(path),
        "--key",
        s(signing),
        "--role",
        "snapshot",
        "--role",
        "targets",
        "--role",
        "timestamp",
    ])
    .await
    .unwrap();
}

#[tokio::test]
async fn three_keys_threshold_two_signed_on_separate_copies_and_merged() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let (k1, id1) = gen_key(d, "k1.pk8", "ed25519").await;
    let (k2, id2) = gen_key(d, "k2.pk8", "ecdsa-p256").await;
    let (k3, _) = gen_key(d, "k3.pem", "rsa").await;
    let (ks, _) = gen_key(d, "signing.pk8", "ed25519").await;
    let root = d.join("root.json");
    // Public key files are what holders send the coordinator.
    let pub1 = format!("{}.pub", s(&k1));
    let pub2 = format!("{}.pub", s(&k2));
    let pub3 = format!("{}.pub", s(&k3));
    edited_root(
        &root,
        &[pub1.as_ref(), pub2.as_ref(), pub3.as_ref()],
        "2",
        &ks,
    )
    .await;

    // Each holder signs their own copy on their own "machine".
    let a = d.join("machine-a").join("root.json");
    let b = d.join("machine-b").join("root.json");
    for copy in [&a, &b] {
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        std::fs::copy(&root, copy).unwrap();
    }
    match cli(&["root", "sign", s(&a), "--key", s(&k1), "--ignore-threshold"])
        .await
        .unwrap()
    {
        Outcome::RootSigned { report, .. } => {
            assert!(!report.complete);
            assert_eq!(report.this.valid, vec![id1.clone()]);
        }
        other => panic!("{other:?}"),
    }
    cli(&["root", "sign", s(&b), "--key", s(&k2), "--ignore-threshold"])
        .await
        .unwrap();

    // One copy alone does not verify.
    match cli(&["root", "verify", s(&a)]).await.unwrap() {
        Outcome::RootVerified { report, .. } => {
            assert!(!report.ok());
            assert_eq!(report.this.valid.len(), 1);
        }
        other => panic!("{other:?}"),
    }

    let merged = d.join("merged.json");
    match cli(&["root", "merge-signatures", s(&a), s(&b), "-o", s(&merged)])
        .await
        .unwrap()
    {
        Outcome::RootMerged { report, .. } => {
            assert!(report.complete);
            assert_eq!(report.signatures, 2);
        }
        other => panic!("{other:?}"),
    }
    let outcome = cli(&["root", "verify", s(&merged)]).await.unwrap();
    assert_eq!(outcome.exit_status(), ExitStatus::Success);
    let m = load(&merged);
    let mut ids: Vec<String> = m.signatures.iter().map(|s| hex::encode(&s.keyid)).collect();
    ids.sort();
    let mut want = vec![id1, id2];
    want.sort();
    assert_eq!(ids, want);
    // tough itself accepts the merged root's threshold.
    m.signed.verify_role(&m).unwrap();

    // A repository under the merged root loads in tough.
    let repo = Repo {
        dir: d.join("repo"),
        root: merged.clone(),
        keys: vec![ks],
    };
    repo.add_files(&[("a.txt", b"hello")]);
    repo.publish(1).await;
    assert_eq!(
        load_all(&merged, repo.metadata_url(), repo.targets_url()).await,
        vec!["a.txt"]
    );
}

#[tokio::test]
async fn threshold_not_met_is_refused_and_nothing_is_written() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let (k1, _) = gen_key(d, "k1.pk8", "ed25519").await;
    let (k2, _) = gen_key(d, "k2.pk8", "ed25519").await;
    let root = d.join("root.json");
    edited_root(&root, &[&k1, &k2], "2", &k1).await;
    let before = std::fs::read(&root).unwrap();
    let err = cli(&["root", "sign", s(&root), "--key", s(&k1)])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ThresholdNotMet {
                valid: 1,
                threshold: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.exit_status(), ExitStatus::Negative);
    assert!(
        err.to_string().contains("1 valid signature(s), 2 required"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&root).unwrap(),
        before,
        "root changed despite the refusal"
    );

    // A threshold larger than the key count cannot be signed at all.
    cli(&["root", "set-threshold", s(&root), "root", "3"])
        .await
        .unwrap();
    let err = cli(&["root", "sign", s(&root), "--key", s(&k1), "--key", s(&k2)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("can never be signed"), "{err}");

    // tough refuses a root below threshold too (independent check).
    cli(&["root", "set-threshold", s(&root), "root", "2"])
        .await
        .unwrap();
    cli(&[
        "root",
        "sign",
        s(&root),
        "--key",
        s(&k1),
        "--ignore-threshold",
    ])
    .await
    .unwrap();
    let r = load(&root);
    assert!(r.signed.verify_role(&r).is_err());
}

#[tokio::test]
async fn rotation_one_to_two_is_walked_by_tough_trusting_only_root_one() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let (old, _) = gen_key(d, "old.pk8", "ed25519").await;
    let (new, new_id) = gen_key(d, "new.pk8", "ed25519").await;
    let root1 = d.join("1.root.json");
    edited_root(&root1, &[&old], "1", &old).await;
    cli(&["root", "sign", s(&root1), "--key", s(&old)])
        .await
        .unwrap();

    // Repository v1 under root 1.
    let repo = Repo {
        dir: d.join("repo"),
        root: root1.clone(),
        keys: vec![old.clone()],
    };
    repo.add_files(&[("a.txt", b"one")]);
    repo.publish(1).await;

    // Root 2: the new key replaces the old one everywhere.
    let root2 = d.join("2.root.json");
    std::fs::copy(&root1, &root2).unwrap();
    cli(&["root", "bump-version", s(&root2)]).await.unwrap();
    cli(&[
        "root",
        "add-key",
        s(&root2),
        "--key",
        s(&new),
        "--role",
        "root",
        "--role",
        "snapshot",
        "--role",
        "targets",
        "--role",
        "timestamp",
    ])
    .await
    .unwrap();
    let old_id =
        repo_tools::keys::key_id_hex(&repo_tools::keys::load_signer(&old).unwrap().public).unwrap();
    cli(&["root", "remove-key", s(&root2), &old_id])
        .await
        .unwrap();

    // Signed by the new key only: the rotation rule is not met.
    let lone = d.join("lone.json");
    std::fs::copy(&root2, &lone).unwrap();
    cli(&["root", "sign", s(&lone), "--key", s(&new)])
        .await
        .unwrap();
    match cli(&["root", "verify", s(&lone), "--previous", s(&root1)])
        .await
        .unwrap()
    {
        Outcome::RootVerified { report, .. } => {
            assert!(!report.ok());
            assert!(
                report
                    .problems
                    .iter()
                    .any(|p| p.to_string().contains("previous root's root keys")),
                "{:?}",
                report.problems
            );
        }
        other => panic!("{other:?}"),
    }
    // Signing with the old key requires naming the old root.
    let err = cli(&["root", "sign", s(&root2), "--key", s(&old)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotARootKey { .. }), "{err}");

    cli(&[
        "root",
        "sign",
        s(&root2),
        "--key",
        s(&new),
        "--key",
        s(&old),
        "--cross-sign",
        s(&root1),
    ])
    .await
    .unwrap();
    let outcome = cli(&["root", "verify", s(&root2), "--previous", s(&root1)])
        .await
        .unwrap();
    assert_eq!(outcome.exit_status(), ExitStatus::Success, "{outcome:?}");

    // Publish under root 2 with the new key; serve 1.root.json and 2.root.json.
    let repo2 = Repo {
        dir: repo.dir.clone(),
        root: root2.clone(),
        keys: vec![new.clone()],
    };
    repo2.add_files(&[("b.txt", b"two")]);
    repo2.publish(2).await;
    std::fs::copy(&root1, repo.metadata().join("1.root.json")).unwrap();

    // A client that only trusts root 1 walks to root 2.
    let bytes = std::fs::read(&root1).unwrap();
    let loaded = tough::RepositoryLoader::new(&bytes, repo.metadata_url(), repo.targets_url())
        .load()
        .await
        .unwrap();
    assert_eq!(loaded.root().signed.version.get(), 2);
    assert!(
        loaded
            .root()
            .signed
            .keys
            .keys()
            .any(|k| hex::encode(k) == new_id)
    );
    assert_eq!(
        load_all(&root1, repo.metadata_url(), repo.targets_url()).await,
        vec!["a.txt", "b.txt"]
    );

    // And mirroring with root 1 as the trust anchor verifies the chain and copies both roots.
    let mirror = d.join("mirror");
    let out = cli(&[
        "mirror",
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&root1),
        "--out",
        s(&mirror),
    ])
    .await
    .unwrap();
    let Outcome::Mirrored(report) = out else {
        panic!()
    };
    assert_eq!(report.root_version, 2);
    assert!(
        mirror.join("metadata/1.root.json").exists()
            && mirror.join("metadata/2.root.json").exists()
    );

    // Without the cross-signature, tough refuses to walk.
    std::fs::copy(&lone, repo.metadata().join("2.root.json")).unwrap();
    let err = tough::RepositoryLoader::new(&bytes, repo.metadata_url(), repo.targets_url())
        .load()
        .await
        .unwrap_err();
    assert!(chain(&err).contains("root"), "{}", chain(&err));
}

#[tokio::test]
async fn ecdsa_and_rsa_keys_sign_repositories_tough_reads() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let (ec, _) = gen_key(d, "ec.pk8", "ecdsa-p256").await;
    let (rsa, _) = gen_key(d, "rsa.pem", "rsa").await;
    assert!(
        std::fs::read_to_string(&rsa)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    let root = d.join("root.json");
    cli(&["root", "init", s(&root)]).await.unwrap();
    for role in ["root", "snapshot", "targets", "timestamp"] {
        cli(&[
            "root",
            "add-key",
            s(&root),
            "--key",
            s(&ec),
            "--key",
            s(&rsa),
            "--role",
            role,
        ])
        .await
        .unwrap();
        cli(&["root", "set-threshold", s(&root), role, "2"])
            .await
            .unwrap();
    }
    cli(&["root", "sign", s(&root), "--key", s(&ec), "--key", s(&rsa)])
        .await
        .unwrap();
    let repo = Repo {
        dir: d.join("repo"),
        root: root.clone(),
        keys: vec![ec, rsa],
    };
    repo.add_files(&[("x.bin", &[7u8; 1000])]);
    repo.publish(1).await;
    assert_eq!(
        load_all(&root, repo.metadata_url(), repo.targets_url()).await,
        vec!["x.bin"]
    );
}

#[tokio::test]
async fn expiry_is_whole_seconds_in_the_file() {
    let dir = test_support::tempdir();
    let root = dir.path().join("root.json");
    // "now" has nanoseconds; the written expiry must not.
    cli(&["root", "init", s(&root), "--expires", "in 3 days"])
        .await
        .unwrap();
    let text = std::fs::read_to_string(&root).unwrap();
    assert!(
        text.contains("\"expires\": \"2030-06-04T12:00:00Z\""),
        "{text}"
    );
    cli(&["root", "expire", s(&root), "2031-01-02T03:04:05.678Z"])
        .await
        .unwrap();
    let text = std::fs::read_to_string(&root).unwrap();
    assert!(
        text.contains("\"expires\": \"2031-01-02T03:04:05Z\""),
        "{text}"
    );
    let err = cli(&["root", "expire", s(&root), "next tuesday"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TimeParse { .. }), "{err}");
}

#[tokio::test]
async fn expired_root_is_reported_and_not_signed() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let (k, _) = gen_key(d, "k.pk8", "ed25519").await;
    let root = d.join("root.json");
    edited_root(&root, &[&k], "1", &k).await;
    // Before the (fixed) now of these tests.
    cli(&["root", "expire", s(&root), "2030-01-01T00:00:00Z"])
        .await
        .unwrap();
    let err = cli(&["root", "sign", s(&root), "--key", s(&k)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RootExpired { .. }), "{err}");
    assert!(err.hint().unwrap().contains("expire"));
    cli(&[
        "root",
        "sign",
        s(&root),
        "--key",
        s(&k),
        "--ignore-threshold",
    ])
    .await
    .unwrap_err();
    match cli(&["root", "verify", s(&root)]).await.unwrap() {
        Outcome::RootVerified { report, .. } => {
            assert!(
                report
                    .problems
                    .iter()
                    .any(|p| p.to_string() == "expired at 2030-01-01T00:00:00Z"),
                "{:?}",
                report.problems
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_input_gives_clear_errors() {
    let dir = test_support::tempdir();
    let d = dir.path();
    let root = d.join("root.json");
    cli(&["root", "init", s(&root)]).await.unwrap();
    // init never overwrites.
    let err = cli(&["root", "init", s(&root)]).await.unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    // A key file in the wrong format.
    let bad = d.join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = cli(&["root", "sign", s(&root), "--key", s(&bad)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ParsePrivateKey { .. }), "{err}");
    assert!(err.to_string().contains("bad.pem"));
    let err = cli(&[
        "root",
        "add-key",
        s(&root),
        "--key",
        "not-a-key",
        "--role",
        "root",
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ParsePublicKey { .. }), "{err}");
    // Removing a key that is not there.
    let err = cli(&["root", "remove-key", s(&root), "00ff"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyNotInRoot { .. }), "{err}");
    // gen-key never overwrites.
    let (k, _) = gen_key(d, "k.pk8", "ed25519").await;
    let err = cli(&["root", "gen-key", s(&k)]).await.unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{err}");
    // Merging different roots.
    let other = d.join("other.json");
    std::fs::copy(&root, &other).unwrap();
    cli(&["root", "bump-version", s(&other)]).await.unwrap();
    let err = cli(&[
        "root",
        "merge-signatures",
        s(&root),
        s(&other),
        "-o",
        s(&d.join("m.json")),
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::MergeMismatch { .. }), "{err}");
    // A tampered signature is refused by merge, naming the file and key.
    cli(&[
        "root",
        "add-key",
        s(&root),
        "--key",
        s(&k),
        "--role",
        "root",
        "--role",
        "snapshot",
        "--role",
        "targets",
        "--role",
        "timestamp",
    ])
    .await
    .unwrap();
    cli(&["root", "sign", s(&root), "--key", s(&k)])
        .await
        .unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    v["signatures"][0]["sig"] = serde_json::Value::String(flipped);
    let tampered = d.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let err = cli(&[
        "root",
        "merge-signatures",
        s(&tampered),
        "-o",
        s(&d.join("m.json")),
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    assert!(err.to_string().contains("tampered.json"), "{err}");
}

#[test]
fn binary_renders_errors_and_exit_codes() {
    let dir = test_support::tempdir();
    let root = dir.path().join("root.json");
    let bin = env!("CARGO_BIN_EXE_repo-tools");
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    assert!(run(&["root", "init", s(&root)]).status.success());
    // An unsigned root: verify answers "no" with exit 1.
    let out = run(&["root", "verify", s(&root)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOT VALID"));
    // JSON output.
    let out = run(&["--json", "root", "verify", s(&root)]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["outcome"], "root-verified");
    // A usage error: exit 2, error/hint lines.
    let out = run(&["root", "init", s(&root)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("hint: "),
        "{err}"
    );
    // Docs.
    let docs = dir.path().join("docs");
    assert!(run(&["generate-docs", "--out", s(&docs)]).status.success());
    for f in [
        "repo-tools.1",
        "repo-tools-root-sign.1",
        "repo-tools-mirror.1",
        "repo-tools.bash",
        "_repo-tools",
        "repo-tools.fish",
    ] {
        assert!(docs.join(f).exists(), "{f} missing");
    }
}
