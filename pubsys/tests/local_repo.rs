//! A local-directory repository as a new user meets it (issues 11 and 15): a failed publish
//! leaves no orphan targets and removes none it did not create; published files are readable
//! by a web server that is not us (0644 under the usual umask); a root without consistent
//! snapshots is refused before anything is written; versions are reported as written; a
//! release pulled back with `yank --max-version` stays pulled back through later publishes.

mod common;

use common::*;
use pubsys::keys::KeySpec;
use pubsys::policy::ExpirationPolicy;
use pubsys::repo::{Expiry, LoadOptions};
use pubsys::yank::{YankAction, YankRequest};
use pubsys::{Error, NoReporter};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use test_support::http::NobodyServer;
use update_metadata::{Manifest, Version};

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn manifest_of(fx: &Fixture) -> Manifest {
    let root = fx.root_bytes();
    rt().block_on(async {
        let repo = pubsys::repo::load_existing(&root, &fx.source(), &LoadOptions::default())
            .await
            .unwrap();
        pubsys::release::read_manifest(&repo, &fx.source())
            .await
            .unwrap()
    })
}

fn validates(fx: &Fixture) -> bool {
    rt().block_on(pubsys::validate::validate(
        &fx.root_bytes(),
        &fx.source(),
        &LoadOptions::default(),
        &NoReporter,
    ))
    .is_ok_and(|r| r.ok())
}

#[test]
fn a_failed_publish_removes_the_targets_it_created_and_only_those() {
    let fx = Fixture::new();
    let migration = fx.dir.path().join("migrate_v1.0.0_a.lz4");
    std::fs::write(&migration, b"a migration both releases ship").unwrap();
    let mut first = fx.request("1.0.0", now());
    first.extra_targets = vec![migration.clone()];
    fx.publish(&first).unwrap();
    let before = names(&fx.targets_dir());
    let timestamp = std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap();

    // 1.1.0 ships the same migration (already present: not this run's to remove) and fails
    // after every target is in place, when the snapshot is written: a directory squats on the
    // exact file name (a real failure, no injection).
    let later = pubsys::policy::whole_seconds(now() + jiff::SignedDuration::from_secs(1000));
    let version = later.as_second();
    let squatter = fx.metadata_dir().join(format!("{version}.snapshot.json"));
    std::fs::create_dir_all(squatter.join("occupied")).unwrap();
    let mut second = fx.request("1.1.0", later);
    second.extra_targets = vec![migration.clone()];
    let store = RecordingStore::new(fx.store(), None);
    let err = rt()
        .block_on(pubsys::release::publish(
            &second,
            &store,
            Arc::new(NoReporter),
        ))
        .unwrap_err();
    assert_eq!(err.exit_code(), 7, "{err:?}");
    let log = store.log.lock().unwrap().clone();
    // Every target was written before the failure...
    assert_eq!(
        log.iter().filter(|l| l.starts_with("target ")).count(),
        5,
        "{log:#?}"
    );
    // ...and the four this run created (three images, the new manifest) were removed; the
    // migration it found present was not.
    let removed: Vec<_> = log.iter().filter(|l| l.starts_with("remove ")).collect();
    assert_eq!(removed.len(), 4, "{log:#?}");
    assert!(
        removed.iter().all(|l| !l.ends_with("migrate_v1.0.0_a.lz4")),
        "{log:#?}"
    );
    assert_eq!(names(&fx.targets_dir()), before, "no orphan, nothing lost");
    assert_eq!(
        std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap(),
        timestamp
    );
    assert!(validates(&fx));

    // Once the cause is gone the same release publishes.
    std::fs::remove_dir_all(&squatter).unwrap();
    fx.publish(&second).unwrap();
    assert_eq!(manifest_of(&fx).updates.len(), 2);
}

