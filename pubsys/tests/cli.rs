//! The `pubsys` binary end to end: exit codes, text and JSON output, error rendering.

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

const DEFAULT_WAVES: &str = r#"
[[waves]]
start_after = '1 hour'
fleet_percentage = 1
[[waves]]
start_after = '4 hours'
fleet_percentage = 5
[[waves]]
start_after = '1 day'
fleet_percentage = 15
[[waves]]
start_after = '2 days'
fleet_percentage = 40
[[waves]]
start_after = '4 days'
fleet_percentage = 60
[[waves]]
start_after = '5 days'
fleet_percentage = 90
[[waves]]
start_after = '6 days'
fleet_percentage = 100
"#;

fn pubsys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pubsys"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pubsys")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(path).unwrap(),
    ))
}

/// Writes os-image's build description next to the images.
fn build_description(fx: &Fixture, version: &str, corrupt_hash: bool) -> std::path::PathBuf {
    let images = fx.images(version, 32 * 1024);
    let art = |path: &Path| {
        let size = std::fs::metadata(path).unwrap().len();
        let mut sha = sha256_hex(path);
        if corrupt_hash {
            sha.replace_range(0..1, if sha.starts_with('0') { "1" } else { "0" });
        }
        update_metadata::Artifact {
            file_name: path.file_name().unwrap().to_str().unwrap().into(),
            size,
            sha256: sha,
            uncompressed_size: size,
            uncompressed_sha256: sha256_hex(path),
        }
    };
    let desc = update_metadata::BuildDescription {
        name: "bottlerocket".into(),
        variant: fx.variant.clone(),
        arch: fx.arch,
        version: version.parse().unwrap(),
        build_id: "abcdef0".into(),
        artifacts: update_metadata::Artifacts {
            boot: art(&images.boot),
            root: art(&images.root),
            hash: art(&images.hash),
        },
        verity: update_metadata::VerityInfo {
            root_hash: "00".repeat(32),
            salt: "11".repeat(32),
            data_blocks: 8,
            data_block_size: 4096,
            hash_block_size: 4096,
            hash_algorithm: "sha256".into(),
        },
        disk_image: None,
        root_fs: "ext4".into(),
    };
    let path = images.boot.parent().unwrap().join("build.json");
    desc.write_atomic(&path).unwrap();
    path
}

