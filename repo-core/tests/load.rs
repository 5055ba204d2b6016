//! The core against real signed repositories: a directory signed with tough's editor, read as a
//! directory, over `file://` and over HTTP on 127.0.0.1:0.

use abos_repo_core::{
    Change, Error, Expiry, LoadOptions, MANIFEST_TARGET, MAX_MANIFEST_SIZE, Source, TrustedRoot,
    load, load_if_present, read_manifest, read_target_capped,
};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use test_support::http::Server;
use test_support::tuf::{TestKey, far_future, simple_root};
use tough::editor::RepositoryEditor;
use tough::editor::signed::PathExists;
use tough::key_source::{KeySource, LocalKeySource};

/// A signed repository under `dir`: `root.json`, `metadata/`, `targets/`.
struct Repo {
    dir: PathBuf,
    root: PathBuf,
    key: TestKey,
}

impl Repo {
    fn metadata(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    fn targets(&self) -> PathBuf {
        self.dir.join("targets")
    }

    fn dir_source(&self) -> Source {
        Source::from_dirs(&self.metadata(), &self.targets()).unwrap()
    }

    fn root_bytes(&self) -> Vec<u8> {
        TrustedRoot::read(&self.root).unwrap().bytes
    }

    fn keys(&self) -> Vec<Box<dyn KeySource>> {
        vec![Box::new(LocalKeySource {
            path: self.key.path.clone(),
        })]
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Signs a repository holding `manifest.json` (these bytes) and `a.bin`, every role expiring at
/// `expires`.
fn signed_repo(dir: &Path, manifest: &[u8], expires: jiff::Timestamp) -> Repo {
    let (root, key) = simple_root(dir);
    let input = dir.join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join(MANIFEST_TARGET), manifest).unwrap();
    std::fs::write(input.join("a.bin"), b"payload").unwrap();
    let repo = Repo {
        dir: dir.to_path_buf(),
        root,
        key,
    };
    rt().block_on(async {
        let mut editor = RepositoryEditor::new(&repo.root).await.unwrap();
        editor
            .add_target_paths(vec![input.join(MANIFEST_TARGET), input.join("a.bin")])
            .await
            .unwrap();
        sign_and_write(editor, &repo, &input, 1, expires).await;
    });
    repo
}

async fn sign_and_write(
    mut editor: RepositoryEditor,
    repo: &Repo,
    input: &Path,
    version: u64,
    expires: jiff::Timestamp,
) {
    let v = NonZeroU64::new(version).unwrap();
    editor
        .targets_version(v)
        .unwrap()
        .targets_expires(expires)
        .unwrap()
        .snapshot_version(v)
        .snapshot_expires(expires)
        .timestamp_version(v)
        .timestamp_expires(expires);
    let signed = editor.sign(&repo.keys()).await.unwrap();
    signed.write(repo.metadata()).await.unwrap();
    signed
        .copy_targets(input, repo.targets(), PathExists::Skip)
        .await
        .unwrap();
}

fn empty_manifest() -> Vec<u8> {
    br#"{"updates": [], "migrations": {}}"#.to_vec()
}

/// Loads `source`, reads the manifest and a target; returns the target names.
async fn inspect(repo: &Repo, source: &Source) -> Vec<String> {
    let loaded = load(&repo.root_bytes(), source, &LoadOptions::default())
        .await
        .unwrap_or_else(|e| panic!("load {}: {e:?}", source.metadata_url));
    let (manifest, bytes) = read_manifest(&loaded, source).await.unwrap();
    assert!(manifest.updates.is_empty());
    assert_eq!(bytes, empty_manifest());
    let a = read_target_capped(&loaded, source, "a.bin", 1024)
        .await
        .unwrap();
    assert_eq!(a.as_deref(), Some(&b"payload"[..]));
    assert_eq!(
        read_target_capped(&loaded, source, "absent.bin", 1024)
            .await
            .unwrap(),
        None
    );
    let mut names: Vec<String> = loaded
        .targets()
        .signed
        .targets
        .keys()
        .map(|n| n.raw().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn loads_a_signed_directory_over_file_and_http() {
    let dir = test_support::tempdir();
    let repo = signed_repo(dir.path(), &empty_manifest(), far_future());
    let want = vec!["a.bin".to_owned(), MANIFEST_TARGET.to_owned()];

    // A directory (made into file:// URLs here) ...
    let from_dirs = repo.dir_source();
    assert!(from_dirs.metadata_url.as_str().starts_with("file:///"));
    // ... the same given as file:// URLs without the trailing slash ...
    let file_urls = Source::new(
        format!("file://{}", repo.metadata().display())
            .parse()
            .unwrap(),
        format!("file://{}", repo.targets().display())
            .parse()
            .unwrap(),
    );
    assert_eq!(file_urls, from_dirs, "the trailing slash is added");
    // ... and over HTTP.
    let server = Server::serve_dir(dir.path());
    let http = Source::new(
        format!("{}metadata", server.url()).parse().unwrap(),
        format!("{}targets", server.url()).parse().unwrap(),
    );
    rt().block_on(async {
        assert_eq!(inspect(&repo, &from_dirs).await, want);
        assert_eq!(inspect(&repo, &file_urls).await, want);
        assert_eq!(inspect(&repo, &http).await, want);
    });
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/timestamp.json") && r.status == 200),
        "the HTTP source was really read"
    );
}

#[test]
fn expired_repo_is_refused_under_safe_and_loads_under_unsafe() {
    let dir = test_support::tempdir();
    let past: jiff::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    let repo = signed_repo(dir.path(), &empty_manifest(), past);
    let source = repo.dir_source();
    rt().block_on(async {
        let err = load(
            &repo.root_bytes(),
            &source,
            &LoadOptions::with_expiry(Expiry::from_allow_flag(false)),
        )
        .await
        .unwrap_err();
        match &err {
            Error::Expired {
                metadata_url, role, ..
            } => {
                assert_eq!(metadata_url, source.metadata_url.as_str());
                assert_eq!(role, "timestamp");
            }
            other => panic!("expected Expired, got {other:?}"),
        }
        assert!(!err.is_transport());
        assert!(
            err.to_string().contains(source.metadata_url.as_str()),
            "{err}"
        );

        let loaded = load(
            &repo.root_bytes(),
            &source,
            &LoadOptions::with_expiry(Expiry::from_allow_flag(true)),
        )
        .await
        .unwrap();
        // Under Unsafe the targets are still read, length and hash checked.
        let (manifest, _) = read_manifest(&loaded, &source).await.unwrap();
        assert!(manifest.updates.is_empty());
    });
    assert_eq!(Expiry::default(), Expiry::Safe);
    assert_eq!(
        tough::ExpirationEnforcement::from(Expiry::Unsafe),
        tough::ExpirationEnforcement::Unsafe
    );
}

#[test]
fn manifest_over_the_cap_is_refused_naming_the_url() {
    let dir = test_support::tempdir();
    let big = vec![b' '; usize::try_from(MAX_MANIFEST_SIZE).unwrap() + 1];
    let repo = signed_repo(dir.path(), &big, far_future());
    let server = Server::serve_dir(dir.path());
    let source = Source::new(
        format!("{}metadata/", server.url()).parse().unwrap(),
        format!("{}targets/", server.url()).parse().unwrap(),
    );
    rt().block_on(async {
        let loaded = load(&repo.root_bytes(), &source, &LoadOptions::default())
            .await
            .unwrap();
        server.clear_requests();
        let err = read_manifest(&loaded, &source).await.unwrap_err();
        assert!(
            matches!(err, Error::TargetTooLarge { length, max, .. }
                if length == MAX_MANIFEST_SIZE + 1 && max == MAX_MANIFEST_SIZE),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(source.targets_url.as_str()), "{text}");
        assert!(text.contains(MANIFEST_TARGET), "{text}");
        assert!(
            !server
                .requests()
                .iter()
                .any(|r| r.path.contains(MANIFEST_TARGET)),
            "refused before anything was fetched"
        );
    });
}

#[test]
fn missing_repo_is_none_or_a_named_error() {
    let dir = test_support::tempdir();
    let repo = signed_repo(dir.path(), &empty_manifest(), far_future());
    let elsewhere = dir.path().join("nothing-here");
    std::fs::create_dir(&elsewhere).unwrap();
    let source = Source::from_dirs(&elsewhere, &repo.targets()).unwrap();
    rt().block_on(async {
        let opts = LoadOptions::default();
        assert!(
            load_if_present(&repo.root_bytes(), &source, &opts)
                .await
                .unwrap()
                .is_none()
        );
        let err = load(&repo.root_bytes(), &source, &opts).await.unwrap_err();
        assert!(matches!(err, Error::Missing { .. }), "{err:?}");
        assert!(err.is_transport());
        assert!(
            err.to_string().contains(source.metadata_url.as_str()),
            "{err}"
        );
    });
}

#[test]
fn a_tampered_target_is_a_content_mismatch() {
    let dir = test_support::tempdir();
    let repo = signed_repo(dir.path(), &empty_manifest(), far_future());
    let source = repo.dir_source();
    // Replace a.bin's bytes (same length) behind the metadata's back.
    let file = std::fs::read_dir(repo.targets())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".a.bin"))
        .unwrap()
        .path();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, b"PAYLOAD").unwrap();
    rt().block_on(async {
        let loaded = load(&repo.root_bytes(), &source, &LoadOptions::default())
            .await
            .unwrap();
        let err = read_target_capped(&loaded, &source, "a.bin", 1024)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::ReadTarget { .. }), "{err:?}");
        assert!(err.is_content_mismatch(), "{err:?}");
        assert!(!err.is_transport());
    });
}

