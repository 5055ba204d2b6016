//! Real artefacts for updog's tests: signed TUF repositories (tough's editor, test keys made at
//! test time, far-future whole-second expiry), images with real dm-verity trees (`veritysetup
//! format`) compressed with the `lz4` tool, boot filesystems made by `mkfs.ext4 -d` holding a
//! grub.cfg with the dm-verity table, and GPT disk images made by `sgdisk`.
#![allow(dead_code, clippy::print_stderr, clippy::print_stdout)]

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use test_support::tuf::{SignedRepo, TestKey};
use update_metadata::{Arch, Images, Manifest, TargetName, Variant, Version};

pub const VARIANT: &str = "aws-dev";
pub const MIB: u64 = 1 << 20;

/// True when every tool the tests need is installed (else prints SKIP, or panics under CI).
pub fn tools() -> bool {
    ["sgdisk", "veritysetup", "lz4", "mkfs.ext4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn arch() -> Arch {
    Arch::current().expect("supported arch")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Deterministic, partly compressible bytes (random-looking 4 KiB blocks interleaved with text).
pub fn content(len: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize + 4096);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = 0u64;
    while (out.len() as u64) < len {
        if block.is_multiple_of(3) {
            for _ in 0..512 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                out.extend_from_slice(&x.to_le_bytes());
            }
        } else {
            let line = format!(
                "block {block} of release seed {seed}: the quick brown fox jumps over the lazy dog\n"
            );
            let mut b = Vec::with_capacity(4096 + line.len());
            while b.len() < 4096 {
                b.extend_from_slice(line.as_bytes());
            }
            out.extend_from_slice(&b[..4096]);
        }
        block += 1;
    }
    out.truncate(len as usize);
    out
}

/// One release's images and their verity parameters.
#[derive(Debug, Clone)]
pub struct Release {
    pub version: Version,
    pub dir: PathBuf,
    pub root_img: PathBuf,
    pub boot_img: PathBuf,
    pub hash_img: PathBuf,
    pub root_name: String,
    pub boot_name: String,
    pub hash_name: String,
    pub root_hash: String,
    pub salt: String,
}

impl Release {
    pub fn target_files(&self) -> Vec<PathBuf> {
        [&self.root_name, &self.boot_name, &self.hash_name]
            .iter()
            .map(|n| self.dir.join(n))
            .collect()
    }
    pub fn images(&self) -> Images {
        Images::new(
            self.boot_name.parse::<TargetName>().unwrap(),
            self.root_name.parse::<TargetName>().unwrap(),
            self.hash_name.parse::<TargetName>().unwrap(),
        )
    }
}

/// Builds release `version`: a root image of `root_len` bytes, its verity tree, a boot ext4 with
/// grub.cfg carrying the table, each compressed with `lz4 -9 <lz4_args>`.
pub fn make_release(dir: &Path, version: &str, root_len: u64, lz4_args: &[&str]) -> Release {
    let v = Version::parse(version).unwrap();
    let rdir = dir.join(format!("release-{version}"));
    std::fs::create_dir_all(&rdir).unwrap();
    let root_img = rdir.join("root.ext4");
    let seed = v.major * 10_000 + v.minor * 100 + v.patch;
    std::fs::write(&root_img, content(root_len, seed)).unwrap();
    finish_release(&rdir, version, root_img, lz4_args)
}

/// Like [`make_release`] with an existing root image (moved into the release directory).
pub fn make_release_from(dir: &Path, version: &str, root_src: &Path, lz4_args: &[&str]) -> Release {
    let rdir = dir.join(format!("release-{version}"));
    std::fs::create_dir_all(&rdir).unwrap();
    let root_img = rdir.join("root.ext4");
    std::fs::rename(root_src, &root_img).unwrap();
    finish_release(&rdir, version, root_img, lz4_args)
}

