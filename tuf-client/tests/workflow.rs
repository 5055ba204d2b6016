//! §5.1–§5.6.6 of the TUF client workflow, one named test per rule, against repositories built
//! and signed at test time and served over HTTP on 127.0.0.1:0 (and `file://`).

mod support;

use serde_json::json;
use support::*;
use test_support::http::{Fault, Server};
use tuf_client::{Error, TimestampUpdate, TransportErrorKind};

const PAST: &str = "2020-01-01T00:00:00Z";

fn setup() -> (Repo, Server, tempfile::TempDir) {
    let repo = Repo::new();
    let server = Server::serve_dir(repo.dir.path());
    (repo, server, test_support::tempdir())
}

fn stored(store: &tempfile::TempDir, file: &str) -> Vec<u8> {
    std::fs::read(store.path().join(file)).unwrap()
}

// §5.1 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_1_clock_behind_last_cycle_within_tolerance_is_accepted() {
    let (repo, server, store) = setup();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    let earlier = now() - jiff::SignedDuration::from_secs(4 * 60);
    up.refresh(earlier).await.unwrap();
    let recorded = String::from_utf8(stored(&store, "last-cycle-time")).unwrap();
    assert_eq!(
        recorded.trim(),
        now().to_string(),
        "the recorded time never goes back"
    );
}

#[tokio::test]
async fn spec_5_1_clock_behind_last_cycle_beyond_tolerance_is_refused() {
    let (repo, server, store) = setup();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    clear_fetched();
    let much_earlier = now() - jiff::SignedDuration::from_secs(6 * 60);
    let err = up.refresh(much_earlier).await.unwrap_err();
    assert!(matches!(err, Error::ClockWentBackwards { .. }), "{err}");
    assert!(fetched_paths().is_empty(), "refused before any download");
    assert!(matches!(
        up.get_target_info("x").await.unwrap_err(),
        Error::NotRefreshed
    ));
    // The tolerance is configurable.
    let mut strict = http_updater_with(&server, &repo, store.path(), |c| {
        c.clock_tolerance = std::time::Duration::ZERO;
    });
    let err = strict
        .refresh(now() - jiff::SignedDuration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ClockWentBackwards { .. }), "{err}");
}

#[tokio::test]
async fn spec_5_1_one_fixed_start_time_per_cycle_is_used_for_lazily_fetched_roles() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.add_target("a", "x", b"x");
    // Role a expires one second after the cycle's start time.
    repo.roles.get_mut("a").unwrap().expires = "2030-06-01T12:00:01Z".into();
    repo.publish();
    let server = Server::serve_dir(repo.dir.path());
    let store = test_support::tempdir();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    // Looked up "later" in wall-clock terms: the cycle's fixed time still applies.
    assert!(up.get_target_info("x").await.unwrap().is_some());
    let store2 = test_support::tempdir();
    let mut up = http_updater(&server, &repo, store2.path());
    up.refresh(now() + jiff::SignedDuration::from_secs(2))
        .await
        .unwrap();
    let err = up.get_target_info("x").await.unwrap_err();
    assert!(
        matches!(err, Error::Expired { ref role, .. } if role == "a"),
        "{err}"
    );
}

// §5.2 / §5.3 -----------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_3_root_chain_is_followed_until_not_found_and_persisted() {
    let (mut repo, server, store) = setup();
    repo.rotate_keys(&["root"]);
    repo.rotate_keys(&["root", "targets"]);
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let out = up.refresh(now()).await.unwrap();
    assert_eq!((out.root_version, out.root_rotations), (3, 2));
    let reqs = fetched_metadata();
    assert_eq!(
        reqs[..4],
        [
            "2.root.json",
            "3.root.json",
            "4.root.json",
            "timestamp.json"
        ]
    );
    assert_eq!(stored(&store, "root.json"), repo.read_meta("3.root.json"));
    // §5.2: the next cycle starts from the persisted (newer) root, not the shipped one.
    clear_fetched();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    assert_eq!(fetched_metadata()[0], "4.root.json");
}

