//! Every outcome of check-update / update through the real binary: text, --json and exit codes.
//! Waves are evaluated with an injected clock (`--at`).

mod common;

use common::*;
use test_support::http::Server;
use update_metadata::{Manifest, Version};

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    _server: Server,
    url: String,
}

fn world() -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let server = Server::serve_dir(&repo.dir);
    let url = server.url();
    World {
        _dir: dir,
        dir: path,
        repo,
        _server: server,
        url,
    }
}

fn releases(w: &World, versions: &[&str]) -> Vec<Release> {
    versions
        .iter()
        .map(|v| make_release(&w.dir, v, MIB, &[]))
        .collect()
}

fn publish(w: &World, m: &Manifest, rel: &[Release]) {
    let files: Vec<_> = rel.iter().flat_map(|r| r.target_files()).collect();
    w.repo.publish(m, &files, RoleVersions::all(1));
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {}", show(out)))
}

#[test]
fn nothing_newer_and_image_downgrade() {
    if !tools() {
        return;
    }
    let w = world();
    let rel = releases(&w, &["1.0.0", "1.1.0"]);
    publish(&w, &manifest(&[&rel[0], &rel[1]]), &rel);
    let host = Host::new(&w.dir, &w.repo, &w.url, &rel[1], 4, "");
    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1.1.0 is the newest"),
        "{}",
        show(&out)
    );
    let out = host.updog(&["check-update", "--json"]);
    assert_eq!(json(&out)["reason"], "nothing-newer");
    assert_eq!(json(&out)["exit_code"], 3);
    // `update` with nothing to do: same distinct code, disk untouched.
    let out = host.updog(&["update"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
    // A downgrade happens only with --image.
    let out = host.updog(&["update", "--image", "1.0.0", "--now"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(veritysetup_verify_b(&host.disk, &rel[0], &w.dir));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
    // A version that is not offered.
    let out = host.updog(&["check-update", "--image", "9.9.9"]);
    assert_eq!(code(&out), 7, "{}", show(&out));
    // --all lists everything applicable, newest first, on stdout; JSON keeps Bottlerocket's shape.
    let out = host.updog(&["check-update", "--all"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{VARIANT} 1.1.0\n{VARIANT} 1.0.0\n")
    );
    // check-update --json prints the manifest update object itself, pretty-printed, as
    // Bottlerocket's updog does (scripts read `.version`).
    let out = host.updog(&["--json", "-i", "1.0.0", "check-update", "--now"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let one = json(&out);
    assert!(text.trim_start().starts_with("{\n  \"variant\""), "{text}");
    // Bottlerocket's fields, in its order, then only our plan.
    let keys: Vec<&String> = one.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "variant",
            "arch",
            "version",
            "max_version",
            "waves",
            "images",
            "plan"
        ],
        "{text}"
    );
    assert_eq!(one["plan"]["to"], "1.0.0", "{text}");
    let out = host.updog(&["check-update", "--all", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all[0]["version"], "1.1.0");
    assert_eq!(all[1]["images"]["root"], rel[0].root_name.as_str());
}

/// 1.0.0 running, 1.1.0 published in two waves from 2030-01-01T00:00:00Z (+1 hour: half the
/// fleet, +1 day: all); the host's seed (1234) is in the second half.
fn in_a_later_wave() -> (World, Vec<Release>, Host) {
    let w = world();
    let rel = releases(&w, &["1.0.0", "1.1.0"]);
    let mut m = manifest(&[&rel[0], &rel[1]]);
    let policy = waves::WavePolicy::from_toml(
        "[[waves]]\nstart_after = \"1 hour\"\nfleet_percentage = 50\n\n[[waves]]\nstart_after = \"1 day\"\nfleet_percentage = 100\n",
        std::path::Path::new("test-waves.toml"),
    )
    .unwrap();
    let start: jiff::Timestamp = "2030-01-01T00:00:00Z".parse().unwrap();
    let n = m
        .set_waves(
            &VARIANT.parse().unwrap(),
            arch(),
            &Version::new(1, 1, 0),
            &policy,
            start,
        )
        .unwrap();
    assert_eq!(n, 1);
    publish(&w, &m, &rel);
    let host = Host::new(&w.dir, &w.repo, &w.url, &rel[0], 4, "");
    (w, rel, host)
}

#[test]
fn waves_with_an_injected_clock() {
    if !tools() {
        return;
    }
    let (_w, _rel, host) = in_a_later_wave();
    // Seed 1234 is in the second half of the fleet: not yet at the release time.
    let out = host.updog(&["check-update", "--at", "2030-01-01T00:30:00Z"]);
    assert_eq!(code(&out), 4, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1.1.0") && text.contains("wave opens at 2030-01-"),
        "{text}"
    );
    let out = host.updog(&["check-update", "--json", "--at", "2030-01-01T00:30:00Z"]);
    let j = json(&out);
    assert_eq!(j["reason"], "not-in-wave-yet");
    let opens: jiff::Timestamp = j["opens_at"].as_str().unwrap().parse().unwrap();
    assert!(opens > "2030-01-01T00:30:00Z".parse().unwrap());
    // check-update --all includes the wave check, as Bottlerocket's applicable list does:
    // 1.1.0 is not listed while this host's wave is closed, unless --now.
    let versions = |args: &[&str]| -> Vec<String> {
        let out = host.updog(args);
        assert_eq!(code(&out), 0, "{}", show(&out));
        json(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["version"].as_str().unwrap().to_string())
            .collect()
    };
    let closed = ["whats", "--all", "--json", "--at", "2030-01-01T00:30:00Z"];
    assert_eq!(versions(&closed), ["1.0.0"]);
    let forced = [
        "--now",
        "whats",
        "--all",
        "--json",
        "--at",
        "2030-01-01T00:30:00Z",
    ];
    assert_eq!(versions(&forced), ["1.1.0", "1.0.0"]);
    assert_eq!(
        versions(&["whats", "--all", "--json", "--at", "2030-02-01T00:00:00Z"]),
        ["1.1.0", "1.0.0"]
    );
    // When the wave has opened (the output told us when), the update is available.
    let out = host.updog(&["check-update", "--at", &opens.to_string()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let out = host.updog(&["check-update", "--at", "2030-02-01T00:00:00Z"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    // --now ignores waves.
    let out = host.updog(&["check-update", "--now", "--at", "2030-01-01T00:00:00Z"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// Bottlerocket#990: `updog update` exited 0 when the update was in a later wave and nothing
/// happened, so callers took "nothing done" for "updated". Here an `update` that does nothing has
/// its own exit code and JSON outcome (4: not yet in this host's wave; 3: nothing newer) and
/// leaves the disk untouched; callers written for Bottlerocket get its codes back on request
/// (`UPDOG_EXIT_CODES=bottlerocket`).
#[test]
fn bottlerocket_990_update_that_does_nothing_is_not_reported_as_updated() {
    if !tools() {
        return;
    }
    let (w, rel, host) = in_a_later_wave();
    let before = "2030-01-01T00:30:00Z";
    for image in ["update", "update-image"] {
        let out = host.updog(&[image, "--at", before]);
        assert_eq!(code(&out), 4, "{image}: {}", show(&out));
    }
    let out = host.updog(&["update", "--json", "--at", before]);
    let j = json(&out);
    assert_eq!(
        (
            j["outcome"].as_str(),
            j["reason"].as_str(),
            j["exit_code"].as_i64()
        ),
        (Some("no-update"), Some("not-in-wave-yet"), Some(4)),
        "{j}"
    );
    assert_eq!(host.flags(signpost::SetName::B).priority, 0);
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
    // Callers written for Bottlerocket's updog can ask for its exit codes: "no update required"
    // is 0 for update/update-image and 1 for check-update; the disk is untouched all the same.
    let br = |args: &[&str]| {
        let out = host
            .command(args)
            .env("UPDOG_EXIT_CODES", "bottlerocket")
            .output()
            .unwrap();
        (code(&out), out)
    };
    for args in [
        &["update", "--at", before][..],
        &["update-image", "--at", before],
    ] {
        let (c, out) = br(args);
        assert_eq!(c, 0, "{args:?}: {}", show(&out));
    }
    let (c, out) = br(&["check-update", "--at", before]);
    assert_eq!(c, 1, "{}", show(&out));
    let (c, out) = br(&["update", "--bogus"]);
    assert_eq!(c, 1, "usage is 1 too: {}", show(&out));
    assert_eq!(host.flags(signpost::SetName::B).priority, 0);
    let out = host
        .command(&["check-update"])
        .env("UPDOG_EXIT_CODES", "rocket")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use `abos` (the default) or `bottlerocket`")
    );
    // Once the host runs the newest release, `update` has nothing newer: 3, not 0.
    let newest = Host::new(&w.dir.join("newest"), &w.repo, &w.url, &rel[1], 4, "");
    let out = newest.updog(&["update", "--now"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert_eq!(newest.next_boot(), Some(signpost::SetName::A));
}

#[test]
fn version_lock_and_max_version_pull_back() {
    if !tools() {
        return;
    }
    let w = world();
    let rel = releases(&w, &["1.0.0", "1.1.0", "1.2.0"]);
    let mut m = manifest(&[&rel[0], &rel[1], &rel[2]]);
    publish(&w, &m, &rel);
    // Locked to the running version: nothing to do (distinct code 5).
    let host = Host::new(&w.dir, &w.repo, &w.url, &rel[0], 4, "");
    host.set_config(&w.url, "");
    let cfg = std::fs::read_to_string(host.root.join("etc/updog.toml")).unwrap();
    std::fs::write(
        host.root.join("etc/updog.toml"),
        cfg.replace("version_lock = \"latest\"", "version_lock = \"v1.0.0\""),
    )
    .unwrap();
    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 5, "{}", show(&out));
    // Locked to 1.1.0 while 1.2.0 exists: 1.1.0 is chosen.
    std::fs::write(
        host.root.join("etc/updog.toml"),
        cfg.replace("version_lock = \"latest\"", "version_lock = \"1.1.0\""),
    )
    .unwrap();
    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{VARIANT} 1.1.0")
    );
    std::fs::write(host.root.join("etc/updog.toml"), &cfg).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host.updog(&["check-update"]).stdout).trim(),
        format!("{VARIANT} 1.2.0")
    );

    // Pull-back: the publisher lowers max_version to 1.1.0; a host on 1.2.0 moves down.
    m.set_max_version(&Version::new(1, 1, 0), None, None);
    w.repo.publish(
        &m,
        &rel.iter()
            .flat_map(|r| r.target_files())
            .collect::<Vec<_>>(),
        RoleVersions::all(2),
    );
    let dir2 = w.dir.join("host2");
    std::fs::create_dir_all(&dir2).unwrap();
    let host2 = Host::new(&dir2, &w.repo, &w.url, &rel[2], 4, "");
    let out = host2.updog(&["update", "--now"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1.1.0"),
        "{}",
        show(&out)
    );
    assert!(veritysetup_verify_b(&host2.disk, &rel[1], &dir2));
    // And the host on 1.0.0 is offered 1.1.0, not 1.2.0.
    assert_eq!(
        String::from_utf8_lossy(&host.updog(&["check-update"]).stdout).trim(),
        format!("{VARIANT} 1.1.0")
    );
}

#[test]
fn no_update_for_this_variant_or_arch() {
    if !tools() {
        return;
    }
    let w = world();
    let rel = releases(&w, &["1.0.0"]);
    let mut m = Manifest::new();
    m.add_update(
        "other-variant".parse().unwrap(),
        arch(),
        rel[0].version.clone(),
        None,
        rel[0].images(),
    )
    .unwrap();
    let other_arch = if arch() == update_metadata::Arch::X86_64 {
        update_metadata::Arch::Aarch64
    } else {
        update_metadata::Arch::X86_64
    };
    m.add_update(
        VARIANT.parse().unwrap(),
        other_arch,
        rel[0].version.clone(),
        None,
        rel[0].images(),
    )
    .unwrap();
    publish(&w, &m, &rel);
    let host = Host::new(&w.dir, &w.repo, &w.url, &rel[0], 4, "");
    let out = host.updog(&["update", "--json"]);
    assert_eq!(code(&out), 6, "{}", show(&out));
    assert_eq!(json(&out)["reason"], "no-update-for-host");
    // Asking as the other variant (Bottlerocket's --variant) or architecture finds it.
    let out = host.updog(&["check-update", "--variant", "other-variant"]);
    assert_eq!(code(&out), 3, "entries exist, none newer: {}", show(&out));
    let out = host.updog(&[
        "check-update",
        "--variant",
        "other-variant",
        "--image",
        "1.0.0",
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "other-variant 1.0.0"
    );
    let out = host.updog(&[
        "check-update",
        "--arch",
        other_arch.as_str(),
        "--image",
        "1.0.0",
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}
