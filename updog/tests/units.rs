//! The shipped systemd units parse (`systemd-analyze verify`) and keep the required ordering.

use std::path::Path;

fn unit(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(name),
    )
    .unwrap()
}

#[test]
fn units_have_the_required_shape() {
    let timer = unit("updog.timer");
    assert!(timer.contains("RandomizedDelaySec="), "{timer}");
    let service = unit("updog.service");
    assert!(
        service.contains("ExecStart=/usr/bin/updog update-image"),
        "{service}"
    );
    assert!(service.contains("SuccessExitStatus=3 4 5 6 7"), "{service}");
    let mark = unit("mark-successful-boot.service");
    assert!(
        mark.contains("After=multi-user.target") && mark.contains("RefuseManualStart=true"),
        "{mark}"
    );
    assert!(
        mark.contains("ExecStart=/usr/bin/signpost mark-successful-boot"),
        "{mark}"
    );
    let health = unit("updog-health-check.service");
    for line in [
        "Before=boot-complete.target",
        "After=multi-user.target",
        "ExecStart=/usr/bin/updog health-check",
        "Conflicts=mark-successful-boot.service",
    ] {
        assert!(health.contains(line), "{line} missing:\n{health}");
    }
    let activate = unit("updog-activate.service");
    for line in [
        "ExecStart=/usr/bin/updog update --reboot",
        "SuccessExitStatus=3 4 5 6 7 10 21 22 23",
        "After=mark-successful-boot.service updog-health-check.service",
    ] {
        assert!(activate.contains(line), "{line} missing:\n{activate}");
    }
    assert!(unit("updog-activate.timer").contains("OnUnitActiveSec="));
}

#[test]
fn units_pass_systemd_analyze_verify() {
    if !test_support::require_tool("systemd-analyze") {
        return;
    }
    let dir = test_support::tempdir();
    let names = [
        "updog.timer",
        "updog.service",
        "mark-successful-boot.service",
        "updog-health-check.service",
        "updog-activate.service",
        "updog-activate.timer",
    ];
    for n in names {
        std::fs::write(dir.path().join(n), unit(n)).unwrap();
    }
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(names.iter().map(|n| dir.path().join(n)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The binaries are not installed on the build machine; anything else is a real problem.
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("is not executable"))
        .collect();
    assert!(problems.is_empty(), "{stderr}");
}