#[test]
fn repo_from_build_description_with_waves_then_check_and_validate() {
    let fx = Fixture::new();
    let waves = fx.dir.path().join("default-waves.toml");
    std::fs::write(&waves, DEFAULT_WAVES).unwrap();
    let desc = build_description(&fx, "1.0.0", false);
    let out = pubsys(&[
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        p(&fx.repo_dir),
        "--build-description",
        p(&desc),
        "--wave-policy",
        p(&waves),
        "--release-start-time",
        "2030-01-01T17:00:00Z",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["command"], "repo");
    // Progress goes to stderr as JSON lines, never into stdout's single JSON document.
    let events: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "phase" && e["phase"] == "writing metadata"),
        "{events:?}"
    );
    assert_eq!(json["new_repository"], true);
    assert_eq!(json["waves"], 7);

    // The manifest carries Bottlerocket's wave keys for the default policy.
    let manifest_file = target_file(&fx.targets_dir(), "manifest.json");
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_file).unwrap()).unwrap();
    let w = &m["updates"][0]["waves"];
    assert_eq!(w["0"], "2030-01-01T18:00:00Z");
    assert_eq!(w["20"], "2030-01-01T21:00:00Z");
    assert_eq!(w["1843"], "2030-01-07T17:00:00Z");
    assert_eq!(
        m["updates"][0]["images"]["root"],
        "bottlerocket-aws-dev-x86_64-1.0.0-abcdef0-root.ext4.lz4"
    );

    // Expirations from Bottlerocket's policy file: timestamp in 1 week, snapshot/targets in 2,
    // counted from the signing time (whole seconds).
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap())
            .unwrap();
    let version = ts["signed"]["version"].as_i64().unwrap();
    let expires: jiff::Timestamp = ts["signed"]["expires"].as_str().unwrap().parse().unwrap();
    let lifetime = expires.as_second() - version;
    assert!((604_800..604_800 + 5).contains(&lifetime), "{lifetime}");
    let check = |within: &str| {
        pubsys(&[
            "check-repo-expirations",
            "--root-role-path",
            p(&fx.root),
            "--repo-dir",
            p(&fx.repo_dir),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--within",
            within,
        ])
    };
    let ok = check("1 day");
    assert_eq!(
        check("2099-01-01T00:00:00Z").status.code(),
        Some(1),
        "an RFC3339 limit works too"
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("timestamp"),
        "{}",
        text(&ok.stdout)
    );
    let soon = check("10 days");
    assert_eq!(soon.status.code(), Some(1), "{}", text(&soon.stdout));
    let table = text(&soon.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("timestamp") && l.contains("EXPIRES in 6d")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("targets") && l.trim_end().ends_with("ok")),
        "{table}"
    );

    // validate-repo over the repo dir; then one flipped byte gives exit 1 naming the target.
    let validate = || {
        pubsys(&[
            "validate-repo",
            "--root-role-path",
            p(&fx.root),
            "--repo-dir",
            p(&fx.repo_dir),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
        ])
    };
    let v = validate();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}{}",
        text(&v.stdout),
        text(&v.stderr)
    );
    let hash_img = target_file(
        &fx.targets_dir(),
        "bottlerocket-aws-dev-x86_64-1.0.0-abcdef0-root.verity.lz4",
    );
    flip_byte(&hash_img, -1);
    let v = validate();
    assert_eq!(v.status.code(), Some(1));
    assert!(
        text(&v.stdout)
            .contains("FAILED bottlerocket-aws-dev-x86_64-1.0.0-abcdef0-root.verity.lz4"),
        "{}",
        text(&v.stdout)
    );
}

