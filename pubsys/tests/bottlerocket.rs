//! Bottlerocket drop-in: the command lines twoliter's Makefile.toml runs (`cargo make repo`,
//! `validate-repo`, `check-repo-expirations`, `refresh-repo`), flag for flag, against a
//! repository served over HTTP on 127.0.0.1 and published the way Bottlerocket publishes
//! (a fresh --outdir per release, synced to the served location, targets first).

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use test_support::http::Server;

fn pubsys(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pubsys"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pubsys")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `aws s3 sync OUT s3://…` stand-in: copies the tree, targets before metadata.
fn sync(from: &Path, to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let dest = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &dest);
            } else if !dest.exists() || e.file_name() == "timestamp.json" {
                std::fs::copy(e.path(), &dest).unwrap();
            }
        }
    }
    copy(&from.join("targets"), &to.join("targets"));
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "targets" {
            copy(&e.path(), &to.join(e.file_name()));
        }
    }
}

/// The file under `targets/` holding target `name`.
fn target_path(out: &Path, name: &str) -> PathBuf {
    target_file(&out.join("targets"), name)
}

const POLICY: &str = "snapshot_expiration = '2 weeks'\ntargets_expiration = '2 weeks'\ntimestamp_expiration = '1 week'\n";
const WAVES: &str = "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 1\n[[waves]]\nstart_after = '1 day'\nfleet_percentage = 100\n";

