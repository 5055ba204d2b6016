//! Turning outcomes and errors into text and JSON (the binary prints these strings).

use crate::error::Error;
use crate::workflow::{Activation, Outcome};

/// Human text for an outcome (one or more lines).
pub fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        // One line, as Bottlerocket prints it (scripts read it); the delta is in --json and
        // `updog status`.
        Outcome::Available { update, .. } => format!("{} {}", update.variant, update.version),
        Outcome::All { updates } => updates
            .iter()
            .map(|u| format!("{} {}", u.variant, u.version))
            .collect::<Vec<_>>()
            .join("\n"),
        Outcome::NoUpdate(n) => n.to_string(),
        Outcome::Updated {
            update,
            activation,
            set,
            rebooting,
            ..
        } => {
            let what = match activation {
                Activation::Activate => "Update applied",
                Activation::StageOnly => "Update staged",
            };
            let mut s = format!("{what}: {} {} (set {set})", update.variant, update.version);
            if *rebooting {
                s.push_str("; rebooting");
            }
            s
        }
        Outcome::Applied { next, rebooting } => {
            format!(
                "Next boot: set {next}{}",
                if *rebooting { "; rebooting" } else { "" }
            )
        }
        Outcome::Reverted { next } => format!("Upgrade cancelled; next boot: set {next}"),
        Outcome::AlreadyStaged {
            update,
            activation,
            set,
            rebooting,
        } => {
            let mut s = format!(
                "Update {} {} is already staged and verified in set {set}; nothing downloaded",
                update.variant, update.version
            );
            if *activation == Activation::Activate {
                s.push_str("; it boots next");
            }
            if *rebooting {
                s.push_str("; rebooting");
            }
            s
        }
        Outcome::StagedOutsideWindow {
            update,
            set,
            opens_at,
            downloaded,
        } => format!(
            "Update staged, not activated: {} {} (set {set}){}; the maintenance window opens at {opens_at}",
            update.variant,
            update.version,
            if *downloaded {
                ""
            } else {
                ", already staged, nothing downloaded"
            }
        ),
        Outcome::Status(r) => status_text(r),
        Outcome::Health(h) => {
            let mut lines: Vec<String> = h
                .checks
                .iter()
                .map(|c| {
                    format!(
                        "{} {} ({} ms)",
                        if c.passed { "ok  " } else { "FAIL" },
                        c.name,
                        c.millis
                    )
                })
                .collect();
            lines.push(match h.result {
                "passed" => "Health checks passed; boot marked successful".to_owned(),
                "not-needed" => "The running set is already marked successful".to_owned(),
                _ => format!(
                    "Health check failed; action: {}; next boot: set {}{}",
                    h.action.unwrap_or("report"),
                    h.next_boot.as_deref().unwrap_or("none"),
                    if h.rebooting { "; rebooting" } else { "" }
                ),
            });
            if let Some(out) = h.checks.iter().find_map(|c| c.output.as_ref())
                && !out.is_empty()
            {
                lines.push(format!("output:\n{}", out.trim_end()));
            }
            lines.join("\n")
        }
    }
}

/// One line about a delta: planned bytes, or why not.
pub fn delta_text(d: &crate::delta_update::DeltaAvailability) -> String {
    let version = d
        .version
        .as_ref()
        .map(|v| format!("{v}: "))
        .unwrap_or_default();
    match (d.available, d.planned_fetch_bytes) {
        (true, Some(fetch)) => format!(
            "{version}available, {fetch} bytes to download instead of {} ({:.1} %), {} bytes reused",
            d.full_bytes,
            fetch as f64 * 100.0 / d.full_bytes.max(1) as f64,
            d.reuse_bytes.unwrap_or(0)
        ),
        _ => format!(
            "{version}not used: {}",
            d.reason.as_deref().unwrap_or("unknown")
        ),
    }
}

fn status_text(r: &crate::workflow::StatusReport) -> String {
    let st = &r.status;
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    let mut state = st.state.to_string();
    if r.stale {
        state.push_str(&format!(
            " (stale: pid {} no longer runs; the next command records the interruption and carries on)",
            st.pid.map_or_else(|| "?".to_owned(), |p| p.to_string())
        ));
    } else if r.busy {
        state.push_str(" (updog is running)");
    }
    let mut lines = vec![
        format!("state:          {state}"),
        format!(
            "running:        {}{}",
            opt(st.running_version.as_ref().map(ToString::to_string)),
            r.active_set
                .as_ref()
                .map(|s| format!(" (set {s})"))
                .unwrap_or_default()
        ),
        format!(
            "staged:         {}{}",
            opt(st.staged_version.as_ref().map(ToString::to_string)),
            st.staged_set
                .as_ref()
                .map(|s| format!(" (set {s})"))
                .unwrap_or_default()
        ),
        format!(
            "next version:   {}",
            opt(st.next_version.as_ref().map(ToString::to_string))
        ),
        format!("next boot:      set {}", opt(r.next_boot.clone())),
        format!(
            "last check:     {}",
            opt(st.last_check.map(|t| t.to_string()))
        ),
    ];
    if let Some(t) = st.wave_opens_at {
        lines.push(format!("wave opens:     {t}"));
    }
    if let Some(t) = st.window_opens_at {
        lines.push(format!("window opens:   {t}"));
    }
    if let Some(d) = &st.delta {
        lines.push(format!("delta:          {}", delta_text(d)));
    }
    if let Some(w) = &st.waiting {
        lines.push(format!(
            "waiting:        for a {} since {} (gives up at {}): {}",
            w.what, w.since, w.deadline, w.reason
        ));
    }
    if let Some(f) = &st.last_failure {
        lines.push(format!(
            "last failure:   {} at {}: {}",
            f.step,
            f.at,
            f.reason.lines().next().unwrap_or_default()
        ));
        if let Some(c) = &f.check {
            lines.push(format!("failed check:   {c}"));
        }
        if let Some(o) = &f.output {
            lines.push(format!("check output:\n{}", o.trim_end()));
        }
    }
    lines.join("\n")
}