#[tokio::test]
async fn spec_5_3_4_new_root_must_be_signed_by_a_threshold_of_the_old_root_keys() {
    let (mut repo, server, store) = setup();
    let new_key = repo.new_key();
    repo.keys.insert("root", vec![new_key.clone()]);
    repo.root_version = 2;
    repo.sign_root(&[&new_key]);
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref signer, .. } if signer.contains("trusted root")),
        "{err}"
    );
    assert_eq!(
        stored(&store, "root.json"),
        repo.shipped_root,
        "v2 not persisted"
    );
}

#[tokio::test]
async fn spec_5_3_4_new_root_must_be_signed_by_a_threshold_of_its_own_root_keys() {
    let (mut repo, server, store) = setup();
    let old = repo.keys["root"].clone();
    let new_key = repo.new_key();
    repo.keys.insert("root", vec![new_key]);
    repo.root_version = 2;
    repo.sign_root(&old.iter().collect::<Vec<_>>());
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref signer, .. } if signer.contains("own root")),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_3_5_new_root_version_must_be_exactly_n_plus_1() {
    let (mut repo, server, store) = setup();
    repo.root_version = 3;
    let bytes = repo.sign_as("root", &repo.root_value());
    repo.write_meta("2.root.json", &bytes);
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RootVersion {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_3_3_root_rotations_per_cycle_are_bounded() {
    let (mut repo, server, store) = setup();
    for _ in 0..3 {
        repo.rotate_keys(&["root"]);
    }
    let mut up = http_updater_with(&server, &repo, store.path(), |c| {
        c.limits.max_root_rotations = 2;
    });
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.root_version, 3);
    assert!(!fetched_metadata().contains(&"4.root.json".to_owned()));
    // The next cycle continues the chain.
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.root_version, 4);
}

#[tokio::test]
async fn spec_5_3_3_server_error_on_the_next_root_is_an_error_not_the_end_of_the_chain() {
    let (repo, server, store) = setup();
    server.set_fault(Fault::Status {
        suffix: "/2.root.json".into(),
        status: 500,
    });
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Fetch { source, .. } if source.kind() == TransportErrorKind::Other),
        "{err}"
    );
    // 403 (S3's answer for a missing key) ends the chain like 404.
    server.set_fault(Fault::Status {
        suffix: "/2.root.json".into(),
        status: 403,
    });
    assert_eq!(up.refresh(now()).await.unwrap().root_version, 1);
}

#[tokio::test]
async fn spec_5_3_10_expiry_is_checked_on_the_final_root_only() {
    let (mut repo, server, store) = setup();
    repo.root_expires = PAST.into();
    repo.rotate_keys(&[]);
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Expired { ref role, version: 2, .. } if role == "root"),
        "{err}"
    );
    // An expired intermediate root is fine when a newer one follows.
    repo.root_expires = FAR.into();
    repo.rotate_keys(&[]);
    assert_eq!(up.refresh(now()).await.unwrap().root_version, 3);
}

#[tokio::test]
async fn spec_5_3_11_timestamp_key_rotation_deletes_persisted_timestamp_and_snapshot() {
    let (mut repo, server, store) = setup();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    // Fast-forward attack with the (compromised) timestamp key.
    let mut ts = repo.timestamp_value();
    ts["version"] = json!(1000);
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts));
    assert_eq!(up.refresh(now()).await.unwrap().timestamp_version, 1000);
    // Without a key rotation, the repository's real timestamp is now a rollback.
    repo.publish();
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TimestampRollback {
                trusted: 1000,
                new: 2
            }
        ),
        "{err}"
    );
    // Recovery: the timestamp key is rotated in root v2. The persisted timestamp and snapshot
    // are deleted as soon as the new root is trusted, even if this cycle then fails.
    repo.rotate_keys(&["timestamp"]);
    repo.publish();
    server.set_fault(Fault::Status {
        suffix: "/timestamp.json".into(),
        status: 500,
    });
    assert!(up.refresh(now()).await.is_err());
    assert!(!store.path().join("timestamp.json").exists());
    assert!(!store.path().join("snapshot.json").exists());
    server.set_fault(Fault::None);
    let out = up.refresh(now()).await.unwrap();
    assert!(
        !out.timestamp_snapshot_keys_rotated,
        "root v2 was already trusted"
    );
    assert_eq!((out.root_version, out.timestamp_version), (2, 3));
    // A rotation that completes in one cycle reports it.
    repo.rotate_keys(&["snapshot"]);
    repo.publish();
    let out = up.refresh(now()).await.unwrap();
    assert!(out.timestamp_snapshot_keys_rotated);
    assert_eq!((out.root_version, out.snapshot_version), (3, 4));
    assert_eq!(
        stored(&store, "timestamp.json"),
        repo.read_meta("timestamp.json")
    );
}

