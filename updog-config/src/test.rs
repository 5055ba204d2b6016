use super::*;

const EXAMPLE: &str = r#"
metadata_base_url = "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64"
targets_base_url = "https://updates.bottlerocket.aws/targets/"
seed = 492
version_lock = "latest"
ignore_waves = true
no_proxy = ["testing"]
"#;

fn parse(text: &str) -> Result<Config> {
    Config::from_toml(text, Path::new("/etc/updog.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn bottlerocket_example_parses() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.seed.get(), 492);
    assert!(c.ignore_waves);
    assert_eq!(
        c.metadata_base_url.as_str(),
        "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64/"
    );
    // no_proxy is ignored without https_proxy, like Bottlerocket.
    assert!(c.network.no_proxy.is_empty());
    assert_eq!(c.reboot_command, ["shutdown", "-r", "now"]);
    assert!(c.maintenance_window.is_none());
    assert!(c.delta, "delta updates are on by default");
}

#[test]
fn proxy_and_lock() {
    let text = format!("{EXAMPLE}\nhttps_proxy = \"proxy:3128\"\n")
        .replace("version_lock = \"latest\"", "version_lock = \"v1.2.3\"");
    let c = parse(&text).unwrap();
    assert_eq!(c.network.https_proxy.as_deref(), Some("proxy:3128"));
    assert_eq!(c.network.no_proxy, ["testing"]);
    assert!(matches!(c.version_lock, VersionLock::Locked(ref v) if v.to_string() == "1.2.3"));
}

/// Every known key, set: accepted (so `KNOWN_KEYS` and the typed struct agree), and each value
/// lands where it belongs.
#[test]
fn every_known_key_is_accepted() {
    let text = r#"
metadata_base_url = "file:///srv/repo/metadata"
targets_base_url = "http://10.0.2.2:8000/targets/"
seed = 2047
version_lock = "1.2.3"
ignore_waves = false
https_proxy = "http://proxy:3128"
no_proxy = ["localhost", ".internal"]
reboot_command = ["systemctl", "reboot"]
retries = 0
retry_backoff_ms = 10
retry_backoff_max_ms = 20
retry_deadline_secs = 30
connect_timeout_secs = 3
read_timeout_secs = 4
checkpoint_mib = 8
arch = "aarch64"
maintenance_window = { days = ["sat"], start = "02:00", length_minutes = 120 }
health_check_timeout_secs = 7
health_failure_action = "rollback"
update_window = { days = ["sat", "Sunday"], start = "22:00", end = "04:30", time_zone = "Europe/Berlin" }
activation_delay_max_secs = 600
fleet = { endpoints = ["http://10.0.0.1:2379", "https://etcd.internal:2379"], group = "web", host = "web-07", slot_ttl_secs = 600, acquire_deadline_secs = 60, poll_ms = 250 }
health_units = ["kubelet.service", "containerd.socket", "-.mount"]
delta = false
"#;
    let set: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .collect();
    assert_eq!(set, KNOWN_KEYS);
    let c = parse(text).unwrap();
    assert_eq!(c.metadata_base_url.as_str(), "file:///srv/repo/metadata/");
    assert_eq!(c.seed.get(), 2047);
    assert_eq!(c.network.no_proxy, ["localhost", ".internal"]);
    assert_eq!(c.reboot_command, ["systemctl", "reboot"]);
    assert_eq!(c.network.retries, 0);
    assert_eq!(c.network.backoff, Duration::from_millis(10));
    assert_eq!(c.network.backoff_max, Duration::from_millis(20));
    assert_eq!(c.network.retry_deadline, Some(Duration::from_secs(30)));
    assert_eq!(c.network.connect_timeout, Duration::from_secs(3));
    assert_eq!(c.network.read_timeout, Duration::from_secs(4));
    assert_eq!(c.checkpoint_bytes, 8 << 20);
    assert_eq!(c.arch, Some(Arch::Aarch64));
    assert_eq!(c.health_check_timeout, Duration::from_secs(7));
    assert_eq!(c.health_failure_action, HealthFailureAction::Rollback);
    let w = c.update_window.clone().unwrap();
    assert_eq!(
        w.days,
        [jiff::civil::Weekday::Saturday, jiff::civil::Weekday::Sunday]
    );
    assert_eq!((w.start.hour(), w.end.hour(), w.end.minute()), (22, 4, 30));
    assert_eq!(w.time_zone_name, "Europe/Berlin");
    assert_eq!(c.activation_delay_max, Duration::from_secs(600));
    let f = c.fleet.clone().unwrap();
    assert_eq!(f.endpoints.len(), 2);
    assert_eq!(
        (f.group.as_str(), f.host.as_deref()),
        ("web", Some("web-07"))
    );
    assert_eq!(f.slot_ttl, Duration::from_secs(600));
    assert_eq!(f.acquire_deadline, Duration::from_secs(60));
    assert_eq!(f.poll, Duration::from_millis(250));
    assert!(!c.delta, "delta = false turns delta updates off");
    assert_eq!(
        c.health_units,
        ["kubelet.service", "containerd.socket", "-.mount"]
    );
    let w = c.maintenance_window.unwrap();
    assert_eq!(w["start"].as_str(), Some("02:00"));
    // A table form is kept too.
    let c = parse(&format!(
        "{EXAMPLE}[maintenance_window]\ndays = [\"sun\"]\n"
    ))
    .unwrap();
    assert!(c.maintenance_window.unwrap().is_table());
}

#[test]
fn unknown_keys_are_refused_with_file_line_and_hint() {
    assert_eq!(
        err(&format!("{EXAMPLE}seeed = 5\n")),
        "/etc/updog.toml:8: unknown key `seeed`; did you mean `seed`?"
    );
    // Bottlerocket's settings spelling.
    assert_eq!(
        err(&EXAMPLE.replace("ignore_waves", "ignore-waves")),
        "/etc/updog.toml:6: unknown key `ignore-waves`; did you mean `ignore_waves`?"
    );
    // Nothing close: the list of keys instead.
    let e = err(&format!("colour = \"blue\"\n{EXAMPLE}"));
    assert!(
        e.starts_with("/etc/updog.toml:1: unknown key `colour`; the keys are metadata_base_url, ")
            && e.contains("maintenance_window"),
        "{e}"
    );
    // A table of settings that are not ours is refused by its name.
    let e = err(&format!("{EXAMPLE}[network]\nretries = 1\n"));
    assert!(
        e.starts_with("/etc/updog.toml:8: unknown key `network`"),
        "{e}"
    );
    // The first unknown key in the file is the one reported.
    let e = err(&format!("zzz = 1\n{EXAMPLE}seeed = 5\n"));
    assert!(e.contains(":1: unknown key `zzz`"), "{e}");
    let e = parse(&format!("{EXAMPLE}seeed = 5\n")).unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("seeed"), Some(8)));
}

