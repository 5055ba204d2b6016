//! updog against real signed repositories over HTTP and file://, on real GPT disk images.

mod common;

use common::*;
use std::sync::Arc;
use test_support::http::{Fault, Server};
use updog::ExitStatus;

#[allow(dead_code)]
struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    server: Server,
    old: Release,
    new: Release,
    host: Host,
}

const ROOT_MIB: u64 = 8;

fn world(lz4_args: &[&str]) -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 3 * MIB, lz4_args);
    let new = make_release(&path, "1.1.0", 5 * MIB, lz4_args);
    let mut m = manifest(&[&old, &new]);
    let migration = add_migration(&mut m, &path, &old.version, &new.version);
    let files = [old.target_files(), new.target_files(), vec![migration]].concat();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, ROOT_MIB, "");
    World {
        _dir: dir,
        dir: path,
        repo,
        server,
        old,
        new,
        host,
    }
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn update_over_http_writes_verifies_and_activates() {
    if !tools() {
        return;
    }
    let w = world(&["-B4"]);
    let before_a = read_partition(&w.host.disk, ROOT_A, 3 * MIB);
    let out = w.host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{VARIANT} 1.1.0")
    );

    let out = w.host.updog(&["update", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Bottlerocket's shape: the update object, pretty-printed, and nothing else on stdout; our
    // figures follow its fields.
    let last: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(last["version"], "1.1.0", "{stdout}");
    assert_eq!(last["outcome"], "updated", "{stdout}");
    assert_eq!(last["set"], "B", "{stdout}");
    let keys: Vec<&String> = last.as_object().unwrap().keys().collect();
    assert_eq!(
        keys[..6],
        [
            "variant",
            "arch",
            "version",
            "max_version",
            "waves",
            "images"
        ],
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("{\"event\":\"image-start\"")),
        "{stderr}"
    );

    // Independent checks: veritysetup verifies set B; GRUB's rule boots B next; A untouched.
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(
        read_partition(&w.host.disk, BOOT_B, 2 * MIB),
        std::fs::read(&w.new.boot_img).unwrap()
    );
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    let b = w.host.flags(signpost::SetName::B);
    assert_eq!((b.priority, b.tries_left, b.successful), (2, 1, false));
    assert_eq!(read_partition(&w.host.disk, ROOT_A, 3 * MIB), before_a);

    // Every request carried the sorted query parameters.
    let reqs = w.server.requests();
    assert!(
        reqs.iter()
            .all(|r| r.query.contains("seed=1234") && r.query.contains("version=1.0.0")),
        "{reqs:#?}"
    );
    let root_req = reqs
        .iter()
        .find(|r| r.path.ends_with(&w.new.root_name))
        .unwrap();
    assert!(root_req.query.starts_with("migrations=migrate_v1.1.0_test-migration.lz4%2Cmanifest.json&seed=1234&target=1.1.0&version=1.0.0"), "{}", root_req.query);
    // Migrations cache for the migrator: manifest.json and the root chain.
    let mig = w.host.root.join("var/lib/bottlerocket-migrations");
    assert!(std::fs::read_dir(&mig).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".manifest.json")
    }));
    assert!(std::fs::read_dir(&mig).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".migrate_v1.1.0_test-migration.lz4")
    }));
    assert!(
        w.host
            .root
            .join("var/cache/bottlerocket-metadata/1.root.json")
            .exists()
    );
}

#[test]
fn unchanged_timestamp_fetches_nothing_else() {
    if !tools() {
        return;
    }
    let w = world(&[]);
    let out = w.host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    w.server.clear_requests();
    let out = w.host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let paths: Vec<String> = w.server.requests().iter().map(|r| r.path.clone()).collect();
    // Only the TUF root probe (required by the spec) and the timestamp.
    assert_eq!(
        paths,
        ["/metadata/2.root.json", "/metadata/timestamp.json"],
        "{paths:?}"
    );
}