fn finish_release(rdir: &Path, version: &str, root_img: PathBuf, lz4_args: &[&str]) -> Release {
    let v = Version::parse(version).unwrap();
    let seed = v.major * 10_000 + v.minor * 100 + v.patch;
    let root_len = std::fs::metadata(&root_img).unwrap().len();
    assert_eq!(
        root_len % 4096,
        0,
        "root image must be a whole number of 4 KiB blocks"
    );
    let rdir = rdir.to_path_buf();
    let hash_img = rdir.join("root.verity");
    let out = run(Command::new("veritysetup")
        .args([
            "format",
            "--format=1",
            "--hash=sha256",
            "--data-block-size=4096",
            "--hash-block-size=4096",
        ])
        .arg(&root_img)
        .arg(&hash_img));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).map(|r| r.trim().to_owned()))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    let root_hash = field("Root hash:");
    let salt = field("Salt:");
    let data_blocks = root_len / 4096;
    let boot_dir = rdir.join("bootfs/grub");
    std::fs::create_dir_all(&boot_dir).unwrap();
    std::fs::write(
        boot_dir.join("grub.cfg"),
        format!(
            "set default=0\nset timeout=0\nset dm_verity_root=\"root,,,ro,0 {} verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 \
             PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 {data_blocks} 1 sha256 {root_hash} {salt} 2 \
             restart_on_corruption ignore_zero_blocks\"\nmenuentry \"Test OS {version}\" {{\n  linux ($root)/vmlinuz root=/dev/dm-0 dm-mod.create=\"$dm_verity_root\"\n  boot\n}}\n",
            data_blocks * 8
        ),
    )
    .unwrap();
    std::fs::write(rdir.join("bootfs/vmlinuz"), content(64 * 1024, seed + 7)).unwrap();
    let boot_img = rdir.join("boot.ext4");
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-O",
            "^has_journal",
            "-E",
            "root_owner=0:0",
            "-U",
            "clear",
            "-d",
        ])
        .arg(rdir.join("bootfs"))
        .arg(&boot_img)
        .arg("2M"));
    let prefix = format!("bottlerocket-{VARIANT}-{}-{version}-abcdef12", arch());
    let names = [
        (root_img.clone(), format!("{prefix}-root.ext4.lz4")),
        (boot_img.clone(), format!("{prefix}-boot.ext4.lz4")),
        (hash_img.clone(), format!("{prefix}-root.verity.lz4")),
    ];
    for (src, name) in &names {
        run(Command::new("lz4")
            .args(["-q", "-f", "-9"])
            .args(lz4_args)
            .arg(src)
            .arg(rdir.join(name)));
    }
    Release {
        version: v,
        dir: rdir,
        root_img,
        boot_img,
        hash_img,
        root_name: names[0].1.clone(),
        boot_name: names[1].1.clone(),
        hash_name: names[2].1.clone(),
        root_hash,
        salt,
    }
}

/// Partition numbers of the test layout.
pub const BOOT_A: u32 = 1;
pub const ROOT_A: u32 = 2;
pub const HASH_A: u32 = 3;
pub const BOOT_B: u32 = 4;
pub const ROOT_B: u32 = 5;
pub const HASH_B: u32 = 6;

