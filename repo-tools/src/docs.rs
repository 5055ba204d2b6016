//! `generate-docs`: man pages (one per command and subcommand) and shell completions.

use crate::error::{self, Result};
use clap::CommandFactory;
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// Writes `repo-tools.1`, `repo-tools-<cmd>.1`, `repo-tools-root-<sub>.1`, and bash/zsh/fish
/// completions into `out`.
pub fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).context(error::CreateDirSnafu { path: out })?;
    let mut cmd = crate::cli::Cli::command();
    cmd.build();
    let mut written = Vec::new();
    man_pages(&cmd, "repo-tools", out, &mut written)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "repo-tools", &mut buf);
        let name = match shell {
            clap_complete::Shell::Bash => "repo-tools.bash",
            clap_complete::Shell::Zsh => "_repo-tools",
            _ => "repo-tools.fish",
        };
        let path = out.join(name);
        crate::fsio::write_atomic(&path, &buf)?;
        written.push(path);
    }
    Ok(written)
}

fn man_pages(
    cmd: &clap::Command,
    name: &str,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .render(&mut buf)
        .context(error::WriteFileSnafu {
            path: out.join(format!("{name}.1")),
        })?;
    let path = out.join(format!("{name}.1"));
    crate::fsio::write_atomic(&path, &buf)?;
    written.push(path);
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), out, written)?;
    }
    Ok(())
}
