//! Every state × command: an explicit table over the states of a real update cycle, and
//! invariants over a full grid of flag values.

use super::*;
use crate::Error;

/// "p/t/s" → Flags.
fn f(text: &str) -> Flags {
    let v: Vec<u8> = text.split('/').map(|x| x.parse().unwrap()).collect();
    Flags {
        priority: v[0],
        tries_left: v[1],
        successful: v[2] == 1,
    }
}

/// "A=1/0/1 B=0/0/0 e=1" (B may be "-").
fn st(text: &str) -> DiskState {
    let mut s = DiskState {
        a: Flags::default(),
        b: None,
        ever_booted: false,
    };
    for part in text.split_whitespace() {
        let (k, v) = part.split_once('=').unwrap();
        match k {
            "A" => s.a = f(v),
            "B" => s.b = (v != "-").then(|| f(v)),
            "e" => s.ever_booted = v == "1",
            _ => panic!("bad key {k}"),
        }
    }
    s
}

fn outcome(r: Result<DiskState>) -> String {
    match r {
        Ok(s) => {
            let fl =
                |f: Flags| format!("{}/{}/{}", f.priority, f.tries_left, u8::from(f.successful));
            format!(
                "A={} B={} e={}",
                fl(s.a),
                s.b.map(fl).unwrap_or_else(|| "-".into()),
                u8::from(s.ever_booted)
            )
        }
        Err(e) => match e {
            Error::InactiveMissing { .. } => "ERR InactiveMissing".into(),
            Error::NoSuchSet { .. } => "ERR NoSuchSet".into(),
            Error::AlreadyMarkedForUpgrade { .. } => "ERR AlreadyMarkedForUpgrade".into(),
            Error::NotMarkedValid { .. } => "ERR NotMarkedValid".into(),
            Error::NotValidForRollback { .. } => "ERR NotValidForRollback".into(),
            Error::WouldLeaveNothingBootable { .. } => "ERR NothingBootable".into(),
            other => panic!("unexpected error {other}"),
        },
    }
}

use Command::*;

/// (state, active, [expected outcome for each of Command::ALL in order]).
const TABLE: &[(&str, &str, SetName, [&str; 6])] = &[
    (
        "fresh image, first boot",
        "A=1/0/1 B=0/0/0 e=0",
        SetName::A,
        [
            "A=1/0/1 B=0/0/0 e=1",
            "A=1/0/1 B=0/0/0 e=0",
            "A=1/0/1 B=0/1/0 e=0",
            "ERR NotMarkedValid",
            "A=2/0/1 B=0/0/0 e=0",
            "ERR NotValidForRollback",
        ],
    ),
    (
        "inactive written and marked valid",
        "A=1/0/1 B=0/1/0 e=1",
        SetName::A,
        [
            "A=1/0/1 B=0/1/0 e=1",
            "A=1/0/1 B=0/0/0 e=1",
            "A=1/0/1 B=0/1/0 e=1",
            "A=1/0/1 B=2/1/0 e=1",
            "A=2/0/1 B=0/1/0 e=1",
            "ERR NotValidForRollback",
        ],
    ),
    (
        "upgrade requested, before reboot",
        "A=1/0/1 B=2/1/0 e=1",
        SetName::A,
        [
            "A=1/0/1 B=2/1/0 e=1",
            "A=1/0/1 B=0/0/0 e=1",
            "A=1/0/1 B=2/1/0 e=1",
            "ERR AlreadyMarkedForUpgrade",
            "A=2/0/1 B=0/1/0 e=1",
            "A=1/0/1 B=2/1/0 e=1",
        ],
    ),
    (
        "trial boot of B (GRUB took its try)",
        "A=1/0/1 B=2/0/0 e=1",
        SetName::B,
        [
            "A=1/0/1 B=2/0/1 e=1",
            // Bottlerocket would clear A and leave nothing bootable: refused.
            "ERR NothingBootable",
            "A=1/1/1 B=2/0/0 e=1",
            "ERR AlreadyMarkedForUpgrade",
            // Bottlerocket would set A=0 and leave nothing bootable: refused.
            "ERR NothingBootable",
            "A=2/0/1 B=1/0/0 e=1",
        ],
    ),
    (
        "B booted and marked successful",
        "A=1/0/1 B=2/0/1 e=1",
        SetName::B,
        [
            "A=1/0/1 B=2/0/1 e=1",
            "A=0/0/0 B=2/0/1 e=1",
            "A=1/1/1 B=2/0/1 e=1",
            "ERR AlreadyMarkedForUpgrade",
            "A=0/0/1 B=2/0/1 e=1",
            "A=2/0/1 B=1/0/1 e=1",
        ],
    ),
    (
        "B failed its trial, back on A",
        "A=1/0/1 B=2/0/0 e=1",
        SetName::A,
        [
            "A=1/0/1 B=2/0/0 e=1",
            "A=1/0/1 B=0/0/0 e=1",
            "A=1/0/1 B=2/1/0 e=1",
            "ERR AlreadyMarkedForUpgrade",
            "A=2/0/1 B=0/0/0 e=1",
            "ERR NotValidForRollback",
        ],
    ),
    (
        "after cancel-upgrade",
        "A=2/0/1 B=0/1/0 e=1",
        SetName::A,
        [
            "A=2/0/1 B=0/1/0 e=1",
            "A=2/0/1 B=0/0/0 e=1",
            "A=2/0/1 B=0/1/0 e=1",
            "A=1/0/1 B=2/1/0 e=1",
            "A=2/0/1 B=0/1/0 e=1",
            "ERR NotValidForRollback",
        ],
    ),
    (
        "old set successful with priority 0 (rollback target)",
        "A=0/0/1 B=2/0/1 e=1",
        SetName::B,
        [
            "A=0/0/1 B=2/0/1 e=1",
            "A=0/0/0 B=2/0/1 e=1",
            "A=0/1/1 B=2/0/1 e=1",
            "ERR AlreadyMarkedForUpgrade",
            "A=0/0/1 B=2/0/1 e=1",
            "A=2/0/1 B=1/0/1 e=1",
        ],
    ),
    (
        "nothing bootable at all",
        "A=0/0/0 B=0/0/0 e=0",
        SetName::A,
        [
            "A=0/0/1 B=0/0/0 e=1",
            "A=0/0/0 B=0/0/0 e=0",
            "A=0/0/0 B=0/1/0 e=0",
            "ERR NotMarkedValid",
            "A=2/0/0 B=0/0/0 e=0",
            "ERR NotValidForRollback",
        ],
    ),
    (
        "single-set disk",
        "A=1/0/1 B=- e=0",
        SetName::A,
        [
            "A=1/0/1 B=- e=1",
            "ERR InactiveMissing",
            "ERR InactiveMissing",
            "ERR InactiveMissing",
            "ERR InactiveMissing",
            "ERR InactiveMissing",
        ],
    ),
    (
        "single-set disk, B claimed active",
        "A=1/0/1 B=- e=0",
        SetName::B,
        [
            "ERR NoSuchSet",
            "ERR NoSuchSet",
            "ERR NoSuchSet",
            "ERR NoSuchSet",
            "ERR NoSuchSet",
            "ERR NoSuchSet",
        ],
    ),
];

