//! Command-line definitions for the `waves` binary (clap derive only; the library has no clap).

use std::path::PathBuf;

use abos_shell::log::LogLevel;
use clap::{ArgAction, Parser, Subcommand};
use jiff::Timestamp;

/// Plan rollout waves: see when each part of the fleet may take a release.
#[derive(Debug, Parser)]
#[command(
    name = "waves",
    version,
    about = "Show how a wave policy rolls a release out over the fleet",
    long_about = "Show how a wave policy rolls a release out over the fleet.\n\n\
        A policy is a TOML file of [[waves]] with `start_after` (\"N minutes|hours|days|weeks\" \
        after the release start, or an RFC3339 time) and `fleet_percentage` (cumulative, 1-100). \
        POLICY is a file path or one of the built-in policies: default, accelerated, slow-roll, ohno."
)]
pub struct Args {
    /// Log level for messages on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// More logging (-v info, -vv debug); overrides --log-level.
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a policy's schedule for a release start time: the manifest `waves` keys, a table of
    /// waves (seeds, opening times, fleet share) and optionally an SVG chart.
    #[command(after_long_help = "\
How hosts are spread: every host has a seed 0-2047. The seeds of a wave open one after another,
evenly from the wave's start to the next wave's start (so a wave is fully open when the next one
starts). The last wave is spread over the same duration as the wave before it. The manifest keys
are exactly Bottlerocket's (the seed bound of the previous wave), so Bottlerocket hosts read the
same manifest; they open seed 0 at once and the whole last wave at its start.

Example:
  waves schedule default --start 2025-08-25T17:00:00Z --svg rollout.svg")]
    Schedule(ScheduleArgs),
    /// Tell when one host seed becomes eligible under a policy and release start time.
    Seed(SeedArgs),
    /// Write man pages (one per subcommand) and bash/zsh/fish completions to a directory.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `waves schedule`.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Policy file, or a built-in policy name (default, accelerated, slow-roll, ohno).
    pub policy: String,
    /// Release start time (RFC3339, e.g. 2025-08-25T17:00:00Z); offsets count from here.
    #[arg(long, value_parser = parse_time)]
    pub start: Timestamp,
    /// Also write a chart of the share of the fleet eligible over time to this SVG file.
    #[arg(long, value_name = "OUT.svg")]
    pub svg: Option<PathBuf>,
}

/// `waves seed`.
#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Policy file, or a built-in policy name.
    pub policy: String,
    /// Release start time (RFC3339).
    #[arg(long, value_parser = parse_time)]
    pub start: Timestamp,
    /// The host's seed (0-2047).
    #[arg(long)]
    pub seed: u32,
    /// The time to check eligibility at (RFC3339); defaults to the current time.
    #[arg(long, value_parser = parse_time)]
    pub now: Option<Timestamp>,
}

fn parse_time(s: &str) -> std::result::Result<Timestamp, String> {
    waves::parse_timestamp(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_schedule() {
        let a = Args::try_parse_from([
            "waves",
            "schedule",
            "default",
            "--start",
            "2025-08-25T17:00:00Z",
            "--json",
        ])
        .unwrap();
        assert!(a.json);
        assert!(matches!(a.command, Command::Schedule(ref s) if s.policy == "default"));
        let e = Args::try_parse_from(["waves", "schedule", "default", "--start", "tomorrow"])
            .unwrap_err();
        assert!(e.to_string().contains("tomorrow"), "{e}");
    }
}
