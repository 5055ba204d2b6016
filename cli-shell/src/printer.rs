//! Where output goes: results on stdout, logs, progress and errors on stderr.
//!
//! The printer knows the mode (normal, quiet, verbose, JSON) and whether stderr is a terminal.
//! Progress bars draw only in normal mode on a terminal; log lines suspend them
//! ([`crate::log`]). With `--json`, stderr carries only JSON lines (progress events, log
//! lines, the error). Writing to a stdout whose reader went away (`cmd | head -1`, `| true`)
//! ends the output quietly with the command's own exit code.

use crate::error::Report;
use clap::CommandFactory;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

/// How much goes to stderr, and in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars (on a terminal) and log lines at the chosen level.
    Normal,
    /// No progress, no notes: results and errors only.
    Quiet,
    /// Log lines instead of progress bars (`-v`).
    Verbose,
    /// JSON: the result on stdout, JSON lines on stderr.
    Json,
}

impl Mode {
    /// The mode for the usual flags (`--json` wins, then `-q`, then `-v`).
    pub fn from_flags(json: bool, quiet: bool, verbose: u8) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else if verbose > 0 {
            Mode::Verbose
        } else {
            Mode::Normal
        }
    }
}

/// The binary's output (cheap to clone; clones share the progress bars).
#[derive(Debug, Clone)]
pub struct Printer {
    mode: Mode,
    tty: bool,
    bars: MultiProgress,
}

impl Printer {
    /// A printer for `mode`, drawing progress only when stderr is a terminal.
    pub fn new(mode: Mode) -> Self {
        Printer::with_terminal(mode, std::io::stderr().is_terminal())
    }

    /// A printer for `mode` with the terminal question answered (for tests).
    pub fn with_terminal(mode: Mode, tty: bool) -> Self {
        let draw = mode == Mode::Normal && tty;
        let bars = MultiProgress::with_draw_target(if draw {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Printer { mode, tty, bars }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether output is JSON.
    pub fn is_json(&self) -> bool {
        self.mode == Mode::Json
    }

    /// Whether progress bars are drawn.
    pub fn draws_progress(&self) -> bool {
        self.mode == Mode::Normal && self.tty
    }

    /// Whether log lines may carry ANSI colours: stderr is a terminal, `NO_COLOR` is unset and
    /// the output is not JSON.
    pub fn colour(&self) -> bool {
        self.tty && self.mode != Mode::Json && std::env::var_os("NO_COLOR").is_none()
    }

    /// A progress bar of `len` units with an indicatif `template` (hidden unless progress is
    /// drawn). Finish or drop it before printing the result.
    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        if !self.draws_progress() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.bars.add(bar)
    }

    /// Runs `f` with the progress bars cleared from the screen (to write to stderr).
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bars.suspend(f)
    }

    /// Clears every bar (before the result is printed).
    pub fn clear(&self) {
        let _ = self.bars.clear();
    }

    /// Writes one JSON line on stderr (JSON mode only; best effort: a closed stderr must not
    /// stop the work).
    pub fn json_line(&self, value: &impl serde::Serialize) {
        if self.is_json()
            && let Ok(line) = serde_json::to_string(value)
        {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// Writes a human note on stderr (not in quiet or JSON mode).
    pub fn note(&self, text: &str) {
        if matches!(self.mode, Mode::Normal | Mode::Verbose) {
            self.suspend(|| {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            });
        }
    }

    /// Writes an error on stderr: `error:` / `Caused by:` / `hint:` text, or in JSON mode one
    /// JSON line with the same content.
    pub fn error(&self, report: &Report) {
        let text = if self.is_json() {
            format!("{}\n", report.json())
        } else {
            report.text()
        };
        self.suspend(|| {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        });
    }

    /// Writes `text` to stdout and returns `code`. A reader that went away is not an error (the
    /// command's own code stands); another write failure is reported and returns
    /// `write_failure` (or `code` when that is already non-zero).
    pub fn stdout(&self, text: &str, code: u8, write_failure: u8) -> ExitCode {
        match write_stdout(text) {
            Ok(()) => ExitCode::from(code),
            Err(e) => {
                let report = Report::new(&e, write_failure);
                let report = Report {
                    message: format!("cannot write to stdout: {e}"),
                    causes: Vec::new(),
                    ..report
                };
                self.error(&report);
                ExitCode::from(if code == 0 { write_failure } else { code })
            }
        }
    }
}

/// Writes `text` to stdout and flushes. A closed pipe (EPIPE: the reader went away) is `Ok`:
/// the writer simply stops.
pub fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// `C::command()` with `E`'s exit-code table appended to the long help (`--help`).
pub fn command<C: CommandFactory, E: crate::ExitCodes>() -> clap::Command {
    with_exit_table(C::command(), &crate::exit::help_table::<E>())
}

/// Appends `table` to `cmd`'s long help (after any existing after-help text).
pub fn with_exit_table(cmd: clap::Command, table: &str) -> clap::Command {
    let existing = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string());
    let text = match existing {
        Some(e) => format!("{e}\n\n{table}"),
        None => table.to_owned(),
    };
    cmd.after_long_help(text)
}

/// Parses the process arguments into `C`, with `E`'s exit-code table in `--help`. Usage errors
/// are returned (clap's message and exit code via [`clap::Error::exit`]).
pub fn try_parse<C: clap::Parser, E: crate::ExitCodes>() -> Result<C, clap::Error> {
    try_parse_from::<C, E, _, _>(std::env::args_os())
}

/// [`try_parse`] from given arguments.
pub fn try_parse_from<C, E, I, T>(args: I) -> Result<C, clap::Error>
where
    C: clap::Parser,
    E: crate::ExitCodes,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = command::<C, E>();
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    C::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut cmd))
}

/// [`try_parse`], exiting as clap does on a usage error (2) or `--help`/`--version` (0).
pub fn parse<C: clap::Parser, E: crate::ExitCodes>() -> C {
    try_parse::<C, E>().unwrap_or_else(|e| e.exit())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn modes_from_flags() {
        assert_eq!(Mode::from_flags(true, true, 3), Mode::Json);
        assert_eq!(Mode::from_flags(false, true, 3), Mode::Quiet);
        assert_eq!(Mode::from_flags(false, false, 1), Mode::Verbose);
        assert_eq!(Mode::from_flags(false, false, 0), Mode::Normal);
    }

    #[test]
    fn bars_only_in_normal_mode_on_a_terminal() {
        assert!(Printer::with_terminal(Mode::Normal, true).draws_progress());
        for (mode, tty) in [
            (Mode::Normal, false),
            (Mode::Verbose, true),
            (Mode::Quiet, true),
            (Mode::Json, true),
        ] {
            let p = Printer::with_terminal(mode, tty);
            assert!(!p.draws_progress(), "{mode:?} {tty}");
            assert!(p.bar(10, "{bar}").is_hidden());
        }
        assert!(!Printer::with_terminal(Mode::Json, true).colour());
    }

    #[test]
    fn exit_table_follows_existing_long_help() {
        let cmd = clap::Command::new("x").after_help("Files: /etc/x");
        let cmd = with_exit_table(cmd, "Exit status:\n    0  success  ok");
        assert_eq!(
            cmd.get_after_long_help().unwrap().to_string(),
            "Files: /etc/x\n\nExit status:\n    0  success  ok"
        );
    }
}
