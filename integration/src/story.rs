//! The building blocks of the whole story: OS builds, a root of trust, releases, served
//! repositories, simulated hosts (a host root directory plus a disk image) and emulated boots.
//!
//! A host is simulated with the same code paths as a real one: `updog --host-root DIR --disk
//! IMAGE --active a|b` and `signpost --disk IMAGE --active a|b`. A "boot" is what firmware,
//! bootloader and kernel would do: `signpost boot-select` applies GRUB's gptprio rule to the
//! disk image (counting down tries), then `os-image boot-check` verifies the chosen set's root
//! against its hash partition with the root hash recorded in that set's BOOT partition (what
//! dm-verity does in the kernel) and reads os-release from the verified root.

use crate::{Bins, Run, run};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variant every story host runs.
pub const VARIANT: &str = "abos-dev";
/// The architecture of the story.
pub const ARCH: &str = "x86_64";

/// Receives the story's plain-words narration (the quickstart prints it; tests may ignore it).
pub trait Narrator {
    /// A new chapter.
    fn chapter(&self, title: &str);
    /// One step: what happened.
    fn say(&self, text: &str);
    /// A command that was run (shown dimmed, for those who want to repeat it).
    fn command(&self, line: &str);
}

/// Narrator that says nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl Narrator for Quiet {
    fn chapter(&self, _: &str) {}
    fn say(&self, _: &str) {}
    fn command(&self, _: &str) {}
}

/// Narrator that prints to stdout.
#[derive(Debug, Default)]
pub struct Print {
    /// Also print each command line.
    pub commands: bool,
}
impl Narrator for Print {
    fn chapter(&self, title: &str) {
        println!("\n== {title}");
    }
    fn say(&self, text: &str) {
        println!("   {text}");
    }
    fn command(&self, line: &str) {
        if self.commands {
            println!("     $ {line}");
        }
    }
}

/// The story's working directory and tools.
pub struct World<'n> {
    /// Everything the story writes lives below here.
    pub dir: PathBuf,
    /// The binaries.
    pub bins: Bins,
    /// Where narration goes.
    pub narrator: &'n dyn Narrator,
}

impl std::fmt::Debug for World<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World").field("dir", &self.dir).finish()
    }
}

/// One built OS version.
#[derive(Debug, Clone)]
pub struct Build {
    /// The version.
    pub version: String,
    /// os-image's output directory.
    pub out: PathBuf,
    /// The build description JSON.
    pub description: PathBuf,
    /// The full disk image (set A populated).
    pub disk: PathBuf,
    /// The description, parsed.
    pub json: Value,
}

/// The repository's root of trust and signing key.
#[derive(Debug, Clone)]
pub struct Trust {
    /// Signed root.json.
    pub root: PathBuf,
    /// The key that holds every role (a test ceremony; production splits roles and keys).
    pub key: PathBuf,
}

/// A repository directory as pubsys writes it.
#[derive(Debug, Clone)]
pub struct Repo {
    /// `DIR/metadata/<variant>/<arch>/` + `DIR/targets/`.
    pub dir: PathBuf,
}

impl Repo {
    /// Metadata URL below a base URL (with trailing slash) that serves `dir`.
    pub fn metadata_url(&self, base: &str) -> String {
        format!("{base}metadata/{VARIANT}/{ARCH}/")
    }
    /// Targets URL below a base URL that serves `dir`.
    pub fn targets_url(&self, base: &str) -> String {
        format!("{base}targets/")
    }
    /// `file://` base URL of the directory (with trailing slash).
    pub fn file_base(&self) -> String {
        format!("file://{}/", self.dir.display())
    }
}

/// A simulated host: a directory standing for `/` and its OS disk image.
#[derive(Debug, Clone)]
pub struct Host {
    /// Name, for narration.
    pub name: String,
    /// The host's `/`.
    pub root: PathBuf,
    /// The OS disk.
    pub disk: PathBuf,
    /// The set the host is running from.
    pub active: char,
}