#[test]
fn a_failure_while_copying_targets_leaves_no_orphan() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let before = names(&fx.targets_dir());
    // The third target fails (a full disk, say) after others were written by the writers.
    for fail_on in ["root.verity.lz4", "manifest.json"] {
        let store = RecordingStore::new(fx.store(), Some(fail_on));
        let err = rt()
            .block_on(pubsys::release::publish(
                &fx.request("1.1.0", now()),
                &store,
                Arc::new(NoReporter),
            ))
            .unwrap_err();
        assert_eq!(err.exit_code(), 7, "{err:?}");
        assert_eq!(names(&fx.targets_dir()), before, "failure on {fail_on}");
    }
    assert!(validates(&fx));
}

/// Runs the pubsys binary under `umask`.
fn pubsys_with_umask(umask: &str, args: &[&str]) -> std::process::Output {
    let script = format!("umask {umask}; exec \"$0\" \"$@\"");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_pubsys"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_file() && !e.file_name().to_string_lossy().starts_with('.') {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                m.permissions().mode() & 0o777,
            ));
        }
    }
    out
}

#[test]
fn published_files_are_readable_by_others_and_follow_the_umask() {
    for (umask, want) in [("022", 0o644), ("027", 0o640)] {
        let fx = Fixture::new();
        let images = fx.images("1.0.0", 4096);
        let out = pubsys_with_umask(
            umask,
            &[
                "repo",
                "--root-role-path",
                fx.root.to_str().unwrap(),
                "--key",
                fx.key.path.to_str().unwrap(),
                "--repo-dir",
                fx.repo_dir.to_str().unwrap(),
                "--variant",
                "aws-dev",
                "--arch",
                "x86_64",
                "--version",
                "1.0.0",
                "--boot",
                images.boot.to_str().unwrap(),
                "--root",
                images.root.to_str().unwrap(),
                "--hash",
                images.hash.to_str().unwrap(),
            ],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let metadata = modes(&fx.metadata_dir());
        let targets = modes(&fx.targets_dir());
        assert_eq!(metadata.len(), 4, "{metadata:?}");
        assert_eq!(targets.len(), 4, "{targets:?}");
        for (name, mode) in metadata.iter().chain(&targets) {
            assert_eq!(*mode, want, "{name} under umask {umask}: {mode:o}");
        }
    }
}

#[test]
fn a_root_without_consistent_snapshots_is_refused_before_anything_is_written() {
    let fx = Fixture::new();
    let signed: tough::schema::Signed<tough::schema::Root> =
        serde_json::from_slice(&fx.root_bytes()).unwrap();
    let mut root = signed.signed;
    root.consistent_snapshot = false;
    let plain = fx.dir.path().join("plain-root.json");
    std::fs::write(
        &plain,
        serde_json::to_vec_pretty(&test_support::tuf::sign_root(&root, &[&fx.key])).unwrap(),
    )
    .unwrap();
    let mut req = fx.request("1.0.0", now());
    req.trusted_root = plain.clone();
    let err = fx.publish(&req).unwrap_err();
    assert!(
        matches!(err, Error::NoConsistentSnapshots { .. }),
        "{err:?}"
    );
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("plain-root.json") && err.to_string().contains("consistent"),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("consistent snapshots"));
    assert!(!fx.repo_dir.exists() || names(&fx.targets_dir()).is_empty());
}

#[test]
fn versions_are_reported_as_written() {
    let fx = Fixture::new();
    let out = fx.publish(&fx.request("1.0.0", now())).unwrap();
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap())
            .unwrap();
    let written = ts["signed"]["version"].as_u64().unwrap();
    assert_eq!(out.committed.version, written);
    assert!(written > 1_700_000_000, "Unix seconds: {written}");
    let text = pubsys::commands::Outcome::Repo(out).to_text();
    assert!(
        text.contains(&format!("metadata version {written})")),
        "{text}"
    );
}

fn yank(fx: &Fixture, max: Version) {
    rt().block_on(pubsys::yank::yank(
        &YankRequest {
            trusted_root: fx.root.clone(),
            keys: vec![KeySpec::File(fx.key.path.clone())],
            source: None,
            variant: fx.variant.clone(),
            arch: fx.arch,
            action: YankAction::LowerMaxVersion(max),
            expiration: ExpirationPolicy::default(),
            expired: Expiry::Safe,
            datastore: None,
            now: now(),
        },
        &fx.store(),
        &NoReporter,
    ))
    .unwrap();
}