/// A GPT disk (sgdisk) with two sets (BOOT 4 MiB, ROOT `root_mib`, HASH 1 MiB) and PRIVATE;
/// BOOT-A has priority 1 + successful (a fresh image), set A holds `running`.
pub fn make_disk(path: &Path, root_mib: u64, running: &Release) {
    // Verity needs about 1/128 of the data; room to spare, as Bottlerocket (10 MiB for 920 MiB).
    let hash_mib = 1 + root_mib / 64;
    let total = 1 + 2 * (4 + root_mib + hash_mib) + 1 + 1;
    let f = std::fs::File::create(path).unwrap();
    f.set_len(total * MIB).unwrap();
    drop(f);
    let g = signpost::guids::BOOT;
    let mut cmd = Command::new("sgdisk");
    cmd.arg("--clear");
    let parts = [
        ("BOOT-A", signpost::guids::BOOT, 4),
        ("ROOT-A", signpost::guids::ROOT, root_mib),
        ("HASH-A", signpost::guids::HASH, hash_mib),
        ("BOOT-B", g, 4),
        ("ROOT-B", signpost::guids::ROOT, root_mib),
        ("HASH-B", signpost::guids::HASH, hash_mib),
        ("PRIVATE", signpost::guids::PRIVATE, 1),
    ];
    let mut start = 2048u64;
    for (i, (label, ty, mib)) in parts.iter().enumerate() {
        let n = i + 1;
        let end = start + mib * 2048 - 1;
        cmd.arg(format!("-n{n}:{start}:{end}"))
            .arg(format!("-t{n}:{ty}"))
            .arg(format!("-c{n}:BOTTLEROCKET-{label}"));
        start = end + 1;
    }
    cmd.args(["-A1:set:48", "-A1:set:56"]).arg(path);
    run(&mut cmd);
    write_partition(path, BOOT_A, &std::fs::read(&running.boot_img).unwrap());
    write_partition(path, ROOT_A, &std::fs::read(&running.root_img).unwrap());
    write_partition(path, HASH_A, &std::fs::read(&running.hash_img).unwrap());
}

/// (first byte, length) of partition `n` (read back with sgdisk, an independent tool).
pub fn partition(path: &Path, n: u32) -> (u64, u64) {
    let out = run(Command::new("sgdisk").arg(format!("-i{n}")).arg(path));
    let text = String::from_utf8_lossy(&out.stdout);
    let num = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {text}"))
    };
    let first = num("First sector:");
    let last = num("Last sector:");
    (first * 512, (last - first + 1) * 512)
}

pub fn write_partition(disk: &Path, n: u32, bytes: &[u8]) {
    let (off, len) = partition(disk, n);
    assert!(bytes.len() as u64 <= len);
    let f = std::fs::OpenOptions::new().write(true).open(disk).unwrap();
    f.write_all_at(bytes, off).unwrap();
}

pub fn read_partition(disk: &Path, n: u32, len: u64) -> Vec<u8> {
    let (off, plen) = partition(disk, n);
    let mut v = vec![0; len.min(plen) as usize];
    std::fs::File::open(disk)
        .unwrap()
        .read_exact_at(&mut v, off)
        .unwrap();
    v
}

pub use test_support::tuf::RoleVersions;

/// A repository directory (metadata/ and targets/) signed with a test key: test-support's
/// [`SignedRepo`] (the one builder of signed test repositories, which it derefs to) plus the key.
pub struct Repo {
    pub signed: SignedRepo,
    pub key: TestKey,
}

impl std::ops::Deref for Repo {
    type Target = SignedRepo;
    fn deref(&self) -> &SignedRepo {
        &self.signed
    }
}

impl Repo {
    /// Keys and root in `dir/keys`, the repository in `dir/repo`.
    pub fn new(dir: &Path) -> Repo {
        let keys = dir.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let (root, key) = test_support::tuf::simple_root(&keys);
        let dir = dir.join("repo");
        std::fs::create_dir_all(dir.join("metadata")).unwrap();
        std::fs::create_dir_all(dir.join("targets")).unwrap();
        Repo {
            signed: SignedRepo {
                dir,
                root,
                keys: vec![key.path.clone()],
            },
            key,
        }
    }

    /// Signs and writes a publication holding `manifest` and `files` (target name = file name).
    pub fn publish(&self, manifest: &Manifest, files: &[PathBuf], v: RoleVersions) {
        self.publish_bytes(&manifest.to_vec_pretty(), files, v);
    }

    /// [`Repo::publish`] with the manifest's exact bytes (for manifests the model cannot hold).
    pub fn publish_bytes(&self, manifest: &[u8], files: &[PathBuf], v: RoleVersions) {
        let staging = self.dir.join(format!("staging-{}", v.timestamp));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("manifest.json"), manifest).unwrap();
        for f in files {
            std::fs::copy(f, staging.join(f.file_name().unwrap())).unwrap();
        }
        self.signed.publish_dir_blocking(&staging, v);
    }
}