#[test]
fn update_over_file_url() {
    if !tools() {
        return;
    }
    let w = world(&[]);
    let base = format!("file://{}/", w.repo.dir.display());
    w.host.set_config(&base, "");
    let out = w.host.updog(&["update-image"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Update staged"),
        "{}",
        show(&out)
    );
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    // Staged: valid but A still boots next.
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    let out = w.host.updog(&["update-apply"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    let out = w.host.updog(&["update-revert"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
}

#[test]
fn library_reports_progress_and_resumes_after_a_cut() {
    if !tools() {
        return;
    }
    let w = world(&["-B4"]);
    // Cut the root stream 3 times at ~1.5 MiB: retries continue with Range requests.
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: 1_500_000,
        times: 3,
    });
    let rep = Arc::new(updog::RecordingReporter::default());
    let env = w.host.env(rep.clone());
    let cmd = updog::Command::Update {
        image: None,
        waves: updog::Waves::Respect,
        activation: updog::Activation::Activate,
        reboot: updog::Reboot::NoReboot,
    };
    let outcome = updog::run(cmd, &env).unwrap();
    assert_eq!(outcome.exit_status(), ExitStatus::Success);
    let ranged: Vec<_> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&w.new.root_name))
        .collect();
    assert!(
        ranged.len() >= 2 && ranged[1].range.is_some(),
        "{ranged:#?}"
    );
    assert!(
        rep.events()
            .iter()
            .any(|e| matches!(e, updog::ProgressEvent::Retry { .. }))
    );
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
}

fn resume_case(lz4_args: &[&str], cut_percent: u64) {
    let w = world(lz4_args);
    w.host.set_config(&w.server.url(), "retries = 0\n");
    let len = std::fs::metadata(w.repo.target_file(&w.new.root_name))
        .unwrap()
        .len();
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: len * cut_percent / 100,
        times: 1,
    });
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 15, "{}", show(&out));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    w.server.clear_requests();
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming root image"),
        "{}",
        show(&out)
    );
    let sent: u64 = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&w.new.root_name))
        .map(|r| r.bytes_sent)
        .sum();
    assert!(sent < len, "resumed run fetched {sent} of {len} bytes");
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}

#[test]
fn resume_with_linked_blocks() {
    if tools() {
        // -BD: blocks reference the previous 64 KiB, which is re-read from the partition.
        resume_case(&["-BD", "-B4"], 70);
    }
}

#[test]
fn resume_with_default_4mib_blocks_and_block_checksums() {
    if tools() {
        // The 5 MiB image has one block boundary (after 4 MiB, at ~80% of the compressed
        // stream): cut after it.
        resume_case(&["-BX"], 92);
    }
}

/// A resume record written by an updog before twox-hash (format 2: the hand-written xxh32's
/// `{seed, v, total, buf}`) is discarded and the image downloaded from its first byte; it is
/// never read as the new state.
#[test]
fn resume_record_of_the_previous_format_restarts_the_download() {
    if !tools() {
        return;
    }
    let w = world(&["-B4"]);
    w.host.set_config(&w.server.url(), "retries = 0\n");
    let len = std::fs::metadata(w.repo.target_file(&w.new.root_name))
        .unwrap()
        .len();
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: len * 70 / 100,
        times: 1,
    });
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 15, "{}", show(&out));
    // Turn the record into what the previous updog wrote at the same checkpoint.
    let record = updog::config::HostPaths::new(&w.host.root)
        .resume_dir()
        .join("root.json");
    let mut r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(r["format"], 3, "{r}");
    assert!(r["compressed_offset"].as_u64().unwrap() > 0, "{r}");
    let total = r["decoder"]["content_hash"]["total_len"].clone();
    r["format"] = 2.into();
    r["decoder"]["content_hash"] =
        serde_json::json!({"seed": 0, "v": [1, 2, 3, 4], "total": total, "buf": []});
    std::fs::write(&record, serde_json::to_vec(&r).unwrap()).unwrap();
    w.server.clear_requests();
    let out = w.host.updog(&["update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("of format 2 (this updog writes format 3)")
            && !stderr.contains("resuming root image"),
        "{}",
        show(&out)
    );
    let root: Vec<_> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&w.new.root_name))
        .collect();
    assert!(root.iter().all(|r| r.range.is_none()), "{root:#?}");
    assert_eq!(root.iter().map(|r| r.bytes_sent).sum::<u64>(), len);
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}