/// What one emulated boot did.
#[derive(Debug, Clone)]
pub enum Boot {
    /// The bootloader picked `set` and its root verified; the system runs `version`.
    Booted {
        /// Set booted.
        set: char,
        /// VERSION_ID read from the verified root.
        version: String,
    },
    /// The bootloader picked `set` but its root failed verification (the kernel would stop).
    Failed {
        /// Set that failed.
        set: char,
        /// What the verifier said.
        reason: String,
    },
    /// Nothing was bootable.
    NothingBootable,
}

impl<'n> World<'n> {
    /// A world in `dir` (created if missing).
    pub fn new(dir: &Path, bins: Bins, narrator: &'n dyn Narrator) -> World<'n> {
        std::fs::create_dir_all(dir).expect("create story dir");
        World {
            dir: dir.to_path_buf(),
            bins,
            narrator,
        }
    }

    /// Run one of our binaries, narrating the command line.
    pub fn tool(&self, name: &str, args: &[&str]) -> Run {
        let mut cmd = self.bins.cmd(name);
        cmd.args(args);
        self.exec(cmd)
    }

    /// Run a command, narrating its line.
    pub fn exec(&self, cmd: Command) -> Run {
        let result = run(cmd);
        self.narrator.command(&result.line);
        result
    }

    /// A small root filesystem tree for `version`.
    pub fn rootfs(&self, version: &str) -> PathBuf {
        let tree = self.dir.join(format!("rootfs-{version}"));
        if tree.exists() {
            std::fs::remove_dir_all(&tree).expect("clean rootfs");
        }
        for sub in [
            "etc",
            "usr/bin",
            "usr/share/abos",
            "var",
            "proc",
            "sys",
            "dev",
        ] {
            std::fs::create_dir_all(tree.join(sub)).expect("mkdir rootfs");
        }
        std::fs::write(tree.join("etc/hostname"), "abos-host\n").unwrap();
        std::fs::write(
            tree.join("usr/share/abos/motd"),
            format!("Welcome to abos {version}.\n"),
        )
        .unwrap();
        // Some bulk so the images are not trivially small: 2 MiB of version-specific data.
        let mut bulk = Vec::with_capacity(2 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ version.len() as u64;
        for b in version.bytes() {
            x = x.rotate_left(7) ^ u64::from(b);
        }
        while bulk.len() < 2 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bulk.extend_from_slice(&x.to_le_bytes());
        }
        std::fs::write(tree.join("usr/share/abos/payload.bin"), bulk).unwrap();
        tree
    }

    /// Build OS `version` with os-image (small test layout).
    pub fn build_os(&self, version: &str, trust: &Trust) -> Build {
        let tree = self.rootfs(version);
        let out = self.dir.join(format!("build-{version}"));
        if out.exists() {
            std::fs::remove_dir_all(&out).expect("clean build dir");
        }
        let build_id = format!("{:08x}", fnv(version));
        let updog_toml = self.dir.join("image-updog.toml");
        std::fs::write(
            &updog_toml,
            "metadata_base_url = \"https://updates.example.com/metadata/abos-dev/x86_64/\"\n\
             targets_base_url = \"https://updates.example.com/targets/\"\n\
             seed = 1\nversion_lock = \"latest\"\nignore_waves = false\n",
        )
        .unwrap();
        self.tool(
            "os-image",
            &[
                "build",
                "--rootfs",
                s(&tree),
                "--variant",
                VARIANT,
                "--arch",
                ARCH,
                "--version",
                version,
                "--build-id",
                &build_id,
                "--root-json",
                s(&trust.root),
                "--updog-toml",
                s(&updog_toml),
                "--name",
                "abos",
                "--small-layout",
                "--out",
                s(&out),
            ],
        )
        .ok();
        let description = find_description(&out);
        let json: Value =
            serde_json::from_slice(&std::fs::read(&description).unwrap()).expect("build json");
        let disk_name = json["disk_image"]["file_name"]
            .as_str()
            .expect("build description names the disk image");
        Build {
            version: version.to_string(),
            disk: out.join(disk_name),
            out,
            description,
            json,
        }
    }

    /// Create a root of trust with repo-tools: one ed25519 key holding every role.
    pub fn root_of_trust(&self) -> Trust {
        let dir = self.dir.join("trust");
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root.json");
        let key = dir.join("release.key");
        let _ = std::fs::remove_file(&root);
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(dir.join("release.key.pub"));
        self.tool(
            "repo-tools",
            &["root", "init", s(&root), "--expires", "in 52 weeks"],
        )
        .ok();
        self.tool(
            "repo-tools",
            &[
                "root",
                "gen-key",
                s(&key),
                "--type",
                "ed25519",
                "--root",
                s(&root),
                "--role",
                "root",
                "--role",
                "snapshot",
                "--role",
                "targets",
                "--role",
                "timestamp",
            ],
        )
        .ok();
        self.tool("repo-tools", &["root", "sign", s(&root), "--key", s(&key)])
            .ok();
        self.tool("repo-tools", &["root", "verify", s(&root)]).ok();
        Trust { root, key }
    }

    /// The repository directory of the story.
    pub fn repo(&self) -> Repo {
        Repo {
            dir: self.dir.join("repo"),
        }
    }

    /// Publish `build` into the repository with pubsys, waves from `policy` starting at `start`
    /// (RFC3339 or "in N units"); extra arguments are appended.
    pub fn publish(
        &self,
        trust: &Trust,
        build: &Build,
        policy: &str,
        start: &str,
        extra: &[&str],
    ) -> Run {
        let repo = self.repo();
        let policy_path = policy_file(policy);
        let mut args = vec![
            "repo",
            "--root-role-path",
            s(&trust.root),
            "--key",
            s(&trust.key),
            "--repo-dir",
            s(&repo.dir),
            "--build-description",
            s(&build.description),
            "--wave-policy",
            s(&policy_path),
            "--release-start-time",
            start,
        ];
        args.extend_from_slice(extra);
        self.tool("pubsys", &args)
    }

    /// Create a host running `build` from set A, configured for the given repository URLs.
    pub fn make_host(
        &self,
        name: &str,
        build: &Build,
        trust: &Trust,
        metadata_url: &str,
        targets_url: &str,
        seed: u32,
    ) -> Host {
        let root = self.dir.join(format!("host-{name}"));
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        for sub in ["etc", "usr/share/updog", "var/lib/updog"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let disk = root.join("os-disk.img");
        std::fs::copy(&build.disk, &disk).expect("copy disk image");
        std::fs::copy(&trust.root, root.join("usr/share/updog/root.json")).unwrap();
        let host = Host {
            name: name.to_string(),
            root,
            disk,
            active: 'a',
        };
        host.write_config(metadata_url, targets_url, seed, "latest");
        host.write_os_release(&build.version);
        host
    }

    /// `repo-tools mirror` of the repository served at `base` into `out` (same layout).
    pub fn mirror(&self, trust: &Trust, repo: &Repo, base: &str, out: &Path) {
        let subdir = format!("{VARIANT}/{ARCH}");
        let (metadata, targets) = (repo.metadata_url(base), repo.targets_url(base));
        self.tool(
            "repo-tools",
            &[
                "mirror",
                "--metadata-url",
                &metadata,
                "--targets-url",
                &targets,
                "--root",
                s(&trust.root),
                "--out",
                s(out),
                "--metadata-subdir",
                &subdir,
            ],
        )
        .ok();
    }

    /// `pubsys SUB --root-role-path ROOT [--key KEY] --repo-dir … --variant … --arch … EXTRA…`
    /// on the story's repository (the variant/arch commands: validate, check-repo-expirations,
    /// refresh-repo, yank).
    pub fn pubsys_on(&self, sub: &str, root: &Path, key: Option<&Path>, extra: &[&str]) -> Run {
        let repo = self.repo();
        let mut args = vec![sub, "--root-role-path", s(root)];
        if let Some(key) = key {
            args.extend(["--key", s(key)]);
        }
        args.extend([
            "--repo-dir",
            s(&repo.dir),
            "--variant",
            VARIANT,
            "--arch",
            ARCH,
        ]);
        args.extend_from_slice(extra);
        self.tool("pubsys", &args)
    }

    /// `pubsys yank --max-version max` on the story's repository.
    pub fn yank(&self, trust: &Trust, max: &str) {
        self.pubsys_on(
            "yank",
            &trust.root,
            Some(&trust.key),
            &["--max-version", max],
        )
        .ok();
    }

    /// `updog <args>` on `host`.
    pub fn updog(&self, host: &Host, args: &[&str]) -> Run {
        let active = host.active.to_string();
        let mut full = vec![
            "--host-root",
            s(&host.root),
            "--disk",
            s(&host.disk),
            "--active",
            &active,
        ];
        full.extend_from_slice(args);
        self.tool("updog", &full)
    }

    /// `updog <args>` on `host` whose clock runs `offset` ahead (libfaketime, e.g. "+1d"), as a
    /// host that was powered off for a while, or whose repository stopped being refreshed.
    pub fn updog_later(&self, host: &Host, offset: &str, args: &[&str]) -> Run {
        let active = host.active.to_string();
        let mut cmd = Command::new("faketime");
        cmd.args(["-f", offset]).arg(self.bins.path("updog"));
        cmd.args([
            "--host-root",
            s(&host.root),
            "--disk",
            s(&host.disk),
            "--active",
            &active,
        ]);
        cmd.args(args);
        self.exec(cmd)
    }

    /// `signpost --disk … --active … <args>` on `host`.
    pub fn signpost(&self, host: &Host, args: &[&str]) -> Run {
        let active = host.active.to_string();
        let mut full = vec!["--disk", s(&host.disk), "--active", &active];
        full.extend_from_slice(args);
        self.tool("signpost", &full)
    }

    /// One emulated boot of `host` (see the module docs). On success the host now runs the
    /// booted set and its os-release is what the verified root says.
    pub fn boot(&self, host: &mut Host) -> Boot {
        let select = self.tool(
            "signpost",
            &["--disk", s(&host.disk), "boot-select", "--json"],
        );
        if select.code == 7 {
            return Boot::NothingBootable;
        }
        let select = select.ok().json();
        let set = set_letter(&select);
        let check = self.tool(
            "os-image",
            &[
                "boot-check",
                "--disk",
                s(&host.disk),
                "--set",
                &set.to_string(),
                "--json",
            ],
        );
        if check.code != 0 {
            let reason = check
                .stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            return Boot::Failed { set, reason };
        }
        let json = check.json();
        let version = os_release_field(&json, "VERSION_ID").expect("os-release has VERSION_ID");
        host.active = set;
        host.write_os_release(&version);
        Boot::Booted { set, version }
    }

    /// Boot until a set verifies (at most `limit` tries), as firmware that reboots after a failed
    /// boot would. Returns every boot in order.
    pub fn boot_until_up(&self, host: &mut Host, limit: usize) -> Vec<Boot> {
        let mut boots = Vec::new();
        for _ in 0..limit {
            let boot = self.boot(host);
            let done = !matches!(boot, Boot::Failed { .. });
            boots.push(boot);
            if done {
                break;
            }
        }
        boots
    }
}

impl Host {
    /// Write `/etc/updog.toml`.
    pub fn write_config(
        &self,
        metadata_url: &str,
        targets_url: &str,
        seed: u32,
        version_lock: &str,
    ) {
        std::fs::write(
            self.root.join("etc/updog.toml"),
            format!(
                "metadata_base_url = \"{metadata_url}\"\ntargets_base_url = \"{targets_url}\"\n\
                 seed = {seed}\nversion_lock = \"{version_lock}\"\nignore_waves = false\n"
            ),
        )
        .unwrap();
    }

    /// Write `/etc/os-release` for the running `version`.
    pub fn write_os_release(&self, version: &str) {
        std::fs::write(
            self.root.join("etc/os-release"),
            format!(
                "NAME=abos\nID=abos\nVARIANT_ID={VARIANT}\nVERSION_ID={version}\nBUILD_ID={:08x}\n\
                 PRETTY_NAME=\"abos {version} ({VARIANT})\"\n",
                fnv(version)
            ),
        )
        .unwrap();
    }

    /// Flip one byte of data block `block` of set `set`'s ROOT partition (a failing disk).
    pub fn damage_root(&self, status: &Value, set: char, block: u64) {
        let name = set.to_ascii_uppercase().to_string();
        let sets = status["sets"].as_array().expect("sets in signpost status");
        let entry = sets
            .iter()
            .find(|s| s["name"] == name.as_str())
            .expect("set in status");
        let first = entry["root"]["first_byte"]
            .as_u64()
            .expect("root first_byte in status");
        let offset = first + block * 4096 + 123;
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.disk)
            .unwrap();
        let mut b = [0u8; 1];
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.read_exact(&mut b).unwrap();
        b[0] ^= 0xff;
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&b).unwrap();
        f.sync_all().unwrap();
    }
}