/// A manifest with `releases` for this host's variant and arch (no waves).
pub fn manifest(releases: &[&Release]) -> Manifest {
    let mut m = Manifest::new();
    for r in releases {
        m.add_update(
            VARIANT.parse::<Variant>().unwrap(),
            arch(),
            r.version.clone(),
            None,
            r.images(),
        )
        .unwrap();
    }
    let mut versions: Vec<Version> = releases.iter().map(|r| r.version.clone()).collect();
    versions.sort();
    for pair in versions.windows(2) {
        m.migrations
            .insert(pair[0].clone(), pair[1].clone(), Vec::new());
    }
    m
}

/// Adds a migration target file for `from -> to` (a small LZ4 file) and returns its path.
pub fn add_migration(m: &mut Manifest, dir: &Path, from: &Version, to: &Version) -> PathBuf {
    let name = format!("migrate_v{to}_test-migration.lz4");
    let path = dir.join(&name);
    let bytes = lz4_flex::frame::FrameEncoder::new(Vec::new());
    let mut enc = bytes;
    std::io::Write::write_all(&mut enc, b"#!/bin/sh\necho migrating\n").unwrap();
    std::fs::write(&path, enc.finish().unwrap()).unwrap();
    m.migrations
        .insert(from.clone(), to.clone(), vec![name.parse().unwrap()]);
    path
}

/// A simulated host: directory with etc/updog.toml, etc/os-release, the trusted root, plus a disk.
pub struct Host {
    pub root: PathBuf,
    pub disk: PathBuf,
}

impl Host {
    pub fn new(
        dir: &Path,
        repo: &Repo,
        base_url: &str,
        running: &Release,
        root_mib: u64,
        extra_config: &str,
    ) -> Host {
        let root = dir.join("host");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("usr/share/updog")).unwrap();
        std::fs::copy(&repo.root, root.join("usr/share/updog/root.json")).unwrap();
        std::fs::write(
            root.join("etc/os-release"),
            format!(
                "NAME=Bottlerocket\nVARIANT_ID={VARIANT}\nVERSION_ID={}\nBUILD_ID=abcdef12\n",
                running.version
            ),
        )
        .unwrap();
        let host = Host {
            root,
            disk: dir.join("disk.img"),
        };
        host.set_config(base_url, extra_config);
        make_disk(&host.disk, root_mib, running);
        host
    }

    /// Writes updog.toml; keys set in `extra` replace the test defaults.
    pub fn set_config(&self, base_url: &str, extra: &str) {
        let defaults = [
            ("seed", "seed = 1234"),
            ("version_lock", "version_lock = \"latest\""),
            ("ignore_waves", "ignore_waves = false"),
            ("retries", "retries = 2"),
            ("retry_backoff_ms", "retry_backoff_ms = 0"),
            ("read_timeout_secs", "read_timeout_secs = 5"),
            ("checkpoint_mib", "checkpoint_mib = 1"),
            ("reboot_command", "reboot_command = [\"true\"]"),
        ];
        let mut text = format!(
            "metadata_base_url = \"{base_url}metadata/\"\ntargets_base_url = \"{base_url}targets/\"\n{extra}"
        );
        for (key, line) in defaults {
            if !extra
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{key} =")))
            {
                text.push_str(line);
                text.push('\n');
            }
        }
        std::fs::write(self.root.join("etc/updog.toml"), text).unwrap();
    }

    /// Runs the real updog binary on this host and disk (active set A).
    pub fn updog(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_updog"));
        c.arg("--host-root")
            .arg(&self.root)
            .arg("--disk")
            .arg(&self.disk)
            .args(["--active", "a"])
            .args(args);
        c.env_remove("https_proxy")
            .env_remove("HTTPS_PROXY")
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        c
    }

    /// The library environment for this host.
    pub fn env(&self, reporter: std::sync::Arc<dyn updog::Reporter>) -> updog::Env {
        updog::Env {
            paths: updog::config::HostPaths::new(&self.root),
            disk: Some(updog::DiskOverride {
                path: self.disk.clone(),
                active: signpost::SetName::A,
            }),
            arch: None,
            variant: None,
            now: jiff::Timestamp::now(),
            reporter,
        }
    }

    /// Which set GRUB would boot next (run on a copy: boot_select decrements tries).
    pub fn next_boot(&self) -> Option<signpost::SetName> {
        let copy = self.disk.with_extension("copy");
        std::fs::copy(&self.disk, &copy).unwrap();
        let mut d = signpost::Disk::open(&copy).unwrap();
        let choice = signpost::boot_select(&mut d).unwrap();
        drop(d);
        std::fs::remove_file(&copy).unwrap();
        choice.map(|c| c.set)
    }

    pub fn flags(&self, set: signpost::SetName) -> signpost::Flags {
        signpost::Disk::open_read_only(&self.disk)
            .unwrap()
            .flags(set)
            .unwrap()
    }
}