#[test]
fn every_state_times_every_command() {
    let mut failures = Vec::new();
    for (name, state, active, expected) in TABLE {
        for (cmd, want) in Command::ALL.iter().zip(expected) {
            let got = outcome(transition(&st(state), *active, *cmd));
            if got != *want {
                failures.push(format!(
                    "{name} [{state}, active {active}] {cmd}: want {want}, got {got}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn update_cycle_then_failed_trial_falls_back() {
    let s = st("A=1/0/1 B=0/0/0 e=1");
    let s = transition(&s, SetName::A, ClearInactive).unwrap();
    let s = transition(&s, SetName::A, MarkInactiveValid).unwrap();
    let s = transition(&s, SetName::A, UpgradeToInactive).unwrap();
    let (chosen, s) = boot_decision(&s).unwrap();
    assert_eq!(chosen, SetName::B);
    // B dies before mark-successful-boot: the next boot falls back to A by itself.
    let (chosen, s2) = boot_decision(&s).unwrap();
    assert_eq!(chosen, SetName::A);
    assert_eq!(
        s2, s,
        "a successful set with no tries is picked without writing"
    );
    // Had B succeeded instead:
    let s = transition(&s, SetName::B, MarkSuccessfulBoot).unwrap();
    assert_eq!(boot_decision(&s).unwrap().0, SetName::B);
}

#[test]
fn grub_rule_and_ties() {
    assert_eq!(
        next_boot(&st("A=1/0/1 B=1/0/1 e=1")),
        Some(SetName::A),
        "tie goes to A"
    );
    assert_eq!(next_boot(&st("A=1/0/1 B=2/0/1 e=1")), Some(SetName::B));
    assert_eq!(
        next_boot(&st("A=0/5/1 B=0/0/0 e=1")),
        None,
        "priority 0 never boots"
    );
    assert_eq!(
        next_boot(&st("A=3/0/0 B=1/1/0 e=1")),
        Some(SetName::B),
        "A has no tries"
    );
    assert_eq!(next_boot(&st("A=1/0/1 B=- e=0")), Some(SetName::A));
    let (_, after) = boot_decision(&st("A=1/0/1 B=2/3/0 e=1")).unwrap();
    assert_eq!(after.b.unwrap().tries_left, 2);
    assert_eq!(boot_decision(&st("A=0/0/0 B=0/0/0 e=1")), None);
}

fn grid() -> Vec<DiskState> {
    let mut flags = Vec::new();
    for p in [0, 1, 2, 3, 15] {
        for t in [0, 1, 2, 15] {
            for s in [false, true] {
                flags.push(Flags {
                    priority: p,
                    tries_left: t,
                    successful: s,
                });
            }
        }
    }
    let mut out = Vec::new();
    for a in &flags {
        for e in [false, true] {
            out.push(DiskState {
                a: *a,
                b: None,
                ever_booted: e,
            });
            for b in &flags {
                out.push(DiskState {
                    a: *a,
                    b: Some(*b),
                    ever_booted: e,
                });
            }
        }
    }
    out
}

#[test]
fn invariants_over_the_full_grid() {
    for state in grid() {
        for active in [SetName::A, SetName::B] {
            for cmd in Command::ALL {
                let Ok(after) = transition(&state, active, cmd) else {
                    continue;
                };
                let inactive = active.other();
                let (b, a) = (state.get(active).unwrap(), after.get(active).unwrap());
                // Never lose bootability.
                if next_boot(&state).is_some() {
                    assert!(next_boot(&after).is_some(), "{cmd} on {state:?}");
                }
                match cmd {
                    MarkSuccessfulBoot => {
                        assert_eq!(
                            a,
                            Flags {
                                successful: true,
                                ..b
                            }
                        );
                        assert!(after.ever_booted);
                        assert_eq!(after.get(inactive), state.get(inactive));
                    }
                    ClearInactive | MarkInactiveValid => {
                        assert_eq!(a, b);
                        assert_eq!(after.ever_booted, state.ever_booted);
                    }
                    UpgradeToInactive | CancelUpgrade | RollbackToInactive => {
                        assert_eq!((a.tries_left, a.successful), (b.tries_left, b.successful));
                        assert_eq!(after.ever_booted, state.ever_booted);
                    }
                }
                match cmd {
                    UpgradeToInactive | RollbackToInactive => {
                        assert_eq!(next_boot(&after), Some(inactive), "{cmd} on {state:?}");
                    }
                    CancelUpgrade if next_boot(&state).is_some() => {
                        assert_eq!(next_boot(&after), Some(active), "{cmd} on {state:?}");
                    }
                    ClearInactive => assert!(!after.get(inactive).unwrap().bootable()),
                    _ => {}
                }
            }
        }
    }
}

/// Which sets a change promotes (and so must hold something bootable): newly successful, newly
/// bootable or raised while bootable, and a new next boot; demotions and tries decrements none.
#[test]
fn promoted_sets() {
    let p = |before: &str, after: &str| promoted(&st(before), &st(after));
    // mark-successful-boot on B (wrong --active): B newly successful although not bootable.
    assert_eq!(
        p("A=1/0/1 B=0/0/0 e=1", "A=1/0/1 B=0/0/1 e=1"),
        [SetName::B]
    );
    // upgrade-to-inactive: B bootable and next; A lowered.
    assert_eq!(
        p("A=1/0/1 B=0/1/0 e=1", "A=1/0/1 B=2/1/0 e=1"),
        [SetName::B]
    );
    // cancel-upgrade from B: A raised to 2 (and next).
    assert_eq!(
        p("A=1/0/1 B=2/0/1 e=1", "A=2/0/1 B=0/0/1 e=1"),
        [SetName::A]
    );
    // clear-inactive of a pending B: A becomes the next boot again, so A is checked.
    assert_eq!(
        p("A=1/0/1 B=2/1/0 e=1", "A=1/0/1 B=0/0/0 e=1"),
        [SetName::A]
    );
    // clear-inactive of an idle B, mark-inactive-valid, a tries decrement: nothing promoted.
    assert!(p("A=1/0/1 B=0/1/0 e=1", "A=1/0/1 B=0/0/0 e=1").is_empty());
    assert!(p("A=1/0/1 B=0/0/0 e=1", "A=1/0/1 B=0/1/0 e=1").is_empty());
    assert!(p("A=1/0/1 B=2/2/0 e=1", "A=1/0/1 B=2/1/0 e=1").is_empty());
    // Unchanged state: nothing.
    assert!(p("A=1/0/1 B=0/0/0 e=0", "A=1/0/1 B=0/0/0 e=0").is_empty());
    // Every transition of the grid: the promoted sets are exactly those whose flags improved
    // or that became next; a refused transition is never consulted.
    for s in grid() {
        for active in [SetName::A, SetName::B] {
            for cmd in Command::ALL {
                if let Ok(after) = transition(&s, active, cmd) {
                    for set in promoted(&s, &after) {
                        assert!(
                            after.get(set) != s.get(set) || next_boot(&after) != next_boot(&s),
                            "{cmd} from {s:?}: {set} promoted without a change"
                        );
                    }
                }
            }
        }
    }
}