#[test]
fn reboot_runs_the_configured_command() {
    if !tools() {
        return;
    }
    let w = world(&[]);
    let marker = w.dir.join("rebooted");
    w.host.set_config(&w.server.url(), "");
    let cfg = std::fs::read_to_string(w.host.root.join("etc/updog.toml"))
        .unwrap()
        .replace(
            "reboot_command = [\"true\"]",
            &format!(
                "reboot_command = [\"sh\", \"-c\", \"echo reboot >> {}\"]",
                marker.display()
            ),
        );
    std::fs::write(w.host.root.join("etc/updog.toml"), cfg).unwrap();
    let out = w.host.updog(&["update", "--reboot"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rebooting"),
        "{}",
        show(&out)
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "reboot\n");
    // update-image never reboots; update-apply --reboot does.
    let out = w.host.updog(&["update-revert"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let out = w.host.updog(&["update-apply", "--reboot"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "reboot\nreboot\n"
    );
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}

#[test]
fn errors_render_with_causes_hints_and_json() {
    if !tools() {
        return;
    }
    let w = world(&[]);
    w.host.set_config(&w.server.url(), "seed = 5000\n");
    let out = w.host.updog(&["check-update"]);
    // Out of range: a configuration error naming the file, key and value.
    assert_eq!(code(&out), 2, "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: ")
            && stderr.contains("updog.toml")
            && stderr.contains("updog.toml:3: `seed` = 5000 is invalid"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    let out = w.host.updog(&["check-update", "--json"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["outcome"], "error");
    assert_eq!(j["exit_code"], 2);
    // update-apply with nothing staged: refused by the partition flags, nothing changed.
    w.host.set_config(&w.server.url(), "");
    let out = w.host.updog(&["update-apply"]);
    assert_eq!(code(&out), 18, "{}", show(&out));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let dir = test_support::tempdir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_updog"))
        .args(["generate-docs", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    for f in [
        "updog.1",
        "updog-check-update.1",
        "updog-update.1",
        "updog-update-apply.1",
        "updog.bash",
        "_updog",
        "updog.fish",
    ] {
        let p = dir.path().join(f);
        assert!(
            p.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{f} missing"
        );
    }
    let man = std::fs::read_to_string(dir.path().join("updog.1")).unwrap();
    assert!(
        man.contains("host\\-root") && man.contains("not in this host"),
        "exit codes and options documented"
    );
}

#[test]
fn check_update_json_shows_the_plan_that_update_follows() {
    if !tools() {
        return;
    }
    let w = world(&["-B4"]);
    let disk_before = std::fs::read(&w.host.disk).unwrap();
    let out = w.host.updog(&["check-update", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Bottlerocket's object first; the plan under its own key.
    assert_eq!(j["version"], "1.1.0");
    let plan = &j["plan"];
    assert_eq!(plan["from"], "1.0.0", "{plan:#}");
    assert_eq!(plan["to"], "1.1.0", "{plan:#}");
    assert_eq!(plan["activation"], "activate", "{plan:#}");
    assert_eq!(plan["inactive"]["name"], "B", "{plan:#}");
    assert_eq!(
        plan["steps"],
        serde_json::json!([
            "clear-inactive",
            "fetch-migrations",
            "write-images",
            "verify",
            "mark-valid",
            "activate"
        ])
    );
    assert_eq!(
        plan["migrations"],
        serde_json::json!(["migrate_v1.1.0_test-migration.lz4", "manifest.json"])
    );
    let images = plan["images"].as_array().unwrap();
    let kinds: Vec<&str> = images.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["boot", "hash", "root"]);
    // Each image goes to set B's partition of its kind, with the signed length and hash of the
    // file the repository serves.
    let mut total = 0;
    for image in images {
        let kind = image["kind"].as_str().unwrap();
        assert_eq!(
            image["partition"], plan["inactive"][kind],
            "{kind} goes to set B's {kind} partition"
        );
        let served = std::fs::read(
            w.repo
                .dir
                .join("targets")
                .join(image["target"].as_str().unwrap()),
        )
        .or_else(|_| {
            // Consistent-snapshot targets are stored as <sha256>.<name>.
            let name = format!(
                "{}.{}",
                image["sha256"].as_str().unwrap(),
                image["target"].as_str().unwrap()
            );
            std::fs::read(w.repo.dir.join("targets").join(name))
        })
        .expect("the planned target is served");
        assert_eq!(image["length"], served.len() as u64);
        assert_eq!(
            image["sha256"].as_str().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&served))
        );
        total += served.len() as u64;
    }
    assert_eq!(plan["download_bytes"], total);
    // Planning wrote nothing.
    assert!(std::fs::read(&w.host.disk).unwrap() == disk_before);

    // `update` carries out that plan: the same set, every planned byte downloaded.
    let out = w.host.updog(&["update", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let u: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u["set"], "B");
    let downloaded: u64 = u["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["downloaded"].as_u64().unwrap())
        .sum();
    assert_eq!(downloaded, total);
}