#[test]
fn loading_for_change_re_signs_the_existing_repository() {
    let dir = test_support::tempdir();
    let repo = signed_repo(dir.path(), &empty_manifest(), far_future());
    let source = repo.dir_source();
    let input = dir.path().join("input2");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("b.bin"), b"second").unwrap();
    rt().block_on(async {
        let loaded = load(&repo.root_bytes(), &source, &LoadOptions::default())
            .await
            .unwrap();
        let mut change = Change::from_repo(loaded).await.unwrap();
        assert_eq!(change.root.signed.version.get(), 1);
        change
            .editor
            .add_target_path(input.join("b.bin"))
            .await
            .unwrap();
        sign_and_write(change.editor, &repo, &input, 2, far_future()).await;

        let reloaded = load(&repo.root_bytes(), &source, &LoadOptions::default())
            .await
            .unwrap();
        assert_eq!(reloaded.timestamp().signed.version.get(), 2);
        let names: Vec<&str> = reloaded
            .targets()
            .signed
            .targets
            .keys()
            .map(|n| n.raw())
            .collect();
        for want in ["a.bin", "b.bin", MANIFEST_TARGET] {
            assert!(names.contains(&want), "{want} kept or added: {names:?}");
        }
        let b = read_target_capped(&reloaded, &source, "b.bin", 1024)
            .await
            .unwrap();
        assert_eq!(b.as_deref(), Some(&b"second"[..]));
    });
}

#[test]
fn trusted_root_errors_name_the_file() {
    let dir = test_support::tempdir();
    let missing = dir.path().join("no-root.json");
    let err = TrustedRoot::read(&missing).unwrap_err();
    assert!(matches!(err, Error::ReadRoot { .. }), "{err:?}");
    assert!(err.to_string().contains("no-root.json"), "{err}");
    let bad = dir.path().join("bad-root.json");
    std::fs::write(&bad, b"{}").unwrap();
    let err = TrustedRoot::read(&bad).unwrap_err();
    assert!(matches!(err, Error::ParseRoot { .. }), "{err:?}");
    assert!(err.to_string().contains("bad-root.json"), "{err}");
}