// §5.4 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_4_2_timestamp_not_signed_by_the_timestamp_keys_is_refused() {
    let (repo, server, store) = setup();
    let ts = repo.timestamp_value();
    repo.write_meta("timestamp.json", &repo.sign_as("snapshot", &ts));
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref role, .. } if role == "timestamp"),
        "{err}"
    );
    assert!(!store.path().join("timestamp.json").exists());
}

#[tokio::test]
async fn spec_5_4_3_1_timestamp_version_rollback_is_refused() {
    let (mut repo, server, store) = setup();
    let v1 = repo.read_meta("timestamp.json");
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    assert_eq!(up.refresh(now()).await.unwrap().timestamp_version, 2);
    repo.write_meta("timestamp.json", &v1);
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::TimestampRollback { trusted: 2, new: 1 }),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_4_3_1_same_version_timestamp_different_content_is_ignored() {
    let (mut repo, server, store) = setup();
    repo.add_target("targets", "a.txt", b"a");
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let out = up.refresh(now()).await.unwrap();
    assert_eq!((out.timestamp_version, out.snapshot_version), (2, 2));
    let trusted = stored(&store, "timestamp.json");

    // Same version 2, validly signed, but naming snapshot version 100.
    let mut ts = repo.timestamp_value();
    ts["meta"]["snapshot.json"] = json!({"version": 100});
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts));
    clear_fetched();
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(
        out.timestamp,
        TimestampUpdate::DiscardedSameVersionDifferentContent
    );
    assert_eq!((out.timestamp_version, out.snapshot_version), (2, 2));
    assert_eq!(
        stored(&store, "timestamp.json"),
        trusted,
        "trusted timestamp kept"
    );
    assert!(
        !fetched_metadata().iter().any(|r| r.contains("snapshot")),
        "nothing the discarded timestamp names is fetched"
    );
    assert!(up.get_target_info("a.txt").await.unwrap().is_some());

    // The repository's next legitimate timestamp is accepted (the host is not frozen).
    repo.publish();
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.timestamp, TimestampUpdate::Updated);
    assert_eq!((out.timestamp_version, out.snapshot_version), (3, 3));
}

#[tokio::test]
async fn spec_5_4_3_1_same_version_same_content_is_unchanged_and_nothing_else_is_fetched() {
    let (repo, server, store) = setup();
    let mut up = http_updater(&server, &repo, store.path());
    assert_eq!(
        up.refresh(now()).await.unwrap().timestamp,
        TimestampUpdate::Updated
    );
    clear_fetched();
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.timestamp, TimestampUpdate::Unchanged);
    assert_eq!(fetched_metadata(), ["2.root.json", "timestamp.json"]);
}

#[tokio::test]
async fn spec_5_4_3_2_snapshot_version_rollback_in_timestamp_is_refused() {
    let (mut repo, server, store) = setup();
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    let mut ts = repo.timestamp_value();
    ts["version"] = json!(3);
    ts["meta"]["snapshot.json"] = json!({"version": 1});
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts));
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SnapshotVersionRollback {
                trusted: 2,
                new: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_4_4_expired_timestamp_is_refused() {
    let (mut repo, server, store) = setup();
    repo.timestamp_expires = PAST.into();
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Expired { ref role, .. } if role == "timestamp"),
        "{err}"
    );
    assert!(
        !store.path().join("timestamp.json").exists(),
        "not persisted"
    );
}