/// The set letter ('a'/'b') in a signpost JSON answer.
pub fn set_letter(json: &Value) -> char {
    let set = json["set"]
        .as_str()
        .or_else(|| json["chosen"]["set"].as_str())
        .unwrap_or_else(|| panic!("no set in {json}"));
    set.chars().next().unwrap().to_ascii_lowercase()
}

/// A field of the os-release map in an `os-image boot-check --json` answer.
pub fn os_release_field(json: &Value, key: &str) -> Option<String> {
    json["system"]["os_release"][key]
        .as_str()
        .map(str::to_string)
}

/// A shipped wave policy (`waves/policies/NAME.toml`) by name, or a path as given.
pub fn policy_file(name: &str) -> PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../waves/policies")
        .join(format!("{name}.toml"));
    if shipped.is_file() {
        shipped
    } else {
        PathBuf::from(name)
    }
}

fn find_description(out: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read build dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    found.sort();
    found
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no build description JSON in {}", out.display()))
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A path as `&str` (the story's paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// What the whole story observed, for the caller to show or assert on.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Every check that held, in order, in plain words.
    pub checks: Vec<String>,
}

/// Check a condition of the story; on failure, say what was expected and what happened.
macro_rules! check {
    ($report:expr, $cond:expr, $($what:tt)+) => {{
        let what = format!($($what)+);
        if !$cond {
            return Err(format!("story check failed: {what}"));
        }
        $report.checks.push(what);
    }};
}

/// The whole story of the quickstart, every step checked (README, issue "End to end").
pub fn whole_story(world: &World<'_>) -> Result<Report, String> {
    let n = world.narrator;
    let mut report = Report::default();

    n.chapter("1. Build OS 1.0.0 and 1.1.0 with os-image");
    let trust_dir_note = "the image ships the repository's root.json as /usr/share/updog/root.json";
    n.chapter("   (first a root of trust, because the image carries it)");
    let trust = world.root_of_trust();
    n.say(&format!(
        "repo-tools created {} signed by {} ({trust_dir_note})",
        trust.root.display(),
        trust.key.display()
    ));
    let v100 = world.build_os("1.0.0", &trust);
    let v110 = world.build_os("1.1.0", &trust);
    for b in [&v100, &v110] {
        n.say(&format!(
            "built {}: disk image {} and 3 update artifacts; root hash {}",
            b.version,
            b.disk.file_name().unwrap().to_string_lossy(),
            b.json["verity"]["root_hash"].as_str().unwrap_or("?")
        ));
    }

    n.chapter("2. Publish 1.0.0 then 1.1.0 with pubsys (default waves) and serve the repository");
    world
        .publish(&trust, &v100, "default", "2020-01-01T00:00:00Z", &[])
        .ok();
    let start = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    world.publish(&trust, &v110, "default", &start, &[]).ok();
    let repo = world.repo();
    let server = test_support::http::Server::serve_dir(&repo.dir);
    let base = server.url();
    n.say(&format!(
        "1.1.0's rollout starts {start} in 7 waves over 6 days; repository served at {base}"
    ));

    n.chapter(
        "3. Create a host: disk image with 1.0.0 in set A, /etc/updog.toml, os-release, root.json",
    );
    // Seed 1500 of 2047: a host in the 6th wave.
    let mut host = world.make_host(
        "one",
        &v100,
        &trust,
        &repo.metadata_url(&base),
        &repo.targets_url(&base),
        1500,
    );
    let status = world.signpost(&host, &["status", "--json"]).ok().json();
    check!(
        report,
        status["active"] == "A" && status["next_boot"] == "A",
        "the new host runs set A and boots A next"
    );
    n.say(&format!(
        "host directory {}, running 1.0.0 from set A",
        host.root.display()
    ));

    n.chapter("4. updog check-update, then updog update --now");
    let check = world.updog(&host, &["check-update", "--json"]);
    check!(
        report,
        check.code == 4,
        "check-update says 1.1.0 exists but this host's wave is not open yet (exit 4, got {})",
        check.code
    );
    let opens = check.json();
    n.say(&format!(
        "check-update: {} is available, but this host (seed 1500) waits for its wave, which opens at {} (exit 4)",
        opens["version"].as_str().unwrap_or("?"),
        opens["opens_at"].as_str().unwrap_or("?")
    ));
    let update = world.updog(&host, &["update", "--now", "--json"]);
    check!(
        report,
        update.code == 0,
        "updog update --now wrote and activated 1.1.0 (exit {}: {})",
        update.code,
        update.stderr.trim()
    );
    let status = world.signpost(&host, &["status", "--json"]).ok().json();
    check!(
        report,
        status["next_boot"] == "B",
        "after the update set B boots next"
    );
    n.say("updog streamed 1.1.0 into set B, verified it against its hash tree, then flipped priority: B boots next");

    n.chapter("5. Boot: the bootloader rule picks B, dm-verity (emulated) verifies it, mark-successful-boot");
    let boot = world.boot(&mut host);
    check!(
        report,
        matches!(&boot, Boot::Booted { set: 'b', version } if version == "1.1.0"),
        "the host boots 1.1.0 from set B (got {boot:?})"
    );
    world.signpost(&host, &["mark-successful-boot"]).ok();
    let status = world.signpost(&host, &["status", "--json"]).ok().json();
    let b = &status["sets"][1];
    check!(
        report,
        status["active"] == "B" && b["flags"]["successful"] == true,
        "signpost status: B active and successful"
    );
    n.say("booted 1.1.0 from set B; signpost marked the boot successful");

    n.chapter(
        "6. Publish 1.2.0, update, then a failing disk damages the new root: automatic rollback",
    );
    let v120 = world.build_os("1.2.0", &trust);
    world
        .publish(&trust, &v120, "ohno", "2020-01-01T00:00:00Z", &[])
        .ok();
    let update = world.updog(&host, &["update", "--json"]);
    check!(
        report,
        update.code == 0,
        "updog update wrote 1.2.0 into set A (exit {}: {})",
        update.code,
        update.stderr.trim()
    );
    let blocks = v120.json["verity"]["data_blocks"]
        .as_u64()
        .expect("data_blocks in build description");
    host.damage_root(&status, 'a', blocks / 2);
    n.say(&format!("flipped one byte of data block {} of set A's root after the update, as a failing disk would", blocks / 2));
    let boots = world.boot_until_up(&mut host, 3);
    check!(
        report,
        matches!(boots.first(), Some(Boot::Failed { set: 'a', .. })),
        "the first boot picks A and dm-verity refuses it ({boots:?})"
    );
    check!(
        report,
        matches!(boots.last(), Some(Boot::Booted { set: 'b', version }) if version == "1.1.0"),
        "the next boot falls back to 1.1.0 on set B by itself"
    );
    if let Some(Boot::Failed { reason, .. }) = boots.first() {
        n.say(&format!("boot of A failed: {reason}"));
    }
    n.say(
        "A had one try and no success mark: the selector went back to B, still marked successful",
    );

    n.chapter("7. Pull 1.2.0 back; mirror the repository; update a second host over file:// with no server");
    world.yank(&trust, "1.1.0");
    let check = world.updog(&host, &["check-update", "--json"]);
    check!(
        report,
        check.code == 3,
        "after the yank the host on 1.1.0 has nothing newer (exit 3, got {})",
        check.code
    );
    let mirror = world.dir.join("mirror");
    world.mirror(&trust, &repo, &base, &mirror);
    drop(server);
    n.say(&format!(
        "mirrored into {} and stopped the HTTP server",
        mirror.display()
    ));
    let mirror_repo = Repo { dir: mirror };
    let mbase = mirror_repo.file_base();
    let mut host2 = world.make_host(
        "two",
        &v100,
        &trust,
        &mirror_repo.metadata_url(&mbase),
        &mirror_repo.targets_url(&mbase),
        7,
    );
    let update = world.updog(&host2, &["update", "--now", "--json"]);
    check!(
        report,
        update.code == 0,
        "host two updated from the mirror over file:// (exit {}: {})",
        update.code,
        update.stderr.trim()
    );
    let boot = world.boot(&mut host2);
    check!(
        report,
        matches!(&boot, Boot::Booted { set: 'b', version } if version == "1.1.0"),
        "host two boots 1.1.0 (1.2.0 was pulled back) from set B ({boot:?})"
    );
    n.say("host two runs 1.1.0 from set B, updated from the air-gapped mirror");
    fleet_chapter(world, &trust, [&v100, &v110, &v120], &mut report)?;
    Ok(report)
}

/// The fleet group of the quickstart's chapter 8.
pub const FLEET_GROUP: &str = "quickstart";

/// Chapter 8: three hosts coordinated through a one-member etcd on 127.0.0.1 (concurrency 1).
/// Release 1.1.0 fails the hosts' application health check: the first host rolls back by itself
/// and halts it for the group; the others refuse it. The operator publishes a fixed 1.2.0 and
/// resumes; the hosts roll out one at a time. Its files are in `DIR/fleet` (audit trail in
/// `DIR/fleet/audit`).
fn fleet_chapter(
    world: &World<'_>,
    trust: &Trust,
    [v100, v110, v120]: [&Build; 3],
    report: &mut Report,
) -> Result<(), String> {
    use crate::fleet::{FleetConfig, LocalEtcd, audit_lines, make_node};
    let n = world.narrator;
    n.chapter(
        "8. A fleet: 3 hosts, reboot slots on etcd (concurrency 1), a bad release halted, resumed",
    );
    let dir = world.dir.join("fleet");
    let etcd = LocalEtcd::start(&dir.join("etcd"))?;
    let fleet_world = World::new(&dir, world.bins.clone(), n);
    let fleetctl = |args: &[&str]| {
        let mut cmd = world.bins.cmd("fleetctl");
        cmd.args(["--endpoints", &etcd.endpoint]).args(args);
        world.exec(cmd)
    };
    let set = fleetctl(&["set-concurrency", FLEET_GROUP, "1"]);
    check!(
        report,
        set.code == 0,
        "fleetctl set the group's concurrency to 1 ({})",
        set.stderr.trim()
    );
    let past = "2020-01-01T00:00:00Z";
    fleet_world.publish(trust, v100, "default", past, &[]).ok();
    fleet_world.publish(trust, v110, "default", past, &[]).ok();
    let audit = dir.join("audit");
    let config = FleetConfig {
        acquire_deadline_secs: 2,
        ..FleetConfig::new(&etcd.endpoint, FLEET_GROUP)
    };
    let mut hosts: Vec<_> = ["f1", "f2", "f3"]
        .iter()
        .map(|name| {
            make_node(
                &fleet_world,
                name,
                v100,
                trust,
                &config,
                &audit,
                "1.1.0",
                "",
                "0",
            )
        })
        .collect();
    n.say(&format!(
        "etcd at {}; hosts f1, f2, f3 on 1.0.0 with [fleet] in updog.toml and an application \
         health check in /etc/updog/health.d that fails on 1.1.0",
        etcd.endpoint
    ));
    let updog =
        |node: &crate::fleet::Node, args: &[&str]| world.exec(node.updog_cmd(&world.bins, args));

    let first = updog(&hosts[0], &["update", "--reboot"]);
    check!(
        report,
        first.code == 0,
        "f1 took the group's only reboot slot, activated 1.1.0 and rebooted (exit {}: {})",
        first.code,
        first.stderr.trim()
    );
    let second = updog(&hosts[1], &["update", "--reboot"]);
    check!(
        report,
        second.code == 23 && second.stderr.contains("1/1 slots held by [f1]"),
        "f2 staged 1.1.0 but got no slot while f1 holds it, and did not reboot (exit {}: {})",
        second.code,
        second.stderr.trim()
    );
    n.say(
        "f2 waited: \"1/1 slots held by [f1]\", gave up after its deadline (exit 23), stays staged",
    );
    let booted = hosts[0].boot(&world.bins);
    let health = updog(&hosts[0], &["health-check"]);
    check!(
        report,
        booted == "1.1.0" && health.code == 20,
        "f1 booted {booted}, its health check failed (exit {}), it rolled back and rebooted",
        health.code
    );
    let back = hosts[0].boot(&world.bins);
    check!(
        report,
        back == "1.0.0",
        "f1 is back on 1.0.0 by itself (booted {back})"
    );
    let view = fleetctl(&["--json", "status", FLEET_GROUP]);
    let halted = view.code == 0
        && view.json()["halted"][0]["version"] == "1.1.0"
        && view.json()["halted"][0]["by_host"] == "f1";
    check!(
        report,
        halted,
        "1.1.0 is halted for the group by f1 (fleetctl status)"
    );
    n.say(&format!(
        "fleetctl status: 1.1.0 halted: {}",
        view.json()["halted"][0]["reason"].as_str().unwrap_or("?")
    ));
    for node in &hosts[1..] {
        let r = updog(node, &["update", "--reboot"]);
        check!(
            report,
            r.code == 22 && node.next_boot(&world.bins) == "A",
            "{} refuses the halted 1.1.0 (exit {}) and still boots 1.0.0",
            node.name,
            r.code
        );
    }

    fleet_world.publish(trust, v120, "default", past, &[]).ok();
    let resume = fleetctl(&["resume", FLEET_GROUP, "1.1.0"]);
    check!(
        report,
        resume.code == 0,
        "the operator published a fixed 1.2.0 and resumed the group"
    );
    let before = audit_lines(&audit).len();
    for node in &mut hosts {
        let r = updog(node, &["update", "--reboot"]);
        let version = if r.code == 0 {
            node.boot(&world.bins)
        } else {
            String::new()
        };
        let health = updog(node, &["health-check"]);
        check!(
            report,
            r.code == 0 && version == "1.2.0" && health.code == 0,
            "{} took the slot, rebooted into 1.2.0, passed its health check, released the slot \
             (update exit {}, health-check exit {})",
            node.name,
            r.code,
            health.code
        );
    }
    let lines = audit_lines(&audit);
    let rollout = &lines[before..];
    let one_at_a_time = rollout.len() == 6
        && rollout.chunks(2).all(|p| {
            p[0].kind == "reboot-start" && p[1].kind == "healthy" && p[0].host == p[1].host
        });
    check!(
        report,
        one_at_a_time,
        "the audit trail shows one host at a time between reboot and healthy ({})",
        audit.display()
    );
    let view = fleetctl(&["--json", "status", FLEET_GROUP]).json();
    let all_healthy = view["hosts"].as_array().is_some_and(|h| {
        h.len() == 3
            && h.iter()
                .all(|e| e["report"]["state"] == "healthy" && e["report"]["version"] == "1.2.0")
    }) && view["slots"].as_array().is_some_and(Vec::is_empty)
        && view["halted"].as_array().is_some_and(Vec::is_empty);
    check!(
        report,
        all_healthy,
        "fleetctl status: all 3 hosts healthy on 1.2.0, no slot held, nothing halted"
    );
    n.say("f1, f2, f3 run 1.2.0, one reboot at a time; the fleet is healthy");
    Ok(())
}
