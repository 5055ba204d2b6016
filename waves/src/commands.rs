//! What the `waves` binary does, as library functions returning serialisable outcomes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;
use waves::chart::{Row, render_table, rows, write_svg};
use waves::{Eligibility, Result, Seed, WavePolicy, WaveSchedule, format_timestamp};

use crate::cli::Command;

/// The result of a `waves` command.
#[derive(Debug, Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Outcome {
    /// `waves schedule`.
    Schedule {
        /// Where the policy came from.
        policy: String,
        /// Release start.
        start: Timestamp,
        /// The manifest `waves` map.
        waves: WaveSchedule,
        /// Waves as hosts see them.
        rows: Vec<Row>,
        /// When every host is eligible.
        end: Option<Timestamp>,
        /// The SVG written, if any.
        svg: Option<PathBuf>,
    },
    /// `waves seed`.
    Seed {
        /// The seed.
        seed: Seed,
        /// When it opens.
        opens_at: Option<Timestamp>,
        /// Eligibility at `now`.
        now: Timestamp,
        /// The answer.
        eligibility: Eligibility,
    },
    /// Nothing to print (`generate-docs` is answered by main).
    Nothing,
}

/// Loads a policy from a path, or by built-in name if no such file exists.
pub fn load_policy(name: &str) -> Result<WavePolicy> {
    let path = Path::new(name);
    if !path.exists()
        && let Some(p) = WavePolicy::builtin(name)
    {
        return Ok(p);
    }
    WavePolicy::from_path(path)
}

/// Runs one command.
pub fn run(command: &Command) -> Result<Outcome> {
    match command {
        Command::Schedule(a) => {
            let policy = load_policy(&a.policy)?;
            let waves = policy.schedule(a.start)?;
            if let Some(out) = &a.svg {
                let title = format!("{} from {}", a.policy, format_timestamp(a.start));
                write_svg(out, &waves, a.start, &title)?;
            }
            Ok(Outcome::Schedule {
                policy: a.policy.clone(),
                start: a.start,
                rows: rows(&waves),
                end: waves.end(),
                waves,
                svg: a.svg.clone(),
            })
        }
        Command::Seed(a) => {
            let policy = load_policy(&a.policy)?;
            let waves = policy.schedule(a.start)?;
            let seed = Seed::new(a.seed)?;
            let now = a.now.unwrap_or_else(Timestamp::now);
            Ok(Outcome::Seed {
                seed,
                opens_at: waves.opens_at(seed),
                now,
                eligibility: waves.eligibility(seed, now),
            })
        }
        // Handled by main (abos-shell's docs generator) before `run`.
        Command::GenerateDocs { .. } => Ok(Outcome::Nothing),
    }
}

impl Outcome {
    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self {
            Outcome::Schedule {
                policy,
                start,
                waves,
                end,
                svg,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "policy {policy}, release start {}",
                    format_timestamp(*start)
                );
                if let Some(end) = end {
                    let _ = writeln!(out, "every host eligible by {}", format_timestamp(*end));
                }
                let _ = writeln!(out, "\nmanifest waves (seed bound: opens):");
                for (k, t) in waves.iter() {
                    let _ = writeln!(out, "  {k:>4}: {}", format_timestamp(t));
                }
                let _ = writeln!(out);
                out.push_str(&render_table(waves, Some(*start)));
                if let Some(svg) = svg {
                    let _ = writeln!(out, "\nchart written to {}", svg.display());
                }
            }
            Outcome::Seed {
                seed,
                opens_at,
                now,
                eligibility,
            } => {
                match opens_at {
                    Some(t) => {
                        let _ = writeln!(
                            out,
                            "seed {seed} becomes eligible at {}",
                            format_timestamp(*t)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "seed {seed}: no waves, eligible at once");
                    }
                }
                let state = match eligibility {
                    Eligibility::Eligible => "eligible",
                    Eligibility::NotYet { .. } => "not yet eligible",
                };
                let _ = writeln!(out, "at {}: {state}", format_timestamp(*now));
            }
            Outcome::Nothing => {}
        }
        out
    }

    /// JSON rendering.
    pub fn to_json(&self) -> std::result::Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}