/// Exit code, stdout, stderr.
pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks with `veritysetup verify` (independent of updog) that set B's root verifies against
/// its hash partition with `release`'s root hash.
pub fn veritysetup_verify_b(disk: &Path, release: &Release, dir: &Path) -> bool {
    let root_len = std::fs::metadata(&release.root_img).unwrap().len();
    let hash_len = std::fs::metadata(&release.hash_img).unwrap().len();
    let root = dir.join("check-root");
    let hash = dir.join("check-hash");
    std::fs::write(&root, read_partition(disk, ROOT_B, root_len)).unwrap();
    std::fs::write(&hash, read_partition(disk, HASH_B, hash_len)).unwrap();
    Command::new("veritysetup")
        .arg("verify")
        .arg(&root)
        .arg(&hash)
        .arg(&release.root_hash)
        .status()
        .unwrap()
        .success()
}

/// The usual scene of a failure test: 1.0.0 running on a host, 1.0.0 and 1.1.0 published in a
/// signed repository served on loopback.
pub struct TwoReleases {
    /// Keeps the directory alive.
    pub _dir: tempfile::TempDir,
    /// The test directory.
    pub dir: PathBuf,
    /// The repository.
    pub repo: Repo,
    /// Its server.
    pub server: test_support::http::Server,
    /// The running release.
    pub old: Release,
    /// The offered release.
    pub new: Release,
    /// The host.
    pub host: Host,
}

impl TwoReleases {
    /// Root images of `old_len` / `new_len` bytes, the host's ROOT partitions `root_mib` MiB,
    /// metadata at `versions`.
    pub fn new(old_len: u64, new_len: u64, root_mib: u64, versions: RoleVersions) -> TwoReleases {
        let dir = test_support::tempdir();
        let path = dir.path().to_path_buf();
        let repo = Repo::new(&path);
        let old = make_release(&path, "1.0.0", old_len, &["-B4"]);
        let new = make_release(&path, "1.1.0", new_len, &["-B4"]);
        let files = [old.target_files(), new.target_files()].concat();
        repo.publish(&manifest(&[&old, &new]), &files, versions);
        let server = test_support::http::Server::serve_dir(&repo.dir);
        let host = Host::new(&path, &repo, &server.url(), &old, root_mib, "");
        TwoReleases {
            _dir: dir,
            dir: path,
            repo,
            server,
            old,
            new,
            host,
        }
    }

    /// Publishes both releases again with metadata at `versions`.
    pub fn republish(&self, versions: RoleVersions) {
        let files = [self.old.target_files(), self.new.target_files()].concat();
        self.repo
            .publish(&manifest(&[&self.old, &self.new]), &files, versions);
    }

