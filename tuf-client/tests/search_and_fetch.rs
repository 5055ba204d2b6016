//! §5.6.7 (the delegation search) and §5.7 (target fetch), one named test per rule, against
//! repositories built and signed at test time and served over HTTP on 127.0.0.1:0.

mod support;

use futures::StreamExt;
use serde_json::json;
use support::*;
use test_support::http::Server;
use tuf_client::{Error, Updater};

fn serve(repo: &Repo) -> (Server, tempfile::TempDir) {
    (Server::serve_dir(repo.dir.path()), test_support::tempdir())
}

async fn refreshed(server: &Server, repo: &Repo, store: &tempfile::TempDir) -> Updater {
    let mut up = http_updater(server, repo, store.path());
    up.refresh(now()).await.unwrap();
    clear_fetched();
    up
}

/// Delegated role files fetched, in order.
fn fetched_roles() -> Vec<String> {
    fetched_metadata()
        .into_iter()
        .filter_map(|p| {
            let name = p.strip_suffix(".json")?;
            let (_, role) = name.split_once('.')?;
            Some(role.to_owned())
        })
        .collect()
}

// §5.6.7 ----------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_6_7_search_is_preorder_depth_first_in_order_of_appearance() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.delegate("targets", "b", json!({"paths": ["*"]}), false);
    repo.delegate("a", "a1", json!({"paths": ["*"]}), false);
    repo.add_target("a1", "x", b"from a1");
    repo.add_target("b", "x", b"from b");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("x").await.unwrap().unwrap();
    assert_eq!(info.role, "a1", "a's subtree is searched before b");
    assert_eq!(fetched_roles(), ["a", "a1"], "b is never fetched");
    assert_eq!(up.download_target(&info).await.unwrap(), b"from a1");
}

#[tokio::test]
async fn spec_5_6_7_refresh_fetches_no_delegated_role_and_lookups_fetch_only_what_they_visit() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["a/*"]}), false);
    repo.delegate("targets", "b", json!({"paths": ["b/*"]}), false);
    repo.add_target("a", "a/x", b"ax");
    repo.add_target("b", "b/y", b"by");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = http_updater(&server, &repo, store.path());
    up.refresh(now()).await.unwrap();
    assert!(
        fetched_roles()
            .iter()
            .all(|r| !["a", "b"].contains(&r.as_str())),
        "refresh fetched a delegated role: {:?}",
        fetched_metadata()
    );
    clear_fetched();
    let info = up.get_target_info("b/y").await.unwrap().unwrap();
    assert_eq!(info.role, "b");
    assert_eq!(fetched_roles(), ["b"], "a's paths do not match b/y");
    // A second lookup reuses what this cycle already verified.
    clear_fetched();
    assert!(up.get_target_info("b/y").await.unwrap().is_some());
    assert!(fetched_roles().is_empty());
    assert!(
        store.path().join("b.json").is_file(),
        "delegated role persisted"
    );
    assert!(!store.path().join("a.json").exists());
}

#[tokio::test]
async fn spec_5_6_7_roles_whose_path_hash_prefixes_do_not_match_are_skipped() {
    let mut repo = Repo::new();
    let digest = sha256_hex(b"x");
    let other = if digest.starts_with('0') { "1" } else { "0" };
    repo.delegate(
        "targets",
        "miss",
        json!({"path_hash_prefixes": [other]}),
        false,
    );
    repo.delegate(
        "targets",
        "hit",
        json!({"path_hash_prefixes": [&digest[..2]]}),
        false,
    );
    repo.add_target("miss", "x", b"wrong");
    repo.add_target("hit", "x", b"right");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("x").await.unwrap().unwrap();
    assert_eq!(info.role, "hit");
    assert_eq!(fetched_roles(), ["hit"]);
}

#[tokio::test]
async fn spec_5_6_7_2_1_terminating_delegation_stops_the_search() {
    for terminating in [true, false] {
        let mut repo = Repo::new();
        repo.delegate("targets", "a", json!({"paths": ["*"]}), terminating);
        repo.delegate("targets", "b", json!({"paths": ["*"]}), false);
        repo.add_target("a", "other", b"o");
        repo.add_target("b", "x", b"x");
        repo.publish();
        let (server, store) = serve(&repo);
        let mut up = refreshed(&server, &repo, &store).await;
        let found = up.get_target_info("x").await.unwrap();
        if terminating {
            assert_eq!(found, None);
            assert_eq!(fetched_roles(), ["a"], "b is not visited");
        } else {
            assert_eq!(found.unwrap().role, "b");
        }
    }
}

