//! `generate-docs`: man pages (one per subcommand too) and shell completions, by abos-shell's
//! one docs generator (the exit-status table from [`crate::ExitStatus`]).

use crate::cli::Cli;
use crate::error::{self, Result};
use clap::CommandFactory;
use snafu::ResultExt;
use std::path::Path;

/// Writes `updog.1`, `updog-<sub>.1` and bash/zsh/fish completions into `out`.
pub fn generate(out: &Path) -> Result<Vec<std::path::PathBuf>> {
    let rows = abos_shell::exit::rows::<crate::ExitStatus>();
    abos_shell::docs::generate(Cli::command(), &rows, out).context(error::DocsSnafu { path: out })
}
