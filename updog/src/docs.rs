//! `generate-docs`: man pages (one per subcommand too) and shell completions.

use crate::cli::Cli;
use crate::error::{self, Result};
use clap::CommandFactory;
use snafu::ResultExt;
use std::path::Path;

/// Writes `updog.1`, `updog-<sub>.1` and bash/zsh/fish completions into `out`.
pub fn generate(out: &Path) -> Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(out).context(error::DocsSnafu { path: out })?;
    let mut written = Vec::new();
    let cmd = Cli::command();
    let mut pages = vec![(String::from("updog"), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push((format!("updog-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in pages {
        let path = out.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(page)
            .title(name.to_uppercase())
            .render(&mut buf)
            .context(error::DocsSnafu { path: &path })?;
        std::fs::write(&path, buf).context(error::DocsSnafu { path: &path })?;
        written.push(path);
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut c = Cli::command();
        let path = clap_complete::generate_to(shell, &mut c, "updog", out)
            .context(error::DocsSnafu { path: out })?;
        written.push(path);
    }
    Ok(written)
}