#[tokio::test]
async fn spec_5_6_7_2_1_terminating_delegation_deep_in_the_tree_ends_the_whole_search() {
    let mut repo = Repo::new();
    repo.delegate("targets", "p", json!({"paths": ["*"]}), false);
    repo.delegate("targets", "q", json!({"paths": ["*"]}), false);
    repo.delegate("p", "t", json!({"paths": ["*"]}), true);
    repo.add_target("q", "x", b"x");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    assert_eq!(up.get_target_info("x").await.unwrap(), None);
    assert_eq!(
        fetched_roles(),
        ["p", "t"],
        "q (a sibling of t's parent) is not visited"
    );
}

#[tokio::test]
async fn spec_5_6_7_2_1_terminating_delegation_that_does_not_match_does_not_stop_the_search() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["other/*"]}), true);
    repo.delegate("targets", "b", json!({"paths": ["*"]}), false);
    repo.add_target("b", "x", b"x");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    assert_eq!(up.get_target_info("x").await.unwrap().unwrap().role, "b");
}

#[tokio::test]
async fn spec_5_6_7_1_number_of_roles_visited_is_bounded() {
    let mut repo = Repo::new();
    repo.delegate("targets", "r1", json!({"paths": ["*"]}), false);
    repo.delegate("r1", "r2", json!({"paths": ["*"]}), false);
    repo.delegate("r2", "r3", json!({"paths": ["*"]}), false);
    repo.add_target("r3", "x", b"deep");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = http_updater_with(&server, &repo, store.path(), |c| {
        c.limits.max_delegations = 2;
    });
    up.refresh(now()).await.unwrap();
    clear_fetched();
    assert_eq!(up.get_target_info("x").await.unwrap(), None);
    assert_eq!(fetched_roles(), ["r1", "r2"]);
    let store2 = test_support::tempdir();
    let mut up = refreshed(&server, &repo, &store2).await;
    assert_eq!(up.get_target_info("x").await.unwrap().unwrap().role, "r3");
}

#[tokio::test]
async fn spec_5_6_7_1_cycles_in_the_delegation_graph_are_visited_once() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.delegate("a", "b", json!({"paths": ["*"]}), false);
    // b delegates back to a (with a's key).
    let a_key = repo.roles["a"].signers[0].clone();
    let b = repo.roles.get_mut("b").unwrap();
    b.delegations = Some(json!({
        "keys": {a_key.key_id.clone(): key_json(&a_key)},
        "roles": [{"name": "a", "keyids": [a_key.key_id], "threshold": 1,
                   "terminating": false, "paths": ["*"]}],
    }));
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    assert_eq!(up.get_target_info("nowhere").await.unwrap(), None);
    assert_eq!(fetched_roles(), ["a", "b"]);
}

#[tokio::test]
async fn spec_5_6_7_delegated_role_missing_from_snapshot_is_skipped_and_the_search_continues() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.delegate("targets", "b", json!({"paths": ["*"]}), false);
    repo.add_target("a", "x", b"from a");
    repo.add_target("b", "x", b"from b");
    repo.roles.get_mut("a").unwrap().hidden_from_snapshot = true;
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("x").await.unwrap().unwrap();
    assert_eq!(info.role, "b");
    assert_eq!(fetched_roles(), ["b"], "a is not fetched at all");
}

#[tokio::test]
async fn spec_5_6_7_target_entry_outside_its_role_paths_is_not_trusted_and_fails_nothing() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["a/*"]}), false);
    repo.add_target("a", "a/ok", b"ok");
    repo.add_target("a", "b/not-delegated", b"sneaky");
    repo.add_target("a", "manifest.json", b"sneaky");
    repo.add_target("targets", "manifest.json", b"real");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    assert_eq!(up.get_target_info("b/not-delegated").await.unwrap(), None);
    let info = up.get_target_info("a/ok").await.unwrap().unwrap();
    assert_eq!(up.download_target(&info).await.unwrap(), b"ok");
    let manifest = up.get_target_info("manifest.json").await.unwrap().unwrap();
    assert_eq!(manifest.role, "targets");
    assert_eq!(up.download_target(&manifest).await.unwrap(), b"real");
}

