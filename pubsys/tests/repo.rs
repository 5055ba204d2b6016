//! Real signed repositories written to temp dirs and read back over file:// and HTTP.

mod common;

use common::*;
use pubsys::keys::KeySpec;
use pubsys::policy::ExpirationPolicy;
use pubsys::refresh::RefreshRequest;
use pubsys::repo::{Expiry, LoadOptions, RepoSource};
use pubsys::store::RepoStore;
use pubsys::validate::validate;
use pubsys::yank::{YankAction, YankRequest};
use pubsys::{Error, NoReporter};
use std::sync::Arc;
use test_support::http::Server;
use update_metadata::{Manifest, Version};

fn manifest_of(fx: &Fixture, source: &RepoSource) -> Manifest {
    let root = fx.root_bytes();
    rt().block_on(async {
        let repo = pubsys::repo::load_existing(&root, source, &LoadOptions::default())
            .await
            .unwrap();
        pubsys::release::read_manifest(&repo, source).await.unwrap()
    })
}

fn http_source(server: &Server, fx: &Fixture) -> RepoSource {
    RepoSource::new(
        format!("{}metadata/{}/{}/", server.url(), fx.variant, fx.arch)
            .parse()
            .unwrap(),
        format!("{}targets/", server.url()).parse().unwrap(),
    )
}

fn yank_req(fx: &Fixture, action: YankAction) -> YankRequest {
    YankRequest {
        trusted_root: fx.root.clone(),
        keys: vec![KeySpec::File(fx.key.path.clone())],
        source: None,
        variant: fx.variant.clone(),
        arch: fx.arch,
        action,
        expiration: ExpirationPolicy::default(),
        expired: Expiry::Safe,
        datastore: None,
        now: now(),
    }
}