fn max_versions(fx: &Fixture) -> BTreeSet<String> {
    manifest_of(fx)
        .updates
        .iter()
        .map(|u| u.max_version.to_string())
        .collect()
}

#[test]
fn a_pull_back_sticks_until_an_operator_reinstates() {
    let fx = Fixture::new();
    for v in ["1.0.0", "1.1.0"] {
        fx.publish(&fx.request(v, now())).unwrap();
    }
    yank(&fx, Version::new(1, 0, 0));

    // An ordinary publish of 1.2.0 keeps max_version at 1.0.0 (Bottlerocket's rule would raise
    // it to 1.2.0 and re-offer 1.1.0), and says so.
    let out = fx.publish(&fx.request("1.2.0", now())).unwrap();
    assert_eq!(out.kept_pulled_back, ["1.1.0"]);
    assert_eq!(out.max_version, "1.0.0");
    assert_eq!(max_versions(&fx), BTreeSet::from(["1.0.0".to_owned()]));
    let text = pubsys::commands::Outcome::Repo(out).to_text();
    assert!(
        text.contains("1.1.0 pulled back") && text.contains("--reinstate-yanked"),
        "{text}"
    );

    // A hotfix below the pulled-back release raises the bound to itself only.
    let out = fx.publish(&fx.request("1.0.1", now())).unwrap();
    assert_eq!(out.max_version, "1.0.1");
    assert_eq!(out.kept_pulled_back, ["1.1.0", "1.2.0"]);
    assert_eq!(max_versions(&fx), BTreeSet::from(["1.0.1".to_owned()]));

    // The operator reinstates explicitly: Bottlerocket's rule again.
    let mut req = fx.request("1.3.0", now());
    req.reinstate_yanked = true;
    let out = fx.publish(&req).unwrap();
    assert!(out.kept_pulled_back.is_empty());
    assert_eq!(out.max_version, "1.3.0");
    assert_eq!(max_versions(&fx), BTreeSet::from(["1.3.0".to_owned()]));
    // With nothing pulled back, an ordinary publish raises max_version as Bottlerocket does.
    let out = fx.publish(&fx.request("1.4.0", now())).unwrap();
    assert_eq!(out.max_version, "1.4.0");
    assert!(out.kept_pulled_back.is_empty());
}

#[test]
fn a_web_server_running_as_nobody_serves_the_repository() {
    let fx = Fixture::new();
    std::fs::set_permissions(fx.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let images = fx.images("1.0.0", 4096);
    let out = pubsys_with_umask(
        "022",
        &[
            "repo",
            "--root-role-path",
            fx.root.to_str().unwrap(),
            "--key",
            fx.key.path.to_str().unwrap(),
            "--repo-dir",
            fx.repo_dir.to_str().unwrap(),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--version",
            "1.0.0",
            "--boot",
            images.boot.to_str().unwrap(),
            "--root",
            images.root.to_str().unwrap(),
            "--hash",
            images.hash.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let Some(server) = NobodyServer::start(&fx.repo_dir) else {
        return;
    };
    // The control: a file only its owner may read is "not found" to this server.
    let private = fx.repo_dir.join("private.json");
    std::fs::write(&private, b"{}").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(server.status("private.json"), 404);
    assert_eq!(server.status("metadata/aws-dev/x86_64/timestamp.json"), 200);
    // A TUF client reads the whole repository through it, every target verified.
    let out = Command::new(env!("CARGO_BIN_EXE_pubsys"))
        .args([
            "validate-repo",
            "--root-role-path",
            fx.root.to_str().unwrap(),
            "--metadata-url",
            &format!("{}metadata/aws-dev/x86_64/", server.url),
            "--targets-url",
            &format!("{}targets/", server.url),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": 4 targets,"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