#[tokio::test]
async fn spec_5_6_7_delegated_role_with_a_bad_signature_is_an_error() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["*"]}), false);
    repo.add_target("a", "x", b"x");
    let wrong = repo.keys["targets"].clone();
    repo.roles.get_mut("a").unwrap().signers = wrong;
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let err = up.get_target_info("x").await.unwrap_err();
    assert!(
        matches!(err, Error::Signature { ref role, .. } if role == "a"),
        "{err}"
    );
    assert!(!store.path().join("a.json").exists());
}

#[tokio::test]
async fn spec_5_6_7_lookup_before_refresh_is_refused() {
    let repo = Repo::new();
    let (server, store) = serve(&repo);
    let mut up = http_updater(&server, &repo, store.path());
    assert!(matches!(
        up.get_target_info("x").await.unwrap_err(),
        Error::NotRefreshed
    ));
}

// §5.7 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn spec_5_7_3_consistent_snapshot_url_of_a_target_in_a_subdirectory_is_dir_hash_file() {
    let mut repo = Repo::new();
    repo.add_target("targets", "dir/sub/image.img", b"image bytes");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up
        .get_target_info("dir/sub/image.img")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.download_target(&info).await.unwrap(), b"image bytes");
    let h = sha256_hex(b"image bytes");
    let paths = fetched_paths();
    assert_eq!(paths, [format!("/targets/dir/sub/{h}.image.img")]);
}

#[tokio::test]
async fn spec_5_7_target_with_wrong_content_or_length_is_refused() {
    let mut repo = Repo::new();
    repo.add_target("targets", "t.bin", b"0123456789");
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("t.bin").await.unwrap().unwrap();
    let file = repo
        .targets_dir()
        .join(format!("{}.t.bin", sha256_hex(b"0123456789")));
    std::fs::write(&file, b"0123456780").unwrap();
    let err = up.download_target(&info).await.unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    std::fs::write(&file, b"012345678").unwrap();
    let err = up.download_target(&info).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::LengthMismatch {
                expected: 10,
                actual: 9,
                ..
            }
        ),
        "{err}"
    );
    std::fs::write(&file, b"0123456789+").unwrap();
    let err = up.download_target(&info).await.unwrap_err();
    assert!(matches!(err, Error::TooLarge { limit: 10, .. }), "{err}");
}

#[tokio::test]
async fn spec_5_7_stream_ends_with_an_error_not_a_clean_end_when_the_hash_is_wrong() {
    let mut repo = Repo::new();
    let body = vec![7u8; 300_000];
    repo.add_target("targets", "big.bin", &body);
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("big.bin").await.unwrap().unwrap();
    let mut stream = up.open_target(&info).await.unwrap();
    let mut n = 0;
    while let Some(chunk) = stream.next().await {
        n += chunk.unwrap().len();
    }
    assert_eq!(n, body.len());
    let mut tampered = body.clone();
    tampered[299_999] = 8;
    std::fs::write(
        repo.targets_dir()
            .join(format!("{}.big.bin", sha256_hex(&body))),
        &tampered,
    )
    .unwrap();
    let items: Vec<_> = up.open_target(&info).await.unwrap().collect().await;
    let (last, rest) = items.split_last().unwrap();
    assert!(rest.iter().all(Result::is_ok), "data chunks come through");
    assert!(
        matches!(last, Err(Error::HashMismatch { .. })),
        "last item: {last:?}"
    );
}

#[tokio::test]
async fn spec_4_5_target_with_only_sha512_is_accepted_and_verified() {
    let mut repo = Repo::new();
    repo.add_target_with("targets", "only512.bin", b"sha512 only", &["sha512"]);
    repo.add_target_with("targets", "both.bin", b"both", &["sha256", "sha512"]);
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("only512.bin").await.unwrap().unwrap();
    assert!(info.hashes.get("sha256").is_none());
    assert_eq!(up.download_target(&info).await.unwrap(), b"sha512 only");
    let path = &fetched_paths()[0];
    assert_eq!(
        path,
        &format!("/targets/{}.only512.bin", sha512_hex(b"sha512 only"))
    );
    let info = up.get_target_info("both.bin").await.unwrap().unwrap();
    assert_eq!(up.download_target(&info).await.unwrap(), b"both");
}