/// twoliter#488: Bottlerocket has no repository-side way to pull a bad release back. Here
/// `pubsys yank` re-signs the manifest with a lower `max_version`: a host on 1.0.0 that was
/// offered 1.1.0 is offered nothing newer once the yank is published (read back through TUF),
/// and the repository still validates.
#[test]
fn twoliter_488_yank_pulls_a_published_release_back() {
    use update_metadata::{Host, Policy, Selection, VersionLock, select};
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    fx.publish(&fx.request("1.1.0", now())).unwrap();
    let host = Host {
        variant: fx.variant.clone(),
        arch: fx.arch,
        version: Version::new(1, 0, 0),
    };
    let policy = Policy {
        version_lock: VersionLock::Latest,
        ignore_waves: true,
        seed: waves::Seed::new(0).unwrap(),
        now: now(),
        forced: None,
    };
    let offered = |m: &Manifest| match select(m, &host, &policy) {
        Selection::Update(u) => Some(u.version.clone()),
        Selection::NothingNewer => None,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        offered(&manifest_of(&fx, &fx.source())),
        Some(Version::new(1, 1, 0))
    );
    let y = rt()
        .block_on(pubsys::yank::yank(
            &yank_req(&fx, YankAction::LowerMaxVersion(Version::new(1, 0, 0))),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(y.withheld, ["1.1.0"]);
    assert_eq!(offered(&manifest_of(&fx, &fx.source())), None);
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

#[test]
fn publish_add_yank_refresh_validate_over_file_and_http() {
    let fx = Fixture::new();
    let t0 = now();

    // 1. A new repository with release 1.0.0.
    let out = fx.publish(&fx.request("1.0.0", t0)).unwrap();
    assert!(out.new_repository);
    assert_eq!(out.targets.len(), 4, "three images and manifest.json");
    let meta = fx.metadata_dir();
    assert!(meta.join("1.root.json").is_file());
    assert!(meta.join("timestamp.json").is_file());
    let v1 = out.committed.version;
    assert_eq!(v1, t0.as_second() as u64, "versions are Unix seconds");
    assert!(meta.join(format!("{v1}.snapshot.json")).is_file());
    assert!(meta.join(format!("{v1}.targets.json")).is_file());
    for t in &out.targets {
        let f = fx.targets_dir().join(format!("{}.{}", t.sha256, t.name));
        assert!(f.is_file(), "consistent target file {f:?}");
    }
    // Whole-second expiry in the written JSON (python-tuf refuses fractions).
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(meta.join("timestamp.json")).unwrap()).unwrap();
    let expires = ts["signed"]["expires"].as_str().unwrap();
    assert!(!expires.contains('.'), "{expires}");

    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.targets, 4);
    assert_eq!(report.manifest_updates, Some(1));

    // 2. Add release 1.1.0 (same second: the version still goes up).
    let out2 = fx.publish(&fx.request("1.1.0", t0)).unwrap();
    assert!(!out2.new_repository);
    assert_eq!(
        out2.committed.version,
        v1 + 1,
        "strictly greater than the previous version"
    );
    assert!(
        !out2
            .committed
            .metadata_written
            .contains(&"1.root.json".to_string()),
        "root is never rewritten"
    );

    // Read it over HTTP on 127.0.0.1:0.
    let server = Server::serve_dir(&fx.repo_dir);
    let http = http_source(&server, &fx);
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &http,
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.targets, 7);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("timestamp.json") && r.status == 200)
    );
    let m = manifest_of(&fx, &http);
    assert_eq!(m.updates.len(), 2);
    assert!(
        m.updates
            .iter()
            .all(|u| u.max_version == Version::new(1, 1, 0))
    );

    // 3. Yank 1.1.0 by lowering max_version.
    let y = rt()
        .block_on(pubsys::yank::yank(
            &yank_req(&fx, YankAction::LowerMaxVersion(Version::new(1, 0, 0))),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(y.max_version.as_deref(), Some("1.0.0"));
    assert_eq!(y.withheld, ["1.1.0"]);
    let m = manifest_of(&fx, &fx.source());
    assert!(
        m.updates
            .iter()
            .all(|u| u.max_version == Version::new(1, 0, 0))
    );

    // Lowering again to the same value changes nothing: refused.
    let err = rt()
        .block_on(pubsys::yank::yank(
            &yank_req(&fx, YankAction::LowerMaxVersion(Version::new(1, 0, 0))),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap_err();
    assert!(matches!(err, Error::NothingToYank { .. }), "{err:?}");

    // Remove the 1.1.0 entry altogether.
    let y = rt()
        .block_on(pubsys::yank::yank(
            &yank_req(&fx, YankAction::Remove(Version::new(1, 1, 0))),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(y.removed, ["1.1.0"]);
    let m = manifest_of(&fx, &fx.source());
    assert_eq!(m.updates.len(), 1);

    // 4. Refresh: new version and expirations, targets untouched.
    let before = rt().block_on(async {
        pubsys::repo::load_existing(&fx.root_bytes(), &fx.source(), &LoadOptions::default())
            .await
            .unwrap()
    });
    let later = t0
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    let r = rt()
        .block_on(pubsys::refresh::refresh(
            &RefreshRequest {
                trusted_root: fx.root.clone(),
                keys: vec![KeySpec::File(fx.key.path.clone())],
                source: None,
                expiration: ExpirationPolicy::default(),
                expired: Expiry::Safe,
                datastore: None,
                new_root: None,
                now: later,
            },
            &fx.store(),
            &NoReporter,
        ))
        .unwrap();
    assert!(r.version > before.timestamp().signed.version.get());
    assert!(r.committed.targets_written.is_empty());
    let after = rt().block_on(async {
        pubsys::repo::load_existing(&fx.root_bytes(), &fx.source(), &LoadOptions::default())
            .await
            .unwrap()
    });
    assert_eq!(
        after.targets().signed.targets,
        before.targets().signed.targets
    );
    assert!(after.timestamp().signed.expires > before.timestamp().signed.expires);
    assert_eq!(after.root().signed, before.root().signed);

    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &http,
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

#[test]
fn targets_are_written_before_metadata_and_timestamp_last() {
    let fx = Fixture::new();
    let store = RecordingStore::new(fx.store(), None);
    rt().block_on(pubsys::release::publish(
        &fx.request("1.0.0", now()),
        &store,
        Arc::new(NoReporter),
    ))
    .unwrap();
    let log = store.log.lock().unwrap().clone();
    let first_meta = log.iter().position(|l| l.starts_with("metadata")).unwrap();
    assert!(
        log[..first_meta - 1]
            .iter()
            .all(|l| l.starts_with("target")),
        "{log:#?}"
    );
    assert_eq!(log[first_meta - 1], "sync targets", "{log:#?}");
    assert_eq!(log.last().unwrap(), "metadata timestamp.json", "{log:#?}");
    let snap = log
        .iter()
        .position(|l| l.ends_with(".snapshot.json"))
        .unwrap();
    let targ = log
        .iter()
        .position(|l| l.ends_with(".targets.json"))
        .unwrap();
    assert!(targ < snap, "{log:#?}");
}

#[test]
fn a_failure_mid_write_leaves_the_live_repository_as_it_was() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let ts_before = std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap();
    for fail_on in [
        "root.ext4.lz4",
        "manifest.json",
        ".targets.json",
        ".snapshot.json",
        "timestamp.json",
    ] {
        let store = RecordingStore::new(fx.store(), Some(fail_on));
        let err = rt()
            .block_on(pubsys::release::publish(
                &fx.request("1.1.0", now()),
                &store,
                Arc::new(NoReporter),
            ))
            .unwrap_err();
        assert_eq!(err.exit_code(), 7, "{err:?}");
        assert_eq!(
            std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap(),
            ts_before,
            "timestamp unchanged after failure on {fail_on}"
        );
        let report = rt()
            .block_on(validate(
                &fx.root_bytes(),
                &fx.source(),
                &LoadOptions::default(),
                &NoReporter,
            ))
            .unwrap();
        assert!(
            report.ok(),
            "live repository still valid after failure on {fail_on}: {report:?}"
        );
        assert_eq!(report.manifest_updates, Some(1));
    }
    // And the release can then be published for real.
    fx.publish(&fx.request("1.1.0", now())).unwrap();
}

#[test]
fn publishing_the_same_release_twice_is_a_conflict() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let err = fx.publish(&fx.request("1.0.0", now())).unwrap_err();
    assert!(matches!(err, Error::ReleaseExists { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 5);
    assert!(err.to_string().contains("aws-dev x86_64 1.0.0"), "{err}");
}

#[test]
fn key_errors_are_clear_and_nothing_is_written() {
    let fx = Fixture::new();
    // Missing key file.
    let mut req = fx.request("1.0.0", now());
    req.keys = vec![KeySpec::File(fx.dir.path().join("missing.pk8"))];
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::ReadKey { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pk8"));

    // Wrong format: a PEM-wrapped ed25519 key (tough wants PKCS#8 DER for ed25519).
    let pem = fx.dir.path().join("key.pem");
    let der = std::fs::read(&fx.key.path).unwrap();
    let b64 = base64_encode(&der);
    std::fs::write(
        &pem,
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    req.keys = vec![KeySpec::File(pem)];
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::KeyFormat { .. }), "{err:?}");
    assert!(err.hint().unwrap().contains("PKCS#8"));

    // A valid key that root does not list.
    let other = test_support::tuf::gen_ed25519_key(&fx.dir.path().join("other.pk8"));
    req.keys = vec![KeySpec::File(other.path.clone())];
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::KeyNotInRoot { .. }), "{err:?}");
    assert!(err.to_string().contains(&other.key_id), "{err}");
    assert_eq!(err.exit_code(), 3);

    assert!(
        !fx.metadata_dir().join("timestamp.json").exists(),
        "nothing written"
    );
    assert!(
        !fx.metadata_dir().join("1.root.json").exists(),
        "nothing written"
    );
    assert!(!fx.targets_dir().exists(), "nothing written");
}

#[test]
fn threshold_not_met_names_the_role() {
    let fx = Fixture::new();
    let k2 = test_support::tuf::gen_ed25519_key(&fx.dir.path().join("k2.pk8"));
    let root2 = fx.dir.path().join("root2.json");
    test_support::tuf::write_root(
        &root2,
        1,
        &[&fx.key, &k2],
        2,
        &[&fx.key, &k2],
        test_support::tuf::far_future(),
    );
    let mut req = fx.request("1.0.0", now());
    req.trusted_root = root2.clone();
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::KeyThreshold { .. }), "{err:?}");
    assert!(err.to_string().contains("targets"), "{err}");
    // Both keys: fine, and the repository verifies under threshold 2.
    req.keys.push(KeySpec::File(k2.path.clone()));
    fx.publish(&req).unwrap();
    let report = rt()
        .block_on(validate(
            &std::fs::read(&root2).unwrap(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok());
}

#[test]
fn expired_repository_is_refused_unless_allowed_and_refresh_revives_it() {
    let fx = Fixture::new();
    let long_ago: jiff::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    fx.publish(&fx.request("1.0.0", long_ago)).unwrap();

    let err = fx.publish(&fx.request("1.1.0", now())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Repo {
                source: abos_repo_core::Error::Expired { .. }
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("expired timestamp metadata")
            || err.to_string().contains("expired"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 4);
    assert!(err.hint().unwrap().contains("--allow-expired-repo"));

    let report = rt().block_on(pubsys::expirations::check(
        &fx.root_bytes(),
        &fx.source(),
        jiff::SignedDuration::from_hours(72),
        now(),
        None,
    ));
    let report = report.unwrap();
    assert!(report.attention_needed());
    assert_eq!(report.roles[0].role, "root");
    assert_eq!(report.roles[0].state, pubsys::expirations::ExpiryState::Ok);
    assert!(
        report.roles[1..]
            .iter()
            .all(|r| r.state == pubsys::expirations::ExpiryState::Expired)
    );

    let req = RefreshRequest {
        trusted_root: fx.root.clone(),
        keys: vec![KeySpec::File(fx.key.path.clone())],
        source: None,
        expiration: ExpirationPolicy::default(),
        expired: Expiry::Safe,
        datastore: None,
        new_root: None,
        now: now(),
    };
    let err = rt()
        .block_on(pubsys::refresh::refresh(&req, &fx.store(), &NoReporter))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Repo {
                source: abos_repo_core::Error::Expired { .. }
            }
        ),
        "{err:?}"
    );
    let req = RefreshRequest {
        expired: Expiry::Unsafe,
        ..req
    };
    rt().block_on(pubsys::refresh::refresh(&req, &fx.store(), &NoReporter))
        .unwrap();

    let report = rt()
        .block_on(pubsys::expirations::check(
            &fx.root_bytes(),
            &fx.source(),
            jiff::SignedDuration::from_hours(72),
            now(),
            None,
        ))
        .unwrap();
    assert!(!report.attention_needed(), "{report:?}");
    fx.publish(&fx.request("1.1.0", now())).unwrap();
}

#[test]
fn tamper_matrix_gives_errors_naming_the_role_or_target() {
    let fx = Fixture::new();
    let t0 = now();
    fx.publish(&fx.request("1.0.0", t0)).unwrap();
    let meta = fx.metadata_dir();
    let ts_path = meta.join("timestamp.json");
    let ts_v1 = std::fs::read(&ts_path).unwrap();
    let datastore = fx.dir.path().join("datastore");
    let trusted = LoadOptions {
        datastore: Some(datastore.clone()),
        ..Default::default()
    };
    // Record v1 in the persistent datastore, then publish v2 and record it too.
    rt().block_on(validate(
        &fx.root_bytes(),
        &fx.source(),
        &trusted,
        &NoReporter,
    ))
    .unwrap();
    fx.publish(&fx.request("1.1.0", t0)).unwrap();
    rt().block_on(validate(
        &fx.root_bytes(),
        &fx.source(),
        &trusted,
        &NoReporter,
    ))
    .unwrap();

    // a) One byte of a target.
    let root_img = target_file(
        &fx.targets_dir(),
        "bottlerocket-aws-dev-x86_64-1.1.0-abcdef0-root.ext4.lz4",
    );
    let original = std::fs::read(&root_img).unwrap();
    flip_byte(&root_img, 1000);
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(
        report.failures[0].name,
        "bottlerocket-aws-dev-x86_64-1.1.0-abcdef0-root.ext4.lz4"
    );
    assert!(
        report.failures[0].error.to_lowercase().contains("hash"),
        "{}",
        report.failures[0].error
    );
    std::fs::write(&root_img, original).unwrap();

    // b) A signature byte of timestamp.json.
    let good_ts = std::fs::read(&ts_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&good_ts).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    v["signatures"][0]["sig"] = flipped.into();
    std::fs::write(&ts_path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let err = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap_err();
    let chain = pubsys::error::chain_string(&err);
    assert!(chain.contains("timestamp"), "{chain}");
    assert_eq!(err.exit_code(), 4);

    // c) Threshold not met: no signatures at all.
    v["signatures"] = serde_json::json!([]);
    std::fs::write(&ts_path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let err = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap_err();
    let chain = pubsys::error::chain_string(&err);
    assert!(
        chain.contains("timestamp") && chain.to_lowercase().contains("threshold"),
        "{chain}"
    );
    std::fs::write(&ts_path, &good_ts).unwrap();

    // d) Expired role: snapshot/targets/timestamp signed long ago.
    let fx2 = Fixture::new();
    fx2.publish(&fx2.request("1.0.0", "2020-01-01T00:00:00Z".parse().unwrap()))
        .unwrap();
    let err = rt()
        .block_on(validate(
            &fx2.root_bytes(),
            &fx2.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::Repo { source: abos_repo_core::Error::Expired { ref role, .. } } if role == "timestamp"),
        "{err:?}"
    );

    // e) Rolled-back timestamp: the old (validly signed) v1 timestamp served again.
    std::fs::write(&ts_path, &ts_v1).unwrap();
    let err = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &trusted,
            &NoReporter,
        ))
        .unwrap_err();
    let chain = pubsys::error::chain_string(&err);
    assert!(
        chain.contains("timestamp") && chain.contains("previously"),
        "{chain}"
    );
    std::fs::write(&ts_path, &good_ts).unwrap();
    rt().block_on(validate(
        &fx.root_bytes(),
        &fx.source(),
        &trusted,
        &NoReporter,
    ))
    .unwrap();
}

#[test]
fn a_repository_location_with_metadata_but_nothing_at_the_url_is_refused() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let mut req = fx.request("1.1.0", now());
    let empty = fx.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let url = pubsys::store::dir_url(&empty).unwrap();
    req.source = Some(RepoSource::new(url.clone(), url));
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::RepoLocationMismatch { .. }), "{err:?}");
    assert!(fx.store().has_metadata("timestamp.json").unwrap());
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn release_file_migrations_and_extra_targets_are_published() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let mig = fx.dir.path().join("migrate_v1.1.0_example.lz4");
    std::fs::write(&mig, b"migration binary").unwrap();
    let rel = fx.dir.path().join("Release.toml");
    std::fs::write(
        &rel,
        "version = \"1.1.0\"\n[migrations]\n\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_example.lz4\"]\n",
    )
    .unwrap();
    let mut req = fx.request("1.1.0", now());
    req.release_file = Some(rel);
    req.extra_targets = vec![mig.clone()];
    let out = fx.publish(&req).unwrap();
    assert!(out.migrations_added.is_empty());
    assert!(
        out.targets
            .iter()
            .any(|t| t.name == "migrate_v1.1.0_example.lz4")
    );
    let m = manifest_of(&fx, &fx.source());
    let path = m
        .find_migrations(&Version::new(1, 0, 0), &Version::new(1, 1, 0))
        .unwrap();
    assert_eq!(path.len(), 1);
    assert_eq!(path[0].to_string(), "migrate_v1.1.0_example.lz4");
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.targets, 8);

    // A manifest naming a migration the repository lacks fails validation, naming it.
    let rel2 = fx.dir.path().join("Release2.toml");
    std::fs::write(
        &rel2,
        "version = \"1.1.1\"\n[migrations]\n\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_example.lz4\"]\n\"(1.1.0, 1.1.1)\" = [\"migrate_v1.1.1_missing.lz4\"]\n",
    )
    .unwrap();
    let mut req = fx.request("1.1.1", now());
    req.release_file = Some(rel2);
    fx.publish(&req).unwrap();
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(report.failures[0].name, "migrate_v1.1.1_missing.lz4");
    assert!(
        report.failures[0]
            .error
            .contains("migration from 1.1.0 to 1.1.1"),
        "{report:?}"
    );

    // Reusing a target name with different content is a conflict, and nothing is written.
    std::fs::write(&mig, b"different migration binary").unwrap();
    let ts_before = std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap();
    let mut req = fx.request("1.2.0", now());
    req.extra_targets = vec![mig];
    req.release_file = None;
    let err = fx.publish(&req).unwrap_err();
    assert!(matches!(err, Error::TargetConflict { .. }), "{err:?}");
    assert!(
        err.to_string().contains("migrate_v1.1.0_example.lz4"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap(),
        ts_before
    );
}

#[test]
fn a_publisher_holding_the_lock_blocks_a_second_one() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let held = fx.store().lock().unwrap();
    let err = fx.publish(&fx.request("1.1.0", now())).unwrap_err();
    assert!(matches!(err, Error::RepoLocked { .. }), "{err:?}");
    assert_eq!(err.exit_code(), 5);
    drop(held);
    fx.publish(&fx.request("1.1.0", now())).unwrap();
}