    /// Runs updog, expects `code`, and returns stderr.
    pub fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.host.updog(args);
        assert_eq!(out.status.code(), Some(code), "{}", show(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The pubsys binary beside updog's (scripts/test.sh builds every binary).
pub fn pubsys() -> PathBuf {
    let p = Path::new(env!("CARGO_BIN_EXE_updog")).with_file_name("pubsys");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p pubsys --bins; scripts/test.sh builds \
         every binary)",
        p.display()
    );
    p
}

/// Publishes `r` into `repo_dir` with the real `pubsys repo` (with `--delta` when asked, and each
/// of `extra` as `--extra-target`), signed with `key` under `root_json`.
pub fn pubsys_publish(
    repo_dir: &Path,
    root_json: &Path,
    key: &Path,
    r: &Release,
    delta: bool,
    extra: &[&Path],
) {
    let mut cmd = Command::new(pubsys());
    cmd.arg("repo")
        .arg("--root-role-path")
        .arg(root_json)
        .arg("--key")
        .arg(key)
        .arg("--repo-dir")
        .arg(repo_dir)
        .args(["--variant", VARIANT, "--arch", arch().as_str()])
        .args(["--version", &r.version.to_string()])
        .arg("--boot")
        .arg(r.dir.join(&r.boot_name))
        .arg("--root")
        .arg(r.dir.join(&r.root_name))
        .arg("--hash")
        .arg(r.dir.join(&r.hash_name));
    if delta {
        cmd.arg("--delta");
    }
    for e in extra {
        cmd.arg("--extra-target").arg(e);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "pubsys repo: {}", show(&out));
}

/// Two roots of real files for the delta benchmarks, `mib` MiB each in `dir`: the old one a tar
/// of /usr, the new one the same with 2 % of its 4 KiB blocks rewritten in runs of 8.
pub fn real_file_roots(dir: &Path, mib: u64) -> (PathBuf, PathBuf) {
    let len = mib << 20;
    let old_root = dir.join("old-root.img");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar cf - -C / usr/lib usr/bin usr/share 2>/dev/null | head -c {len} > '{}'",
            old_root.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::OpenOptions::new()
        .write(true)
        .open(&old_root)
        .unwrap()
        .set_len(len)
        .unwrap();
    let mut new = std::fs::read(&old_root).unwrap();
    let blocks = len / 4096;
    let runs = blocks * 2 / 100 / 8;
    for r in 0..runs {
        let at = ((r * (blocks / runs) + 13) * 4096) as usize;
        let fresh = content(8 * 4096, 5000 + r);
        new[at..at + fresh.len()].copy_from_slice(&fresh);
    }
    let new_root = dir.join("new-root.img");
    std::fs::write(&new_root, &new).unwrap();
    (old_root, new_root)
}

/// What [`measured`] saw of one command.
pub struct Measured {
    /// Exit status 0.
    pub ok: bool,
    /// Wall time.
    pub secs: f64,
    /// Peak RSS of the command (KiB, getrusage of children).
    pub rss_kib: u64,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `cmd` (program, arguments and environment) under python3's getrusage.
pub fn measured(cmd: &mut Command) -> Measured {
    let script = "import resource,subprocess,sys,time\n\
                  t=time.monotonic()\n\
                  r=subprocess.run(sys.argv[1:],stdout=subprocess.PIPE,stderr=subprocess.PIPE)\n\
                  e=time.monotonic()-t\n\
                  u=resource.getrusage(resource.RUSAGE_CHILDREN)\n\
                  sys.stderr.write(r.stderr.decode()+'\\0'+r.stdout.decode())\n\
                  print(r.returncode, e, u.ru_maxrss)";
    let mut args: Vec<String> = vec![cmd.get_program().to_string_lossy().into_owned()];
    args.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let mut py = Command::new("python3");
    py.arg("-c").arg(script).args(&args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => py.env(k, v),
            None => py.env_remove(k),
        };
    }
    let out = py.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let rc: i32 = it.next().unwrap().parse().unwrap();
    let secs: f64 = it.next().unwrap().parse().unwrap();
    let rss_kib: u64 = it.next().unwrap().parse().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let (stderr, stdout) = err.split_once('\0').unwrap_or(("", &err));
    Measured {
        ok: rc == 0,
        secs,
        rss_kib,
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
    }
}

/// The delta benchmarks' scene: two roots of real files (`UPDOG_DELTA_BENCH_MIB`, default 256;
/// 2 % of the blocks rewritten), both releases published by the real `pubsys` (the new one with
/// `--delta`) and served over loopback HTTP, a host running the old one, and a copy of its
/// pristine disk. In `ABOS_BENCH_DIR` (default /var/tmp: the images are large for /tmp).
pub struct DeltaBenchScene {
    /// Keeps the directory alive.
    pub _dir: tempfile::TempDir,
    /// The directory.
    pub path: PathBuf,
    /// Root size in MiB.
    pub mib: u64,
    /// The offered release.
    pub new: Release,
    /// Its repository (keys kept alive).
    pub repo: Repo,
    /// The server.
    pub server: test_support::http::Server,
    /// The host (its disk is a file).
    pub host: Host,
    /// The host's disk as made.
    pub pristine: PathBuf,
}

impl DeltaBenchScene {
    pub fn new(prefix: &str) -> DeltaBenchScene {
        let mib: u64 = std::env::var("UPDOG_DELTA_BENCH_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        let base = std::env::var("ABOS_BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(base)
            .unwrap();
        let path = dir.path().to_path_buf();
        let (old_root, new_root) = real_file_roots(&path, mib);
        let old = make_release_from(&path, "1.0.0", &old_root, &[]);
        let new = make_release_from(&path, "1.1.0", &new_root, &[]);
        let repo = Repo::new(&path);
        pubsys_publish(&repo.dir, &repo.root, &repo.key.path, &old, false, &[]);
        pubsys_publish(&repo.dir, &repo.root, &repo.key.path, &new, true, &[]);
        let server = test_support::http::Server::serve_dir(&repo.dir);
        let host = Host::new(&path, &repo, &server.url(), &old, mib + 16, "");
        let pristine = path.join("pristine.img");
        std::fs::copy(&host.disk, &pristine).unwrap();
        DeltaBenchScene {
            _dir: dir,
            path,
            mib,
            new,
            repo,
            server,
            host,
            pristine,
        }
    }

    /// Before each measured run: the pristine disk back, no updog state, updog.toml with `extra`
    /// (e.g. `delta = false`), and the page cache written out.
    pub fn reset(&self, extra: &str) {
        std::fs::copy(&self.pristine, &self.host.disk).unwrap();
        let _ = std::fs::remove_dir_all(self.host.root.join("var/lib/updog"));
        std::fs::write(
            self.host.root.join("etc/updog.toml"),
            format!(
                "metadata_base_url = \"{u}metadata/{VARIANT}/{}/\"\ntargets_base_url = \"{u}targets/\"\n\
                 seed = 1234\nignore_waves = true\nreboot_command = [\"true\"]\n{extra}",
                arch(),
                u = self.server.url()
            ),
        )
        .unwrap();
        let _ = Command::new("sync").status();
    }
}

/// Runs `updog --json update` on `host`, SIGKILLs it at the first progress event `kill_at`
/// accepts, and returns whether it was killed (and did not succeed).
pub fn run_and_kill(host: &Host, kill_at: &dyn Fn(&serde_json::Value) -> bool) -> bool {
    use std::io::BufRead;
    let mut child = host
        .command(&["--json", "update"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut killed = false;
    for line in std::io::BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Ok(e) = serde_json::from_str::<serde_json::Value>(&line)
            && kill_at(&e)
        {
            child.kill().unwrap();
            killed = true;
            break;
        }
    }
    let status = child.wait().unwrap();
    killed && !status.success()
}

/// A JSON number as u64 (a test failure naming the value otherwise).
pub fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}