/// JSON for an outcome, in Bottlerocket's shape wherever Bottlerocket's updog prints one, so
/// scripts and agents that read `.version` keep working when ours is swapped in:
/// - `check-update --json`: the manifest update object itself, pretty-printed (keys `variant`,
///   `arch`, `version`, `max_version`, `waves`, `images`, then any unknown fields);
/// - `check-update --all --json`: a pretty array of those objects;
/// - `update`/`update-image --json`: the same update object, pretty-printed, followed by our
///   fields (`outcome`, `activation`, `set`, `written` (per-image figures), `rebooting`,
///   `exit_code`);
/// - `already-staged` and `staged-outside-window` (ours): the same update object followed by our
///   fields, so `.version` reads the same;
/// - where Bottlerocket prints nothing (no update, apply, revert): one object tagged with
///   `outcome`, with `exit_code`.
pub fn outcome_json(outcome: &Outcome) -> String {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    match outcome {
        Outcome::All { updates } => serde_json::to_string_pretty(updates).unwrap_or_default(),
        // Bottlerocket's object, plus our plan (what `update` would write where, and in which
        // order) under a key of its own.
        Outcome::Available {
            update,
            plan,
            delta,
        } => {
            let mut value = serde_json::to_value(update).unwrap_or_default();
            if let (Some(obj), Some(plan)) = (value.as_object_mut(), plan) {
                obj.insert(
                    "plan".into(),
                    serde_json::to_value(plan).unwrap_or_default(),
                );
            }
            // The delta for the root image, when one is published.
            if let (Some(obj), Some(d)) = (value.as_object_mut(), delta) {
                obj.insert("delta".into(), serde_json::to_value(d).unwrap_or_default());
            }
            pretty(&value)
        }
        Outcome::Updated {
            update,
            activation,
            set,
            images,
            root_update,
            rebooting,
        } => {
            let mut value = serde_json::to_value(update).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                let mut put = |k: &str, v: serde_json::Value| {
                    obj.insert(k.into(), v);
                };
                put("outcome", "updated".into());
                put(
                    "activation",
                    serde_json::to_value(activation).unwrap_or_default(),
                );
                put("set", set.as_str().into());
                put("written", serde_json::to_value(images).unwrap_or_default());
                if let Some(r) = root_update {
                    put("root_update", serde_json::to_value(r).unwrap_or_default());
                }
                put("rebooting", (*rebooting).into());
                put("exit_code", outcome.exit_status().code().into());
            }
            pretty(&value)
        }
        // Same shape as `updated`: the update object first (scripts read `.version`).
        Outcome::AlreadyStaged {
            update,
            activation,
            set,
            rebooting,
        } => {
            let mut value = serde_json::to_value(update).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("outcome".into(), "already-staged".into());
                obj.insert(
                    "activation".into(),
                    serde_json::to_value(activation).unwrap_or_default(),
                );
                obj.insert("set".into(), set.as_str().into());
                obj.insert("rebooting".into(), (*rebooting).into());
                obj.insert("exit_code".into(), outcome.exit_status().code().into());
            }
            pretty(&value)
        }
        Outcome::StagedOutsideWindow {
            update,
            set,
            opens_at,
            downloaded,
        } => {
            let mut value = serde_json::to_value(update).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("outcome".into(), "staged-outside-window".into());
                obj.insert("set".into(), set.as_str().into());
                obj.insert("window_opens_at".into(), opens_at.to_string().into());
                obj.insert("downloaded".into(), (*downloaded).into());
                obj.insert("exit_code".into(), outcome.exit_status().code().into());
            }
            pretty(&value)
        }
        other => {
            let mut value = serde_json::to_value(other).unwrap_or_default();
            if let Some(obj) = value.as_object_mut() {
                obj.insert("exit_code".into(), outcome.exit_status().code().into());
            }
            value.to_string()
        }
    }
}

/// `error:` / `Caused by:` / `hint:` text (abos-shell's renderer: each cause once).
pub fn error_text(e: &Error) -> String {
    report(e).text().trim_end().to_owned()
}

/// JSON for an error.
pub fn error_json(e: &Error) -> String {
    report(e).json().to_string()
}

fn report(e: &Error) -> abos_shell::error::Report {
    abos_shell::error::Report::with_status(e, e.exit_code()).hint(e.hint())
}