#[test]
fn publishing_reads_the_existing_repository_over_http() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let server = Server::serve_dir(&fx.repo_dir);
    // Write the next version into a separate output store, reading the live one over HTTP.
    let out = pubsys::store::LocalStore::outdir(&fx.dir.path().join("out"), &fx.variant, fx.arch);
    let mut req = fx.request("1.1.0", now());
    req.source = Some(http_source(&server, &fx));
    let o = rt()
        .block_on(pubsys::release::publish(&req, &out, Arc::new(NoReporter)))
        .unwrap();
    assert!(!o.new_repository);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with(".manifest.json") && r.status == 200),
        "the existing manifest was read over HTTP: {:?}",
        server.requests()
    );
    // The output holds the new metadata; old targets stay where they are (synced separately).
    assert!(out.metadata_dir().join("timestamp.json").is_file());
    let new_targets: Vec<_> = std::fs::read_dir(out.targets_dir()).unwrap().collect();
    assert_eq!(
        new_targets.len(),
        4,
        "three new images and the new manifest"
    );
}

#[test]
fn root_rotation_and_moving_the_signing_roles_to_new_keys() {
    use test_support::tuf::{far_future, gen_ed25519_key, write_root};
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let refresh_req = |keys: Vec<KeySpec>, new_root: Option<std::path::PathBuf>| RefreshRequest {
        trusted_root: fx.root.clone(),
        keys,
        source: None,
        expiration: ExpirationPolicy::default(),
        expired: Expiry::Safe,
        datastore: None,
        new_root,
        now: now(),
    };
    let key_a = || vec![KeySpec::File(fx.key.path.clone())];

    // 1. repo-tools publishes root v2 (adds key B to every role), cross-signed by A and B.
    //    pubsys keeps publishing with A and never rewrites the root files.
    let b = gen_ed25519_key(&fx.dir.path().join("b.pk8"));
    write_root(
        &fx.metadata_dir().join("2.root.json"),
        2,
        &[&fx.key, &b],
        1,
        &[&fx.key, &b],
        far_future(),
    );
    let out = fx.publish(&fx.request("1.1.0", now())).unwrap();
    assert!(
        !out.committed
            .metadata_written
            .iter()
            .any(|m| m.ends_with("root.json"))
    );

    // 2. Move every role to key B alone with root v3 (signed by v2's root key A and by B).
    let v3 = fx.dir.path().join("3.root.json");
    write_root(&v3, 3, &[&b], 1, &[&fx.key, &b], far_future());
    // A root that skips a version, or that root v2's keys did not sign, is refused.
    let v4 = fx.dir.path().join("4.root.json");
    write_root(&v4, 4, &[&b], 1, &[&fx.key, &b], far_future());
    let err = rt()
        .block_on(pubsys::refresh::refresh(
            &refresh_req(vec![KeySpec::File(b.path.clone())], Some(v4)),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("expected 3"), "{err}");
    let v3_unsigned = fx.dir.path().join("3-self-only.root.json");
    let c = gen_ed25519_key(&fx.dir.path().join("c.pk8"));
    write_root(&v3_unsigned, 3, &[&c], 1, &[&c], far_future());
    let err = rt()
        .block_on(pubsys::refresh::refresh(
            &refresh_req(vec![KeySpec::File(c.path.clone())], Some(v3_unsigned)),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap_err();
    assert!(
        matches!(err, Error::RootRotation { .. })
            && err.to_string().contains("not signed by root version 2"),
        "{err}"
    );
    // Old key A cannot sign under root v3.
    let err = rt()
        .block_on(pubsys::refresh::refresh(
            &refresh_req(key_a(), Some(v3.clone())),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyNotInRoot {
                root_version: 3,
                ..
            }
        ),
        "{err:?}"
    );
    // With key B it goes through: 3.root.json is published with the re-signed metadata.
    let r = rt()
        .block_on(pubsys::refresh::refresh(
            &refresh_req(vec![KeySpec::File(b.path.clone())], Some(v3.clone())),
            &fx.store(),
            &NoReporter,
        ))
        .unwrap();
    assert_eq!(r.committed.metadata_written.first().unwrap(), "3.root.json");
    assert_eq!(
        std::fs::read(fx.metadata_dir().join("3.root.json")).unwrap(),
        std::fs::read(&v3).unwrap()
    );

    // 3. Clients that trust only root v1 walk v2 and v3; A can no longer publish, B can.
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    let err = fx.publish(&fx.request("1.2.0", now())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyNotInRoot {
                root_version: 3,
                ..
            }
        ),
        "{err:?}"
    );
    let mut req = fx.request("1.2.0", now());
    req.keys = vec![KeySpec::File(b.path.clone())];
    fx.publish(&req).unwrap();
    let report = rt()
        .block_on(validate(
            &fx.root_bytes(),
            &fx.source(),
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.manifest_updates, Some(3));
    assert_eq!(
        std::fs::read_to_string(fx.metadata_dir().join("1.root.json")).unwrap(),
        std::fs::read_to_string(&fx.root).unwrap(),
        "root v1 as published is untouched"
    );
}