#[test]
fn url_keys_accept_only_http_https_and_file() {
    let e = err(&EXAMPLE.replace(
        "https://updates.bottlerocket.aws/targets/",
        "ftp://mirror.example/targets/",
    ));
    assert_eq!(
        e,
        "/etc/updog.toml:3: `targets_base_url` = \"ftp://mirror.example/targets/\" uses the scheme \"ftp\"; only https://, http:// and file:// URLs are accepted"
    );
    let e = parse(&EXAMPLE.replace("https://updates.bottlerocket.aws/2020", "/2020")).unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("metadata_base_url"), Some(2)));
    assert!(e.to_string().contains("is not a valid URL"), "{e}");
}

#[test]
fn bad_values_name_key_line_and_value() {
    assert_eq!(
        err(&EXAMPLE.replace("seed = 492", "seed = 4096")),
        "/etc/updog.toml:4: `seed` = 4096 is invalid; expected an integer 0..=2047"
    );
    let e = err(&EXAMPLE.replace("\"latest\"", "\"newest\""));
    assert!(
        e.starts_with("/etc/updog.toml:5: `version_lock` = \"newest\" is invalid"),
        "{e}"
    );
    let e = err(&format!("{EXAMPLE}arch = \"riscv64\"\n"));
    assert!(
        e.starts_with("/etc/updog.toml:8: `arch` = \"riscv64\""),
        "{e}"
    );
    let e = err(&format!("{EXAMPLE}reboot_command = []\n"));
    assert!(e.contains(":8: `reboot_command` = [] is invalid"), "{e}");
    let e = err(&format!("{EXAMPLE}retry_deadline_secs = 0\n"));
    assert!(e.contains(":8: `retry_deadline_secs` = 0"), "{e}");
}

#[test]
fn wrong_types_name_key_and_line() {
    let e = parse(&EXAMPLE.replace("seed = 492", "seed = \"492\"")).unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("seed"), Some(4)));
    assert!(
        e.to_string()
            .starts_with("/etc/updog.toml:4: `seed` is invalid: "),
        "{e}"
    );
    let e = parse(&format!("{EXAMPLE}retries = -1\n")).unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("retries"), Some(8)));
    let e = parse(&EXAMPLE.replace("ignore_waves = true", "ignore_waves = \"yes\"")).unwrap_err();
    assert_eq!((e.key(), e.line()), (Some("ignore_waves"), Some(6)));
}

#[test]
fn missing_keys_and_bad_syntax() {
    assert_eq!(
        err(&EXAMPLE.replace("seed = 492\n", "")),
        "/etc/updog.toml: required key `seed` is missing"
    );
    let e = parse("seed = \n").unwrap_err();
    assert!(matches!(e, Error::Syntax { line: 1, .. }), "{e}");
    assert!(e.to_string().starts_with("/etc/updog.toml:1:"), "{e}");
    let e = err(&format!("{EXAMPLE}seed = 5\n"));
    assert!(
        e.contains("/etc/updog.toml:8:") && e.contains("not valid TOML"),
        "{e}"
    );
}

#[test]
fn load_names_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("updog.toml");
    let e = Config::load(&path).unwrap_err();
    assert!(matches!(e, Error::Read { .. }));
    assert!(e.to_string().contains("updog.toml"), "{e}");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(Config::load(&path).unwrap().seed.get(), 492);
}