#[tokio::test]
async fn spec_5_4_5_metadata_is_persisted_as_the_exact_bytes_received() {
    let (repo, server, store) = setup();
    // Unusual formatting and an unknown (signed) field: a re-serialiser would change both.
    let mut ts = repo.timestamp_value();
    ts["x-extra"] = json!({"z": 1, "a": [1, 2]});
    let mut bytes = b"  \n".to_vec();
    bytes.extend(repo.sign_as("timestamp", &ts));
    bytes.extend(b"\n\n");
    repo.write_meta("timestamp.json", &bytes);
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    assert_eq!(stored(&store, "timestamp.json"), bytes);
    assert_eq!(
        stored(&store, "snapshot.json"),
        repo.read_meta("1.snapshot.json")
    );
    assert_eq!(
        stored(&store, "targets.json"),
        repo.read_meta("1.targets.json")
    );
    // Tampering with the unknown field breaks the signature: it is covered.
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("\"z\": 1", "\"z\": 2");
    repo.write_meta("timestamp.json", text.as_bytes());
    let store2 = test_support::tempdir();
    let mut up = http_updater(&server, &repo, store2.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::Signature { .. }), "{err}");
}

#[tokio::test]
async fn limits_timestamp_larger_than_its_limit_is_refused() {
    let (repo, server, store) = setup();
    let mut ts = repo.timestamp_value();
    ts["padding"] = json!("p".repeat(17 * 1024));
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts));
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 16384, .. }), "{err}");
}

#[tokio::test]
async fn limits_root_larger_than_its_limit_is_refused() {
    let (mut repo, server, store) = setup();
    repo.rotate_keys(&[]);
    let mut up = http_updater_with(&server, &repo, store.path(), |c| c.limits.root = 300);
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 300, .. }), "{err}");
}

// §5.5 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_5_2_snapshot_not_matching_the_timestamp_hashes_is_refused() {
    let (repo, server, store) = setup();
    // A validly signed snapshot with the same version but other bytes.
    let mut snap = repo.snapshot_value();
    snap["x-other"] = json!(true);
    repo.write_meta("1.snapshot.json", &repo.sign_as("snapshot", &snap));
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    // Same length, other content: the hash catches it.
    let good = repo.read_meta("timestamp.json");
    let mut ts: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let snap_bytes = repo.read_meta("1.snapshot.json");
    ts["signed"]["meta"]["snapshot.json"]["length"] = json!(snap_bytes.len());
    ts["signed"]["version"] = json!(2);
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts["signed"]));
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::HashMismatch { ref algorithm, .. } if algorithm == "sha256"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_5_3_snapshot_not_signed_by_the_snapshot_keys_is_refused() {
    let (repo, server, store) = setup();
    let snap = repo.snapshot_value();
    repo.write_meta("1.snapshot.json", &repo.sign_as("timestamp", &snap));
    repo.write_timestamp();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref role, .. } if role == "snapshot"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_5_4_snapshot_version_must_match_the_timestamp() {
    let (repo, server, store) = setup();
    let mut snap = repo.snapshot_value();
    snap["version"] = json!(7);
    repo.write_meta("1.snapshot.json", &repo.sign_as("snapshot", &snap));
    repo.write_timestamp();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::SnapshotVersion {
                expected: 1,
                found: 7
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_5_5_targets_version_rollback_in_snapshot_is_refused() {
    let (mut repo, server, store) = setup();
    repo.add_target("targets", "a", b"a");
    repo.publish(); // targets v2
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    repo.roles.get_mut("targets").unwrap().version = 1;
    repo.publish(); // snapshot v3 lists targets v1
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::SnapshotRollback { ref file, trusted: 2, new: 1 } if file == "targets.json"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_5_5_targets_role_removed_from_snapshot_is_refused() {
    let (mut repo, server, store) = setup();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    repo.roles.get_mut("a").unwrap().hidden_from_snapshot = true;
    repo.publish();
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::SnapshotRemoved { ref file } if file == "a.json"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_5_6_expired_snapshot_is_refused() {
    let (mut repo, server, store) = setup();
    repo.snapshot_expires = PAST.into();
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Expired { ref role, .. } if role == "snapshot"),
        "{err}"
    );
    assert!(
        !store.path().join("snapshot.json").exists(),
        "not persisted"
    );
}

#[tokio::test]
async fn limits_snapshot_without_length_in_timestamp_is_bounded_by_the_limit() {
    let (repo, server, store) = setup();
    let mut ts = repo.timestamp_value();
    ts["meta"]["snapshot.json"] = json!({"version": 1});
    repo.write_meta("timestamp.json", &repo.sign_as("timestamp", &ts));
    let mut up = http_updater_with(&server, &repo, store.path(), |c| c.limits.snapshot = 100);
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 100, .. }), "{err}");
}

