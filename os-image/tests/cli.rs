//! The `os-image` binary: exit codes, error rendering, JSON output, docs.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_os-image"))
}

fn tools() -> bool {
    ["mkfs.ext4", "debugfs", "resize2fs", "dumpe2fs", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

fn build(rootfs: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args([
            "build",
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--build-id",
            "c0ffee",
            "--small-layout",
        ])
        .arg("--rootfs")
        .arg(rootfs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1650000000")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn build_verify_boot_check_and_tamper() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "hi\n").unwrap();
    let out = dir.path().join("out");
    let o = build(&root, &out, &["--version", "3.1.4", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["outcome"], "built");
    // Progress went to stderr as JSON lines.
    let first = text(&o.stderr).lines().next().unwrap().to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&first).unwrap()["step"].is_string());
    let disk = out.join(
        json["description"]["disk_image"]["file_name"]
            .as_str()
            .unwrap(),
    );

    let o = bin().arg("verify").arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("set A: aws-dev 3.1.4 (c0ffee)"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("set B: empty"));

    let o = bin()
        .args(["boot-check", "--json", "--set", "a", "--disk"])
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["system"]["os_release"]["VERSION_ID"], "3.1.4");

    let o = bin()
        .args(["boot-check", "--set", "b", "--disk"])
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("BOTTLEROCKET-BOOT-B holds no boot filesystem"),
        "{}",
        text(&o.stderr)
    );

    // Flip one byte of the hash tree's leaf level in HASH-A: verify fails with exit 1.
    let sp = signpost::Disk::open_read_only(&disk).unwrap();
    let hash = sp.set(signpost::SetName::A).unwrap().hash;
    drop(sp);
    {
        use std::io::{Read, Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&disk)
            .unwrap();
        f.seek(std::io::SeekFrom::Start(hash.first_byte + 4096 + 3))
            .unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        f.seek(std::io::SeekFrom::Start(hash.first_byte + 4096 + 3))
            .unwrap();
        f.write_all(&[b[0] ^ 1]).unwrap();
    }
    let o = bin().arg("verify").arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("error: set A failed verification\n  Caused by: verity "),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn usage_and_environment_errors() {
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let out = dir.path().join("out");

    let o = build(&root, &out, &["--version", "1.two.3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("invalid value '1.two.3' for '--version <SEMVER>'"),
        "{}",
        text(&o.stderr)
    );

    let o = build(&root, &out, &["--version", "1.0.0", "--build-id", "bad/id"]);
    assert_eq!(o.status.code(), Some(2));

    // lz4 lives in /usr/bin: with an empty PATH it is missing (the sbin tools are still found).
    let o = bin()
        .args([
            "build",
            "--variant",
            "v",
            "--arch",
            "x86_64",
            "--version",
            "1.0.0",
            "--build-id",
            "b",
            "--small-layout",
        ])
        .arg("--rootfs")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .env("PATH", dir.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: missing tool `lz4` (install the Debian package `lz4`)"),
        "{err}"
    );
    assert!(
        err.contains("hint: apt-get install -y --no-install-recommends lz4"),
        "{err}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn generate_docs_writes_pages_and_completions() {
    let dir = test_support::tempdir();
    let o = bin()
        .args(["generate-docs", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in [
        "os-image.1",
        "os-image-build.1",
        "os-image-verify.1",
        "os-image-boot-check.1",
        "os-image.bash",
        "_os-image",
        "os-image.fish",
    ] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 100, "{f}");
    }
}

/// Issue 11: `--updog-toml` is checked with updog's own parser before anything is built: a file
/// updog would refuse is refused here with exit 2 and the parser's message (key, file, line).
#[test]
fn updog_toml_is_checked_with_updogs_parser() {
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let good = "metadata_base_url = \"https://r.example/metadata/\"\n\
                targets_base_url = \"https://r.example/targets/\"\nseed = 5\n";
    for (name, content, want) in [
        (
            "typo",
            good.replace("seed = 5", "seeed = 5"),
            ":3: unknown key `seeed`; did you mean `seed`?",
        ),
        (
            "ftp",
            good.replace("https://r.example/targets/", "ftp://r.example/targets/"),
            ":2: `targets_base_url` = \"ftp://r.example/targets/\" uses the scheme \"ftp\"",
        ),
        (
            "range",
            good.replace("seed = 5", "seed = 2048"),
            ":3: `seed` = 2048 is invalid",
        ),
        (
            "missing",
            good.replace("seed = 5\n", ""),
            ": required key `seed` is missing",
        ),
    ] {
        let toml = dir.path().join(format!("{name}.toml"));
        std::fs::write(&toml, &content).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let o = build(
            &root,
            &out,
            &["--version", "1.0.0", "--updog-toml", toml.to_str().unwrap()],
        );
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!(
                "error: --updog-toml {} is not a valid updog.toml",
                toml.display()
            )) && err.contains(&format!("{}{want}", toml.display())),
            "{name}: {err}"
        );
        // Nothing was built (not even the output directory made).
        assert!(!out.exists(), "{name}: {out:?} exists");
    }
}

/// Issue 11: a disk that is not a GPT disk (or not there at all) is bad input: exit 2, as the
/// README says, for `verify` and `boot-check`.
#[test]
fn non_gpt_disks_are_bad_input() {
    let dir = test_support::tempdir();
    let zeros = dir.path().join("zeros.img");
    std::fs::write(&zeros, vec![0u8; 4 << 20]).unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "not a disk\n".repeat(1000)).unwrap();
    let missing = dir.path().join("missing.img");
    for disk in [&zeros, &text_file, &missing] {
        for args in [&["verify"][..], &["boot-check", "--set", "a", "--disk"][..]] {
            let o = bin().args(args).arg(disk).output().unwrap();
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?} {disk:?}: {err}");
            assert!(err.contains(&disk.display().to_string()), "{err}");
        }
    }
}