#[test]
fn build_description_mismatch_is_refused_before_writing() {
    let fx = Fixture::new();
    let desc = build_description(&fx, "1.0.0", true);
    let out = pubsys(&[
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        p(&fx.repo_dir),
        "--build-description",
        p(&desc),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: Input file") && err.contains("does not match the build description"),
        "{err}"
    );
    assert!(!fx.metadata_dir().join("timestamp.json").exists());
    assert!(!fx.targets_dir().exists());
}

#[test]
fn errors_render_with_causes_hints_and_exit_codes() {
    let fx = Fixture::new();
    let images = fx.images("1.0.0", 1024);
    let base = |key: &str, extra: &[&str]| {
        let mut args = vec![
            "repo",
            "--root-role-path",
            p(&fx.root),
            "--repo-dir",
            p(&fx.repo_dir),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--version",
            "v1.0.0",
            "--boot",
            p(&images.boot),
            "--root",
            p(&images.root),
            "--hash",
            p(&images.hash),
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.push("--key".into());
        args.push(key.into());
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pubsys(&refs)
    };
    let missing = fx.dir.path().join("nokey.pk8");
    let out = base(p(&missing), &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: Failed to read signing key"),
        "{err}"
    );
    assert!(
        err.contains("  Caused by: No such file or directory"),
        "{err}"
    );

    let out = base(p(&fx.key.path), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = base(p(&fx.key.path), &[]);
    assert_eq!(out.status.code(), Some(5));
    let err = text(&out.stderr);
    assert!(
        err.contains("already holds release aws-dev x86_64 1.0.0") && err.contains("hint:"),
        "{err}"
    );

    // --outdir that already holds this variant/arch.
    let outdir = fx.dir.path().join("out");
    std::fs::create_dir_all(outdir.join("aws-dev/x86_64")).unwrap();
    std::fs::write(outdir.join("aws-dev/x86_64/timestamp.json"), b"{}").unwrap();
    let out = pubsys(&[
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--outdir",
        p(&outdir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "2.0.0",
        "--boot",
        p(&images.boot),
        "--root",
        p(&images.root),
        "--hash",
        p(&images.hash),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("already exists"));

    // --outdir: a fresh Bottlerocket-layout copy built from the existing repository.
    let outdir2 = fx.dir.path().join("out2");
    let meta_url = format!("file://{}/metadata/aws-dev/x86_64/", fx.repo_dir.display());
    let targets_url = format!("file://{}/targets/", fx.repo_dir.display());
    let images2 = fx.images("1.1.0", 1024);
    let out = pubsys(&[
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--outdir",
        p(&outdir2),
        "--metadata-url",
        &meta_url,
        "--targets-url",
        &targets_url,
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.1.0",
        "--boot",
        p(&images2.boot),
        "--root",
        p(&images2.root),
        "--hash",
        p(&images2.hash),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(outdir2.join("aws-dev/x86_64/timestamp.json").is_file());
    assert!(outdir2.join("aws-dev/x86_64/1.root.json").is_file());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["new_repository"], false);
    assert_eq!(json["migrations_added"][0], "(1.0.0, 1.1.0)");

    // JSON errors on stdout too.
    let out = base(p(&missing), &["--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["exit_code"], 3);
}

#[test]
fn yank_and_refresh_through_the_binary() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    fx.publish(&fx.request("1.1.0", now())).unwrap();
    let common = [
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        p(&fx.repo_dir),
    ];
    let mut args = vec!["yank"];
    args.extend(common);
    args.extend([
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--max-version",
        "1.0.0",
    ]);
    let out = pubsys(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("max_version now 1.0.0; removed []; withheld [1.1.0]"),
        "{}",
        text(&out.stdout)
    );

    let mut args = vec!["refresh-repo"];
    args.extend(common);
    args.extend(["--variant", "aws-dev", "--arch", "x86_64", "--json"]);
    let out = pubsys(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["version"].as_u64().unwrap() > json["previous_version"].as_u64().unwrap());
    assert_eq!(
        json["committed"]["targets_written"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        json["committed"]["metadata_written"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        "timestamp.json"
    );
}

#[test]
fn manifest_editor_round_trip_and_refusals() {
    let fx = Fixture::new();
    let m = fx.dir.path().join("manifest.json");
    let waves = fx.dir.path().join("w.toml");
    std::fs::write(&waves, DEFAULT_WAVES).unwrap();
    let ok = |args: &[&str]| {
        let out = pubsys(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        out
    };
    ok(&["manifest", "init", p(&m)]);
    assert_eq!(
        std::fs::read_to_string(&m)
            .unwrap()
            .replace([' ', '\n'], ""),
        r#"{"updates":[],"migrations":{}}"#
    );
    let out = pubsys(&["manifest", "init", p(&m)]);
    assert_eq!(out.status.code(), Some(5), "init refuses to clobber");
    for v in ["1.0.0", "1.1.0"] {
        ok(&[
            "manifest",
            "add-update",
            p(&m),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--version",
            v,
            "--boot",
            &format!("b-{v}.lz4"),
            "--root",
            &format!("r-{v}.lz4"),
            "--hash",
            &format!("h-{v}.lz4"),
            "--assume-no-migrations",
        ]);
    }
    ok(&[
        "manifest",
        "set-waves",
        p(&m),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.1.0",
        "--wave-policy",
        p(&waves),
        "--start",
        "2030-01-01T00:00:00Z",
    ]);
    let before = std::fs::read(&m).unwrap();
    // A max_version below every version would leave nothing to offer: refused, file unchanged.
    let out = pubsys(&[
        "manifest",
        "set-max-version",
        p(&m),
        "--max-version",
        "0.9.0",
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("error: The manifest would become invalid"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&m).unwrap(), before);
    // Removing an entry that is not there.
    let out = pubsys(&[
        "manifest",
        "remove-update",
        p(&m),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "3.0.0",
    ]);
    assert_eq!(out.status.code(), Some(6));

    ok(&[
        "manifest",
        "set-max-version",
        p(&m),
        "--max-version",
        "1.0.0",
        "--arch",
        "x86_64",
    ]);
    let out = ok(&["manifest", "show", p(&m), "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let updates = json["manifest"]["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2);
    assert!(updates.iter().all(|u| u["max_version"] == "1.0.0"));
    assert_eq!(
        json["manifest"]["migrations"]["(1.0.0, 1.1.0)"],
        serde_json::json!([])
    );
    assert_eq!(updates[1]["waves"]["0"], "2030-01-01T01:00:00Z");
    ok(&[
        "manifest",
        "remove-update",
        p(&m),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.1.0",
    ]);
    ok(&["manifest", "validate", p(&m)]);

    // set-migrations from a Release.toml.
    let rel = fx.dir.path().join("Release.toml");
    std::fs::write(
        &rel,
        "version = \"1.1.0\"\n[migrations]\n\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_x.lz4\"]\n",
    )
    .unwrap();
    ok(&[
        "manifest",
        "set-migrations",
        p(&m),
        "--release-file",
        p(&rel),
    ]);
    let shown: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
    assert_eq!(
        shown["migrations"]["(1.0.0, 1.1.0)"][0],
        "migrate_v1.1.0_x.lz4"
    );
}

#[test]
fn help_and_generated_docs() {
    let out = pubsys(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for word in [
        "repo",
        "validate-repo",
        "check-repo-expirations",
        "refresh-repo",
        "yank",
        "manifest",
        "Exit status:",
    ] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    let dir = test_support::tempdir();
    let out = pubsys(&["generate-docs", "--out", p(dir.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for f in [
        "pubsys.1",
        "pubsys-repo.1",
        "pubsys-manifest-add-update.1",
        "pubsys.bash",
        "_pubsys",
        "pubsys.fish",
    ] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let usage = pubsys(&["repo", "--bogus"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn refresh_into_outdir_and_tampered_metadata_through_the_binary() {
    let fx = Fixture::new();
    fx.publish(&fx.request("1.0.0", now())).unwrap();
    let outdir = fx.dir.path().join("refreshed");
    let out = pubsys(&[
        "refresh-repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        p(&fx.repo_dir),
        "--outdir",
        p(&outdir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(outdir.join("aws-dev/x86_64/timestamp.json").is_file());
    // The in-place repository is untouched by an --outdir refresh.
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap())
            .unwrap();
    let new: serde_json::Value = serde_json::from_slice(
        &std::fs::read(outdir.join("aws-dev/x86_64/timestamp.json")).unwrap(),
    )
    .unwrap();
    assert!(new["signed"]["version"].as_u64() > live["signed"]["version"].as_u64());
    // Refreshing into the same outdir again is refused.
    let again = pubsys(&[
        "refresh-repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
        "--repo-dir",
        p(&fx.repo_dir),
        "--outdir",
        p(&outdir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ]);
    assert_eq!(again.status.code(), Some(5));

    // A flipped signature byte: exit 4 and an error chain naming the role.
    let ts = fx.metadata_dir().join("timestamp.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&ts).unwrap()).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_string();
    v["signatures"][0]["sig"] = format!(
        "{}{}",
        if sig.starts_with('a') { "b" } else { "a" },
        &sig[1..]
    )
    .into();
    std::fs::write(&ts, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = pubsys(&[
        "validate-repo",
        "--root-role-path",
        p(&fx.root),
        "--repo-dir",
        p(&fx.repo_dir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ]);
    assert_eq!(out.status.code(), Some(4));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: Failed to load repository from file://"),
        "{err}"
    );
    assert!(
        err.contains("Caused by: Failed to verify timestamp metadata"),
        "{err}"
    );
    eprintln!("{err}");
}

#[test]
fn infra_toml_supplies_keys_and_urls_and_pins_the_root() {
    let fx = Fixture::new();
    let sha512 = hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA512,
        &std::fs::read(&fx.root).unwrap(),
    ));
    let infra = fx.dir.path().join("Infra.toml");
    let write_infra = |sha: &str| {
        std::fs::write(
            &infra,
            format!(
                "[repo.default]\nroot_role_url = \"https://example.com/root.json\"\nroot_role_sha512 = \"{sha}\"\n\
                 signing_keys = {{ file = {{ path = \"{}\" }} }}\n\
                 metadata_base_url = \"file://{}/metadata/\"\ntargets_url = \"file://{}/targets/\"\n\n\
                 [aws]\nregions = [\"us-west-2\"]\n",
                fx.key.path.display(),
                fx.repo_dir.display(),
                fx.repo_dir.display()
            ),
        )
        .unwrap();
    };
    write_infra(&sha512);
    let run = |version: &str, place: &[&str]| {
        let images = fx.images(version, 4096);
        let mut args = vec![
            "--infra-config-path",
            p(&infra),
            "repo",
            "--root-role-path",
            p(&fx.root),
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--version",
            version,
            "--boot",
            p(&images.boot),
            "--root",
            p(&images.root),
            "--hash",
            p(&images.hash),
            "--json",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.extend(place.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        pubsys(&refs)
    };
    // No --key: Infra's signing key; the infra URLs have no repository yet, so a new one.
    let out = run("1.0.0", &["--repo-dir", p(&fx.repo_dir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // --outdir: the existing repository is read from Infra's metadata_base_url/targets_url.
    let outdir = fx.dir.path().join("out");
    let out = run("1.1.0", &["--outdir", p(&outdir)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["new_repository"], false);
    assert!(outdir.join("aws-dev/x86_64/timestamp.json").is_file());

    // A root that does not match root_role_sha512 is refused.
    write_infra(&"ab".repeat(64));
    let out = run("1.2.0", &["--repo-dir", p(&fx.repo_dir)]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("root_role_sha512"),
        "{}",
        text(&out.stderr)
    );

    // Without Infra.toml and without --key: a clear error.
    let images = fx.images("1.3.0", 4096);
    let out = pubsys(&[
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--repo-dir",
        p(&fx.repo_dir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.3.0",
        "--boot",
        p(&images.boot),
        "--root",
        p(&images.root),
        "--hash",
        p(&images.hash),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("No signing keys given"),
        "{}",
        text(&out.stderr)
    );
}

/// Issue 12: `manifest add-update` refused on the migration chain names the flag that skips it.
#[test]
fn issue_12_add_update_names_the_migration_flag() {
    let dir = test_support::tempdir();
    let m = dir.path().join("manifest.json");
    let add = |v: &str, extra: &[&str]| {
        let mut args = vec![
            "manifest".to_owned(),
            "add-update".to_owned(),
            p(&m).to_owned(),
        ];
        for (k, val) in [
            ("--variant", "aws-dev".to_owned()),
            ("--arch", "x86_64".to_owned()),
            ("--version", v.to_owned()),
            ("--boot", format!("b-{v}.lz4")),
            ("--root", format!("r-{v}.lz4")),
            ("--hash", format!("h-{v}.lz4")),
        ] {
            args.push(k.to_owned());
            args.push(val);
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pubsys(&args)
    };
    assert_eq!(pubsys(&["manifest", "init", p(&m)]).status.code(), Some(0));
    let first = add("1.0.0", &["--assume-no-migrations"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let before = std::fs::read(&m).unwrap();
    let out = add("1.1.0", &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("chain is broken"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("--assume-no-migrations"),
        "{err}"
    );
    assert_eq!(std::fs::read(&m).unwrap(), before, "nothing written");
    let out = add("1.1.0", &["--assume-no-migrations"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