#[test]
fn twoliter_makefile_command_lines() {
    let fx = Fixture::new();
    let d = fx.dir.path();
    let published = d.join("published");
    std::fs::create_dir_all(&published).unwrap();
    let server = Server::serve_dir(&published);
    let url = server.url();
    let infra = d.join("Infra.toml");
    std::fs::write(
        &infra,
        format!("[repo.default]\nmetadata_base_url = \"{url}\"\ntargets_url = \"{url}targets/\"\n"),
    )
    .unwrap();
    let policy = d.join("2w-2w-1w.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let waves = d.join("default-waves.toml");
    std::fs::write(&waves, WAVES).unwrap();
    let build = d.join("build");
    std::fs::create_dir_all(build.join("migrations")).unwrap();

    // `cargo make repo` for 1.0.0 and then 1.1.0, each into its own output directory.
    let repo_release = |version: &str, migrations: &str| -> (Output, PathBuf, Vec<PathBuf>) {
        let images = fx.images(version, 8192);
        let release = d.join(format!("Release-{version}.toml"));
        std::fs::write(
            &release,
            format!("version = \"{version}\"\n[migrations]\n{migrations}"),
        )
        .unwrap();
        let migration = build.join(format!("migrations/migrate_v{version}_settings.lz4"));
        std::fs::write(&migration, format!("migration for {version}")).unwrap();
        let kit = build.join(format!("aws-dev-x86_64-kmod-kit-v{version}.tar.xz"));
        std::fs::write(&kit, format!("kit {version}").repeat(100)).unwrap();
        let os_image = build.join(format!(
            "bottlerocket-aws-dev-x86_64-{version}-abcdef0.img.lz4"
        ));
        std::fs::write(&os_image, format!("disk {version}").repeat(300)).unwrap();
        let outdir = build.join(format!("repos/default/bottlerocket-{version}-abcdef0"));
        let out = pubsys(&[
            "--infra-config-path",
            p(&infra),
            "repo",
            "--repo",
            "default",
            "--arch",
            "x86_64",
            "--version",
            version,
            "--variant",
            "aws-dev",
            "--boot-image",
            p(&images.boot),
            "--root-image",
            p(&images.root),
            "--hash-image",
            p(&images.hash),
            "--copy-target",
            p(&migration),
            "--link-target",
            p(&kit),
            "--link-target",
            p(&os_image),
            "--repo-expiration-policy-path",
            p(&policy),
            "--release-config-path",
            p(&release),
            "--wave-policy-path",
            p(&waves),
            "--root-role-path",
            p(&fx.root),
            "--default-key-path",
            p(&fx.key.path),
            "--release-start-time",
            "in 1 hours",
            "--outdir",
            p(&outdir),
        ]);
        (out, outdir, vec![migration, kit, os_image])
    };

    let (out, outdir, extras) = repo_release("1.0.0", "");
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Created repository"),
        "{}",
        show(&out)
    );
    assert!(outdir.join("aws-dev/x86_64/timestamp.json").is_file());
    // --copy-target is a copy, --link-target a link to the very file.
    let [migration, kit, os_image] = &extras[..] else {
        unreachable!()
    };
    let ino = |path: &Path| std::fs::metadata(path).unwrap().ino();
    let name = |path: &Path| path.file_name().unwrap().to_str().unwrap().to_owned();
    assert_ne!(ino(&target_path(&outdir, &name(migration))), ino(migration));
    assert_eq!(ino(&target_path(&outdir, &name(kit))), ino(kit));
    assert_eq!(ino(&target_path(&outdir, &name(os_image))), ino(os_image));
    sync(&outdir, &published);

    // REPO_VALIDATE_TARGETS=true: validate-repo --validate-targets, over HTTP via Infra.toml.
    let validate = || {
        pubsys(&[
            "--infra-config-path",
            p(&infra),
            "validate-repo",
            "--repo",
            "default",
            "--arch",
            "x86_64",
            "--variant",
            "aws-dev",
            "--root-role-path",
            p(&fx.root),
            "--validate-targets",
        ])
    };
    let out = validate();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // Three images, the copied migration, two linked files, manifest.json.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(": 7 targets,"),
        "{}",
        show(&out)
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.contains("kmod-kit")),
        "the linked kit was downloaded and verified"
    );

    let out = pubsys(&[
        "--infra-config-path",
        p(&infra),
        "check-repo-expirations",
        "--repo",
        "default",
        "--arch",
        "x86_64",
        "--variant",
        "aws-dev",
        "--root-role-path",
        p(&fx.root),
        "--expiration-limit",
        "3 days",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // The next release reads the live repository from Infra.toml's URLs.
    let (out, outdir, _) = repo_release(
        "1.1.0",
        "\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_settings.lz4\"]\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("Added release aws-dev x86_64 1.1.0"),
        "{}",
        show(&out)
    );
    sync(&outdir, &published);
    let out = validate();
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));

    // `cargo make refresh-repo` (REPO_UNSAFE_REFRESH opt-in adds --unsafe-refresh).
    let refreshed = build.join("repos/default/refreshed");
    let out = pubsys(&[
        "--infra-config-path",
        p(&infra),
        "refresh-repo",
        "--repo",
        "default",
        "--arch",
        "x86_64",
        "--variant",
        "aws-dev",
        "--root-role-path",
        p(&fx.root),
        "--default-key-path",
        p(&fx.key.path),
        "--repo-expiration-policy-path",
        p(&policy),
        "--outdir",
        p(&refreshed),
        "--unsafe-refresh",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(refreshed.join("aws-dev/x86_64/timestamp.json").is_file());
}

#[test]
fn unsafe_refresh_loads_an_expired_repository() {
    let fx = Fixture::new();
    // Published long ago: every role has expired.
    let then: jiff::Timestamp = "2020-01-01T00:00:00Z".parse().unwrap();
    fx.publish(&fx.request("1.0.0", then)).unwrap();
    let infra = fx.dir.path().join("Infra.toml");
    std::fs::write(
        &infra,
        format!(
            "[repo.default]\nmetadata_base_url = \"file://{}/metadata/\"\ntargets_url = \"file://{}/targets/\"\n",
            fx.repo_dir.display(),
            fx.repo_dir.display()
        ),
    )
    .unwrap();
    let refresh = |outdir: &Path, unsafe_refresh: bool| {
        let mut args = vec![
            "--infra-config-path",
            p(&infra),
            "refresh-repo",
            "--repo",
            "default",
            "--arch",
            "x86_64",
            "--variant",
            "aws-dev",
            "--root-role-path",
            p(&fx.root),
            "--default-key-path",
            p(&fx.key.path),
            "--outdir",
            p(outdir),
        ];
        if unsafe_refresh {
            args.push("--unsafe-refresh");
        }
        pubsys(&args)
    };
    let out = refresh(&fx.dir.path().join("out1"), false);
    assert_eq!(out.status.code(), Some(4), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        show(&out)
    );
    let out2 = fx.dir.path().join("out2");
    let out = refresh(&out2, true);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out2.join("aws-dev/x86_64/timestamp.json")).unwrap())
            .unwrap();
    let expires: jiff::Timestamp = ts["signed"]["expires"].as_str().unwrap().parse().unwrap();
    assert!(expires > jiff::Timestamp::now(), "{expires}");
}