#[tokio::test]
async fn spec_5_7_every_listed_hash_is_checked() {
    let mut repo = Repo::new();
    repo.add_target("targets", "t.bin", b"content");
    // sha256 right, sha512 wrong.
    repo.roles.get_mut("targets").unwrap().targets["t.bin"]["hashes"]["sha512"] =
        json!("00".repeat(64));
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = refreshed(&server, &repo, &store).await;
    let info = up.get_target_info("t.bin").await.unwrap().unwrap();
    let err = up.download_target(&info).await.unwrap_err();
    assert!(
        matches!(err, Error::HashMismatch { ref algorithm, .. } if algorithm == "sha512"),
        "{err}"
    );
}

#[tokio::test]
async fn spec_4_5_target_with_empty_hashes_makes_its_role_malformed() {
    let mut repo = Repo::new();
    repo.add_target("targets", "t.bin", b"content");
    repo.roles.get_mut("targets").unwrap().targets["t.bin"]["hashes"] = json!({});
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = http_updater(&server, &repo, store.path());
    let err = up.refresh(now()).await.unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref role, .. } if role == "targets"),
        "{err}"
    );
}

// Mirroring what was verified -------------------------------------------------------------------

#[tokio::test]
async fn trusted_metadata_is_the_exact_verified_bytes_under_the_published_names() {
    let mut repo = Repo::new();
    repo.delegate("targets", "a", json!({"paths": ["a/*"]}), false);
    repo.add_target("a", "a/x", b"ax");
    repo.rotate_keys(&["root"]);
    repo.publish();
    let (server, store) = serve(&repo);
    let mut up = http_updater(&server, &repo, store.path());
    assert_eq!(
        up.trusted_metadata("timestamp"),
        None,
        "nothing before a refresh"
    );
    assert_eq!(up.consistent_snapshot(), None);
    up.refresh(now()).await.unwrap();
    assert_eq!(up.consistent_snapshot(), Some(true));
    for (role, file) in [
        ("root", "2.root.json"),
        ("timestamp", "timestamp.json"),
        ("snapshot", "2.snapshot.json"),
        ("targets", "2.targets.json"),
    ] {
        assert_eq!(up.metadata_file_name(role).as_deref(), Some(file), "{role}");
        assert_eq!(
            up.trusted_metadata(role).unwrap(),
            repo.read_meta(file),
            "{role}: the bytes served"
        );
    }
    // A delegated role only once the search has visited it.
    assert_eq!(up.trusted_metadata("a"), None);
    assert_eq!(up.trusted_targets_roles(), ["targets"]);
    up.get_target_info("a/x").await.unwrap().unwrap();
    assert_eq!(up.trusted_targets_roles(), ["targets", "a"]);
    assert_eq!(up.metadata_file_name("a").as_deref(), Some("1.a.json"));
    assert_eq!(
        up.trusted_metadata("a").unwrap(),
        repo.read_meta("1.a.json")
    );
    // Old root versions, unverified, for a reader that walks the chain itself.
    clear_fetched();
    let old = up
        .fetch_metadata_unverified("1.root.json", 1 << 20)
        .await
        .unwrap();
    assert_eq!(old, repo.read_meta("1.root.json"));
    assert_eq!(fetched_metadata(), ["1.root.json"]);
    let err = up
        .fetch_metadata_unverified("1.root.json", 10)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn clock_file_name_is_configurable_for_a_datastore_taken_over_from_tough() {
    let repo = Repo::new();
    let (server, store) = serve(&repo);
    std::fs::write(
        store.path().join("latest_known_time.json"),
        "\"2099-01-01T00:00:00.123456789Z\"",
    )
    .unwrap();
    let tough_named = |c: &mut tuf_client::Config| c.clock_file = "latest_known_time.json".into();
    let mut up = http_updater_with(&server, &repo, store.path(), tough_named);
    let err = up.refresh(now()).await.unwrap_err();
    assert!(matches!(err, Error::ClockWentBackwards { .. }), "{err}");
    std::fs::remove_file(store.path().join("latest_known_time.json")).unwrap();
    up.refresh(now()).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(store.path().join("latest_known_time.json")).unwrap(),
        format!("\"{}\"", now())
    );
    assert!(!store.path().join("last-cycle-time").exists());
}
