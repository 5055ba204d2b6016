//! Fleet scenarios across the real binaries (issue "End to end", integration/): waves in seed
//! order with an injected clock, version_lock and max_version pull-back, migrations cached before
//! images are written, root key rotation, expiry refused and refreshed, expiry warnings, and a
//! tampered air-gapped archive.

use integration::story::{ARCH, Boot, Build, Host, Quiet, Repo, Trust, VARIANT, World, s};
use integration::{Bins, Run};
use serde_json::Value;
use std::path::Path;
use test_support::http::Server;

const QUIET: Quiet = Quiet;

fn tools_present() -> bool {
    ["mkfs.ext4", "debugfs", "sgdisk", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

/// A world with a root of trust and the given versions built.
fn setup(dir: &Path, versions: &[&str]) -> (World<'static>, Trust, Vec<Build>) {
    let world = World::new(dir, Bins::locate().expect("binaries"), &QUIET);
    let trust = world.root_of_trust();
    let builds = versions.iter().map(|v| world.build_os(v, &trust)).collect();
    (world, trust, builds)
}

fn file_host(world: &World<'_>, name: &str, build: &Build, trust: &Trust, seed: u32) -> Host {
    let repo = world.repo();
    let base = repo.file_base();
    world.make_host(
        name,
        build,
        trust,
        &repo.metadata_url(&base),
        &repo.targets_url(&base),
        seed,
    )
}

fn outcome(run: &Run) -> Value {
    run.json()
}

#[test]
fn hosts_become_eligible_in_wave_order() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0"]);
    let start = "2030-01-01T00:00:00Z";
    world
        .publish(&trust, &builds[0], "default", "2020-01-01T00:00:00Z", &[])
        .ok();
    world
        .publish(&trust, &builds[1], "default", start, &[])
        .ok();
    let seeds = [0u32, 5, 20, 21, 100, 300, 800, 1228, 1500, 2047];
    let mut opens = Vec::new();
    for seed in seeds {
        let host = file_host(&world, &format!("s{seed}"), &builds[0], &trust, seed);
        // Before the rollout starts nobody is eligible, and each host is told when it will be.
        let run = world.updog(&host, &["check-update", "--json", "--at", start]);
        assert_eq!(run.code, 4, "seed {seed} at the start: {}", run.stdout);
        let at: jiff::Timestamp = outcome(&run)["opens_at"].as_str().unwrap().parse().unwrap();
        // One second before that time: still waiting; at that time: eligible, for 1.1.0.
        let before = (at - jiff::SignedDuration::from_secs(1)).to_string();
        let run = world.updog(&host, &["check-update", "--json", "--at", &before]);
        assert_eq!(
            run.code, 4,
            "seed {seed} one second before {at}: {}",
            run.stdout
        );
        let run = world.updog(&host, &["check-update", "--json", "--at", &at.to_string()]);
        assert_eq!(
            run.code, 0,
            "seed {seed} at {at}: {} {}",
            run.stdout, run.stderr
        );
        assert_eq!(outcome(&run)["version"], "1.1.0", "{}", run.stdout);
        opens.push((seed, at));
    }
    // Larger seeds never open earlier; the first wave opens at +1h; every host by +7 days.
    for pair in opens.windows(2) {
        assert!(pair[0].1 <= pair[1].1, "seed order violated: {pair:?}");
    }
    let start: jiff::Timestamp = start.parse().unwrap();
    assert!(
        opens[0].1 >= start + jiff::SignedDuration::from_hours(1),
        "{opens:?}"
    );
    assert!(
        opens.last().unwrap().1 <= start + jiff::SignedDuration::from_hours(7 * 24),
        "{opens:?}"
    );
}

#[test]
fn version_lock_and_max_version_pull_back_move_hosts() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0", "1.2.0"]);
    for b in &builds {
        world
            .publish(&trust, b, "default", "2020-01-01T00:00:00Z", &[])
            .ok();
    }
    let repo = world.repo();
    let base = repo.file_base();

    // A host locked to 1.1.0 takes 1.1.0, not the newer 1.2.0.
    let mut locked = file_host(&world, "locked", &builds[0], &trust, 10);
    locked.write_config(
        &repo.metadata_url(&base),
        &repo.targets_url(&base),
        10,
        "v1.1.0",
    );
    let run = world.updog(&locked, &["update", "--json"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(matches!(world.boot(&mut locked), Boot::Booted { version, .. } if version == "1.1.0"));
    // Once there, the lock holds it: exit 5.
    let run = world.updog(&locked, &["check-update", "--json"]);
    assert_eq!(run.code, 5, "{}", run.stdout);

    // A host on 1.2.0 when 1.2.0 is pulled back (max_version 1.1.0) moves down to 1.1.0.
    let mut high = file_host(&world, "high", &builds[2], &trust, 10);
    assert_eq!(world.updog(&high, &["check-update", "--json"]).code, 3);
    world.yank(&trust, "1.1.0");
    let run = world.updog(&high, &["check-update", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(outcome(&run)["version"], "1.1.0");
    world.updog(&high, &["update", "--json"]).ok();
    assert!(
        matches!(world.boot(&mut high), Boot::Booted { set: 'b', version } if version == "1.1.0")
    );

    // A host on 1.0.0 is offered 1.1.0, never the pulled-back 1.2.0; --image 1.0.0 on 1.1.0 is a
    // deliberate downgrade and is allowed.
    let fresh = file_host(&world, "fresh", &builds[0], &trust, 10);
    let run = world.updog(&fresh, &["check-update", "--json"]);
    assert_eq!(outcome(&run)["version"], "1.1.0", "{}", run.stdout);
    let run = world.updog(&high, &["check-update", "--json", "--image", "1.0.0"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(outcome(&run)["version"], "1.0.0");
}

#[test]
fn migrations_are_cached_before_images_are_written() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0"]);
    let migration = dir.path().join("migrate_v1.1.0_example.lz4");
    std::fs::write(
        &migration,
        b"not really a migration, but a signed target all the same",
    )
    .unwrap();
    let release = dir.path().join("Release.toml");
    std::fs::write(&release, "version = \"1.1.0\"\n[migrations]\n\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_example.lz4\"]\n").unwrap();
    world
        .publish(&trust, &builds[0], "default", "2020-01-01T00:00:00Z", &[])
        .ok();
    world
        .publish(
            &trust,
            &builds[1],
            "default",
            "2020-01-01T00:00:00Z",
            &[
                "--release-file",
                s(&release),
                "--extra-target",
                s(&migration),
            ],
        )
        .ok();
    let repo: Repo = world.repo();

    // With the migration target missing from the server, the update stops before any image byte
    // is written: set B's ROOT is still all zeros and A is still the next boot.
    let host = file_host(&world, "h", &builds[0], &trust, 10);
    let targets = repo.dir.join("targets");
    let hidden = dir.path().join("hidden-migration");
    let served = std::fs::read_dir(&targets)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".migrate_v1.1.0_example.lz4"))
        .expect("migration target");
    std::fs::rename(&served, &hidden).unwrap();
    let status: Value = world.signpost(&host, &["status", "--json"]).ok().json();
    let run = world.updog(&host, &["update", "--now", "--json"]);
    assert_ne!(
        run.code, 0,
        "update must fail without its migration: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains("migrate_v1.1.0_example.lz4"),
        "error names the migration: {}",
        run.stderr
    );
    let b = status["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "B")
        .unwrap();
    let first = b["root"]["first_byte"].as_u64().unwrap();
    let bytes = std::fs::read(&host.disk).unwrap();
    assert!(
        bytes[first as usize..first as usize + (1 << 20)]
            .iter()
            .all(|&x| x == 0),
        "no image byte written"
    );
    let after: Value = world.signpost(&host, &["status", "--json"]).ok().json();
    assert_eq!(after["next_boot"], "A");

    // With it back, the update caches the migration and manifest.json under the host root.
    std::fs::rename(&hidden, &served).unwrap();
    world.updog(&host, &["update", "--now", "--json"]).ok();
    let cache = host.root.join("var/lib/bottlerocket-migrations");
    let cached: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        cached
            .iter()
            .any(|n| n.ends_with("migrate_v1.1.0_example.lz4")),
        "{cached:?}"
    );
    assert!(
        cached.iter().any(|n| n.ends_with("manifest.json")),
        "{cached:?}"
    );
}

#[test]
fn hosts_follow_a_root_key_rotation() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0"]);
    world
        .publish(&trust, &builds[0], "default", "2020-01-01T00:00:00Z", &[])
        .ok();
    // The host ships root v1.
    let mut host = file_host(&world, "h", &builds[0], &trust, 10);

    // Ceremony: root v2 with a new key for every role, signed by the new key and cross-signed
    // by the old one.
    let root2 = dir.path().join("trust/root-2.json");
    let key2 = dir.path().join("trust/release-2.key");
    std::fs::copy(&trust.root, &root2).unwrap();
    world
        .tool("repo-tools", &["root", "bump-version", s(&root2)])
        .ok();
    world
        .tool(
            "repo-tools",
            &[
                "root",
                "gen-key",
                s(&key2),
                "--root",
                s(&root2),
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
    let keyid = |path: &Path| -> Vec<String> {
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["signed"]["keys"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let new_ids = keyid(&root2);
    let old_id = keyid(&trust.root)[0].clone();
    assert!(new_ids.contains(&old_id) && new_ids.len() == 2);
    world
        .tool("repo-tools", &["root", "remove-key", s(&root2), &old_id])
        .ok();
    world
        .tool(
            "repo-tools",
            &[
                "root",
                "sign",
                s(&root2),
                "--key",
                s(&key2),
                "--cross-sign",
                s(&trust.root),
                "--key",
                s(&trust.key),
            ],
        )
        .ok();
    world
        .tool(
            "repo-tools",
            &["root", "verify", s(&root2), "--previous", s(&trust.root)],
        )
        .ok();

    // The repository moves to root v2 (snapshot, targets, timestamp re-signed with the new
    // key), then the next release is signed under root v2 only.
    world
        .pubsys_on(
            "refresh-repo",
            &trust.root,
            Some(&key2),
            &["--new-root", s(&root2)],
        )
        .ok();
    let run = world.tool(
        "pubsys",
        &[
            "repo",
            "--root-role-path",
            s(&root2),
            "--key",
            s(&key2),
            "--repo-dir",
            s(&world.repo().dir),
            "--build-description",
            s(&builds[1].description),
            "--release-start-time",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        world
            .repo()
            .dir
            .join(format!("metadata/{VARIANT}/{ARCH}/2.root.json"))
            .is_file()
    );

    // The host, trusting v1, walks to v2 and takes the update.
    let run = world.updog(&host, &["update", "--now", "--json"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert!(matches!(world.boot(&mut host), Boot::Booted { version, .. } if version == "1.1.0"));

    // The old key alone can no longer publish: pubsys refuses it under root v2.
    let run = world.pubsys_on("refresh-repo", &root2, Some(&trust.key), &[]);
    assert_ne!(run.code, 0, "the retired key must not sign under root v2");
}

#[test]
fn expired_repository_is_refused_then_refreshed() {
    if !tools_present() || !test_support::require_tool("faketime") {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0"]);
    let policy = dir.path().join("short.toml");
    std::fs::write(&policy, "snapshot_expiration = '1 hour'\ntargets_expiration = '1 hour'\ntimestamp_expiration = '1 hour'\n").unwrap();
    for b in &builds {
        world
            .publish(
                &trust,
                b,
                "default",
                "2020-01-01T00:00:00Z",
                &["--expiration-policy", s(&policy)],
            )
            .ok();
    }
    let host = file_host(&world, "h", &builds[0], &trust, 10);
    // A day later nobody refreshed the repository: its metadata expired an hour after publishing.
    let run = world.updog_later(&host, "+1d", &["check-update", "--json"]);
    assert_eq!(
        run.code, 12,
        "expired metadata must be refused: {} {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("expired"),
        "{}",
        run.stderr
    );

    // check-repo-expirations (default window 3 days) warns; refresh-repo fixes it.
    let check = world.pubsys_on("check-repo-expirations", &trust.root, None, &[]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    world
        .pubsys_on("refresh-repo", &trust.root, Some(&trust.key), &[])
        .ok();
    let run = world.updog_later(&host, "+1d", &["check-update", "--json"]);
    assert_eq!(run.code, 0, "{} {}", run.stdout, run.stderr);
    assert_eq!(outcome(&run)["version"], "1.1.0");
}

#[test]
fn expiry_warnings_come_in_time() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0"]);
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string();
    // Bottlerocket's default policy: snapshot and targets 2 weeks, timestamp 1 week.
    world.publish(&trust, &builds[0], "default", &now, &[]).ok();
    let check = |within: &str| {
        world.pubsys_on(
            "check-repo-expirations",
            &trust.root,
            None,
            &["--json", "--within", within],
        )
    };
    assert_eq!(check("3 days").code, 0, "nothing expires within 3 days");
    let warn = check("8 days");
    assert_eq!(
        warn.code, 1,
        "the timestamp expires within 8 days: {}",
        warn.stdout
    );
    assert!(warn.stdout.contains("timestamp"), "{}", warn.stdout);
}

#[test]
fn tampered_air_gapped_archive_is_refused() {
    if !tools_present() {
        return;
    }
    let dir = test_support::tempdir();
    let (world, trust, builds) = setup(dir.path(), &["1.0.0", "1.1.0"]);
    for b in &builds {
        world
            .publish(&trust, b, "default", "2020-01-01T00:00:00Z", &[])
            .ok();
    }
    let repo = world.repo();
    let server = Server::serve_dir(&repo.dir);
    let base = server.url();
    let mirror = dir.path().join("mirror");
    world.mirror(&trust, &repo, &base, &mirror);
    drop(server);
    let archive = dir.path().join("offline.tar");
    world
        .tool("repo-tools", &["export", s(&mirror), "-o", s(&archive)])
        .ok();

    // Intact: imports and a host updates from it over file://.
    let site = dir.path().join("site");
    world
        .tool(
            "repo-tools",
            &[
                "import",
                s(&archive),
                "--root",
                s(&trust.root),
                "--out",
                s(&site),
            ],
        )
        .ok();
    let imported = Repo { dir: site.clone() };
    let base = imported.file_base();
    let mut host = world.make_host(
        "airgap",
        &builds[0],
        &trust,
        &imported.metadata_url(&base),
        &imported.targets_url(&base),
        3,
    );
    world.updog(&host, &["update", "--now", "--json"]).ok();
    assert!(matches!(world.boot(&mut host), Boot::Booted { version, .. } if version == "1.1.0"));

    // One byte of a target changed inside the archive: refused, nothing imported.
    let mut bytes = std::fs::read(&archive).unwrap();
    // Names this long are stored in a GNU long-name block before the entry's own header: find
    // the block naming the root image target, skip it and the header, change a byte of the data.
    let needle = b"root.ext4.lz4";
    let block = (0..bytes.len() / 512)
        .map(|i| i * 512)
        .find(|&h| {
            bytes[h..].starts_with(b"targets/")
                && bytes[h..h + 512].windows(needle.len()).any(|w| w == needle)
        })
        .expect("the root image target in the archive");
    assert_eq!(
        &bytes[block + 512 + 257..block + 512 + 262],
        b"ustar",
        "a tar header follows the long name"
    );
    let data = block + 1024 + 100;
    bytes[data] ^= 0x01;
    let tampered = dir.path().join("tampered.tar");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = dir.path().join("site2");
    let run = world.tool(
        "repo-tools",
        &[
            "import",
            s(&tampered),
            "--root",
            s(&trust.root),
            "--out",
            s(&out),
        ],
    );
    assert_ne!(run.code, 0, "a tampered archive must be refused");
    assert!(!out.exists(), "nothing is left at the destination");
    assert!(
        run.stderr.contains("root.ext4.lz4"),
        "the error names the target: {}",
        run.stderr
    );
}