// §5.6 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_6_2_targets_not_matching_the_snapshot_hashes_is_refused() {
    let mut repo = Repo::new();
    repo.snapshot_hashes = true;
    repo.publish();
    let server = Server::serve_dir(repo.dir.path());
    let store = test_support::tempdir();
    let mut t = repo.targets_value("targets");
    t["x-other"] = json!(1);
    let signers: Vec<_> = repo.keys["targets"].iter().collect();
    repo.write_meta("1.targets.json", &sign(&t, &signers));
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn spec_5_6_3_targets_not_signed_by_the_targets_keys_is_refused() {
    let (mut repo, server, store) = setup();
    let snapshot_keys = repo.keys["snapshot"].clone();
    let t = repo.roles.get_mut("targets").unwrap();
    t.signers = snapshot_keys;
    t.dirty = true;
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref role, .. } if role == "targets"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_6_4_targets_version_must_match_the_snapshot() {
    let (repo, server, store) = setup();
    let mut t = repo.targets_value("targets");
    t["version"] = json!(99);
    let signers: Vec<_> = repo.keys["targets"].iter().collect();
    repo.write_meta("1.targets.json", &sign(&t, &signers));
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TargetsVersion {
                expected: 1,
                found: 99,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_6_5_expired_targets_is_refused() {
    let (mut repo, server, store) = setup();
    let t = repo.roles.get_mut("targets").unwrap();
    t.expires = PAST.into();
    t.dirty = true;
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Expired { ref role, .. } if role == "targets"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_5_6_6_persisted_metadata_is_reused_without_download() {
    let (mut repo, server, store) = setup();
    repo.add_target("targets", "a", b"a");
    repo.publish();
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    clear_fetched();
    // A new updater (a restarted agent) on the same datastore.
    let mut up = http_updater(&server, &repo, store.path());
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.targets_version, 2);
    assert_eq!(fetched_metadata(), ["2.root.json", "timestamp.json"]);
    assert!(up.get_target_info("a").await.unwrap().is_some());
    // A corrupted persisted file is not trusted: it is downloaded again.
    std::fs::write(store.path().join("targets.json"), b"{}").unwrap();
    clear_fetched();
    up.refresh(now()).await.unwrap();
    assert_eq!(
        fetched_metadata(),
        ["2.root.json", "timestamp.json", "2.targets.json"]
    );
    assert_eq!(
        stored(&store, "targets.json"),
        repo.read_meta("2.targets.json")
    );
}

#[tokio::test]
async fn limits_targets_without_length_in_snapshot_is_bounded_by_the_limit() {
    let (mut repo, server, store) = setup();
    for i in 0..20 {
        repo.add_target("targets", &format!("file-{i}"), b"x");
    }
    repo.publish();
    let mut up = http_updater_with(&server, &repo, store.path(), |c| c.limits.targets = 1000);
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 1000, .. }), "{err}");
}

// Transports and configuration --------------------------------------------------------------------

#[tokio::test]
async fn file_transport_runs_the_whole_cycle_and_reports_not_found() {
    let mut repo = Repo::new();
    repo.add_target("targets", "dir/a.txt", b"hello");
    repo.publish();
    let store = test_support::tempdir();
    let mut up = file_updater(&repo, store.path());
    let out = up.refresh(now()).await.unwrap();
    assert_eq!(out.timestamp_version, 2);
    let info = up.get_target_info("dir/a.txt").await.unwrap().unwrap();
    assert_eq!(up.download_target(&info).await.unwrap(), b"hello");
    repo.remove_meta("timestamp.json");
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Fetch { source, .. } if source.kind() == TransportErrorKind::NotFound),
        "{err}"
    );
}