#[test]
fn non_utf8_is_refused_with_its_line() {
    let mut bytes = EXAMPLE.as_bytes().to_vec();
    bytes.extend_from_slice(b"https_proxy = \"p\xff\"\n");
    let e = Config::from_slice(&bytes, Path::new("/etc/updog.toml")).unwrap_err();
    assert_eq!(e.to_string(), "/etc/updog.toml:8: not UTF-8 text");
}

#[test]
fn health_keys_default_and_refuse_bad_values() {
    let c = parse(EXAMPLE).unwrap();
    assert_eq!(c.health_check_timeout, DEFAULT_HEALTH_CHECK_TIMEOUT);
    assert_eq!(
        c.health_failure_action,
        HealthFailureAction::RollbackAndReboot
    );
    let e = err(&format!("{EXAMPLE}health_failure_action = \"reboot\"\n"));
    assert!(
        e.contains(
            ":8: `health_failure_action` = \"reboot\" is invalid; expected \"rollback-and-reboot\""
        ),
        "{e}"
    );
    let e = err(&format!("{EXAMPLE}health_check_timeout_secs = 0\n"));
    assert!(e.contains(":8: `health_check_timeout_secs` = 0"), "{e}");
    assert!(c.health_units.is_empty());
    for bad in [
        "kubelet",
        "../x.service",
        "kubelet.service;reboot",
        "a b.service",
        "x.services",
        ".service",
    ] {
        let e = err(&format!(
            "{EXAMPLE}health_units = [\"ok.service\", {bad:?}]\n"
        ));
        assert!(
            e.contains(":8: `health_units`") && e.contains(bad) && e.contains("systemd unit names"),
            "{bad}: {e}"
        );
    }
    let e = err(&format!("{EXAMPLE}health_units = \"kubelet.service\"\n"));
    assert!(e.contains("health_units"), "{e}");
}

#[test]
fn update_window_is_strict() {
    let c = parse(EXAMPLE).unwrap();
    assert!(c.update_window.is_none());
    assert_eq!(c.activation_delay_max, Duration::ZERO);
    let w = parse(&format!(
        "{EXAMPLE}update_window = {{ days = [\"mon\"], start = \"02:00\", end = \"03:00\" }}\n"
    ))
    .unwrap()
    .update_window
    .unwrap();
    assert_eq!(w.time_zone_name, "UTC");
    for (window, want) in [
        (
            r#"{ days = ["mon"], start = "2:00", end = "03:00" }"#,
            r#":8: `update_window` = { start = "2:00" } is invalid; expected a local time "HH:MM""#,
        ),
        (
            r#"{ days = ["mo"], start = "02:00", end = "03:00" }"#,
            r#"`update_window` = { days = [.., "mo", ..] } is invalid"#,
        ),
        (
            r#"{ days = [], start = "02:00", end = "03:00" }"#,
            "expected at least one day of the week",
        ),
        (
            r#"{ days = ["mon"], start = "02:00", end = "24:00" }"#,
            r#"{ end = "24:00" }"#,
        ),
        (
            r#"{ days = ["mon"], start = "02:00", end = "03:00", time_zone = "Mars/Olympus" }"#,
            r#"{ time_zone = "Mars/Olympus" } is invalid; expected an IANA time zone"#,
        ),
        (
            r#"{ days = ["mon"], start = "02:00", end = "03:00", timezone = "UTC" }"#,
            "`update_window` is invalid: unknown field `timezone`",
        ),
    ] {
        let e = err(&format!("{EXAMPLE}update_window = {window}\n"));
        assert!(e.contains(want), "{window}: {e}");
    }
    let e = err(&format!("{EXAMPLE}activation_delay_max_secs = 60\n"));
    assert!(e.contains("together with `update_window`"), "{e}");
}

#[test]
fn fleet_table_is_strict() {
    assert!(parse(EXAMPLE).unwrap().fleet.is_none());
    let f = parse(&format!(
        "{EXAMPLE}[fleet]\nendpoints = [\"http://127.0.0.1:2379\"]\n"
    ))
    .unwrap()
    .fleet
    .unwrap();
    assert_eq!(f.group, "default");
    assert_eq!(f.slot_ttl, Duration::from_secs(900));
    let e = err(&format!(
        "{EXAMPLE}[fleet]\nendpoints = [\"10.0.0.1:2379\"]\n"
    ));
    assert!(
        e.contains("`fleet` = { endpoints = [.., \"10.0.0.1:2379\", ..] } is invalid"),
        "{e}"
    );
    let e = err(&format!("{EXAMPLE}[fleet]\nendpoints = []\n"));
    assert!(e.contains("at least one etcd endpoint"), "{e}");
    let e = err(&format!(
        "{EXAMPLE}[fleet]\nendpoints = [\"http://a:2379\"]\ngroupe = \"x\"\n"
    ));
    assert!(e.contains("unknown field `groupe`"), "{e}");
}