#[tokio::test]
async fn query_parameters_are_appended_to_every_request() {
    let mut repo = Repo::new();
    repo.add_target("targets", "a.txt", b"a");
    repo.publish();
    let server = Server::serve_dir(repo.dir.path());
    let store = test_support::tempdir();
    let mut up = http_updater_with(&server, &repo, store.path(), |c| {
        c.query = vec![
            ("seed".into(), "1234".into()),
            ("version".into(), "1.2.3".into()),
        ];
    });
    up.refresh(now()).await.unwrap();
    let info = up.get_target_info("a.txt").await.unwrap().unwrap();
    up.download_target(&info).await.unwrap();
    // The server logs a request after answering it: wait (bounded) for it to catch up.
    let sent = fetched_paths().len();
    assert!(sent >= 5, "{:?}", fetched_paths());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.requests().len() < sent && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), sent);
    for r in reqs {
        assert_eq!(r.query, "seed=1234&version=1.2.3", "{}", r.path);
    }
}

#[tokio::test]
async fn repository_without_consistent_snapshots_uses_plain_names() {
    let mut repo = Repo::with_consistent(false);
    repo.add_target("targets", "dir/a.txt", b"a");
    repo.publish();
    let server = Server::serve_dir(repo.dir.path());
    let store = test_support::tempdir();
    let mut up = http_updater(&server, &repo, store.path());
    let out = up.refresh(now()).await.unwrap();
    assert!(!out.consistent_snapshot);
    let info = up.get_target_info("dir/a.txt").await.unwrap().unwrap();
    assert_eq!(up.download_target(&info).await.unwrap(), b"a");
    let paths = fetched_paths();
    assert_eq!(
        paths,
        [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/snapshot.json",
            "/metadata/targets.json",
            "/targets/dir/a.txt"
        ]
    );
}

#[tokio::test]
async fn invalid_shipped_root_is_refused_at_construction() {
    let repo = Repo::new();
    let store = test_support::tempdir();
    let (meta, targets) = repo.file_url();
    let mut root: serde_json::Value = serde_json::from_slice(&repo.shipped_root).unwrap();
    root["signed"]["version"] = json!(5);
    let config = tuf_client::Config::new(
        meta,
        targets,
        store.path(),
        serde_json::to_vec(&root).unwrap(),
    );
    let err = tuf_client::Updater::new(config, tuf_client::DefaultTransport::new()).unwrap_err();
    assert!(matches!(err, Error::TrustedRoot { .. }), "{err}");
}

#[tokio::test]
async fn interop_repository_written_by_toughs_editor_loads_and_downloads() {
    let dir = test_support::tempdir();
    let signed = test_support::tuf::SignedRepo::simple(&dir.path().join("served"));
    let root_path = signed.root.clone();
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join("manifest.json"), b"{\"updates\": []}").unwrap();
    signed
        .publish_dir(&staging, test_support::tuf::RoleVersions::all(1))
        .await;
    let served = signed.dir.clone();
    let server = Server::serve_dir(&served);
    let base: url::Url = server.url().parse().unwrap();
    let store = test_support::tempdir();
    let config = tuf_client::Config::new(
        base.join("metadata/").unwrap(),
        base.join("targets/").unwrap(),
        store.path(),
        std::fs::read(&root_path).unwrap(),
    );
    let mut up = tuf_client::Updater::new(config, RecordingTransport::default()).unwrap();
    let out = up.refresh(now()).await.unwrap();
    assert_eq!((out.timestamp_version, out.snapshot_version), (1, 1));
    let info = up.get_target_info("manifest.json").await.unwrap().unwrap();
    assert_eq!(
        up.download_target(&info).await.unwrap(),
        b"{\"updates\": []}"
    );
    assert_eq!(
        stored(&store, "snapshot.json"),
        std::fs::read(served.join("metadata/1.snapshot.json")).unwrap(),
        "exact bytes as tough wrote them"
    );
}
