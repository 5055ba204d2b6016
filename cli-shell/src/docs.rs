//! One docs generator for every binary's hidden `generate-docs`: man pages and bash/zsh/fish
//! completions, with one layout.
//!
//! - one page per visible command: `bin(1)`, `bin-sub(1)`, `bin-sub-subsub(1)`; each subcommand
//!   page is titled and named with the binary (`updog-check-update - …`, synopsis
//!   `updog check-update …`) and lists the global options it accepts;
//! - hidden commands (`generate-docs`) and clap's `help` subcommand get no page, no mention in
//!   a SUBCOMMANDS list and no completion;
//! - the top page has an EXIT STATUS section: a real table (tbl) from the binary's
//!   [`crate::ExitCodes`] enum; subcommand pages point to it under SEE ALSO.

use crate::exit::Row;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes the man pages and completions of `cmd` (the binary's clap command, as derived: the
/// exit table is added here as a section, not from `--help`) into `out`; returns the files.
pub fn generate(cmd: clap::Command, exits: &[Row], out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)?;
    let cmd = prepare(cmd);
    let bin = cmd.get_name().to_owned();
    let mut written = Vec::new();
    for (name, page) in pages(&cmd) {
        let path = out.join(format!("{name}.1"));
        let source = format!("{bin} {}", cmd.get_version().unwrap_or_default());
        let text = man_page(&page, &bin, &source, exits, name == bin)?;
        write(&path, text.as_bytes())?;
        written.push(path);
    }
    for (shell, file) in [
        (clap_complete::Shell::Bash, format!("{bin}.bash")),
        (clap_complete::Shell::Zsh, format!("_{bin}")),
        (clap_complete::Shell::Fish, format!("{bin}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &bin, &mut buf);
        let path = out.join(file);
        write(&path, &buf)?;
        written.push(path);
    }
    Ok(written)
}

/// Pages and completions are replaced atomically (abos-fsio): a reader never sees half a page.
fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    abos_fsio::write_atomic(path, bytes, abos_fsio::PUBLIC).map_err(std::io::Error::from)
}

/// Builds `cmd` (names, global options propagated to subcommands) without the hidden commands
/// and clap's `help` subcommand.
pub fn prepare(cmd: clap::Command) -> clap::Command {
    let mut cmd = without_hidden(cmd);
    cmd.build();
    cmd
}

fn without_hidden(cmd: clap::Command) -> clap::Command {
    // clap cannot remove a subcommand (and clap_complete lists hidden ones): copy the command
    // with only its visible subcommands.
    let subs: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .map(without_hidden)
        .collect();
    copy_without_subcommands(&cmd).subcommands(subs)
}

fn copy_without_subcommands(from: &clap::Command) -> clap::Command {
    // A clap Command cannot drop subcommands, so copy what man pages and completions read:
    // name, about texts, after-help, version, arguments and the subcommand settings.
    let mut c = clap::Command::new(from.get_name().to_owned());
    if let Some(v) = from.get_version() {
        c = c.version(v.to_owned());
    }
    if let Some(a) = from.get_about() {
        c = c.about(a.clone());
    }
    if let Some(a) = from.get_long_about() {
        c = c.long_about(a.clone());
    }
    if let Some(a) = from.get_after_help() {
        c = c.after_help(a.clone());
    }
    if let Some(a) = from.get_after_long_help() {
        c = c.after_long_help(a.clone());
    }
    for alias in from.get_visible_aliases() {
        c = c.visible_alias(alias.to_owned());
    }
    if from.is_subcommand_required_set() {
        c = c.subcommand_required(true);
    }
    if from.is_arg_required_else_help_set() {
        c = c.arg_required_else_help(true);
    }
    if let Some(v) = from.get_subcommand_value_name() {
        c = c.subcommand_value_name(v.to_owned());
    }
    if let Some(h) = from.get_subcommand_help_heading() {
        c = c.subcommand_help_heading(h.to_owned());
    }
    for g in from.get_groups() {
        c = c.group(g.clone());
    }
    // `from` is not built yet (generate takes the derived command), so these are the
    // binary's own arguments: clap adds --help/--version on build.
    for a in from.get_arguments() {
        c = c.arg(a.clone());
    }
    c.disable_help_subcommand(true)
}

/// `(page name, command)` for the top command and every visible subcommand, depth first.
fn pages(cmd: &clap::Command) -> Vec<(String, clap::Command)> {
    let mut out = vec![(cmd.get_name().to_owned(), cmd.clone())];
    fn walk(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            out.push((name.clone(), sub.clone()));
            walk(sub, &name, out);
        }
    }
    walk(cmd, cmd.get_name(), &mut out);
    out
}

/// One man page: clap_mangen's sections, then EXIT STATUS (top page) or SEE ALSO.
fn man_page(
    page: &clap::Command,
    bin: &str,
    source: &str,
    exits: &[Row],
    top: bool,
) -> std::io::Result<String> {
    let name = page
        .get_display_name()
        .unwrap_or_else(|| page.get_name())
        .to_owned();
    let man = clap_mangen::Man::new(page.clone())
        .title(name.to_uppercase())
        .source(source.trim_end().to_owned());
    let mut buf = Vec::new();
    // `'\" t` asks man(1) to run tbl for the exit-status table.
    buf.write_all(b"'\\\" t\n")?;
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if page.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if page.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    if page.get_after_long_help().is_some() || page.get_after_help().is_some() {
        man.render_extra_section(&mut buf)?;
    }
    if top {
        buf.write_all(exit_section(exits).as_bytes())?;
    } else {
        buf.write_all(
            format!(".SH \"SEE ALSO\"\n\\fB{bin}\\fR(1) (global options, EXIT STATUS)\n")
                .as_bytes(),
        )?;
    }
    if page.get_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    String::from_utf8(buf).map_err(std::io::Error::other)
}

/// The EXIT STATUS section as a tbl table: code, name, meaning (wrapped).
pub fn exit_section(exits: &[Row]) -> String {
    let mut s = String::from(
        ".SH \"EXIT STATUS\"\n.TS\nallbox;\nr l lx.\n\\fBcode\\fR\t\\fBname\\fR\t\\fBmeaning\\fR\n",
    );
    for r in exits {
        s.push_str(&format!(
            "{}\t{}\tT{{\n{}\nT}}\n",
            r.code,
            roff_escape(r.name),
            roff_escape(r.meaning)
        ));
    }
    s.push_str(".TE\n");
    s
}

/// Escapes text for a roff line: backslashes, and a leading `.` or `'` that would read as a
/// request.
fn roff_escape(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("tool")
            .version("1.0")
            .about("A tool")
            .arg(
                clap::Arg::new("json")
                    .long("json")
                    .global(true)
                    .action(clap::ArgAction::SetTrue)
                    .help("JSON output"),
            )
            .subcommand(
                clap::Command::new("check")
                    .about("Checks")
                    .subcommand(clap::Command::new("deep").about("Deeper")),
            )
            .subcommand(clap::Command::new("generate-docs").hide(true))
            .subcommand(
                // A binary's own `--version` argument (os-image build's OS version) in a group.
                clap::Command::new("build")
                    .about("Builds")
                    .arg(clap::Arg::new("version").long("version"))
                    .group(clap::ArgGroup::new("what").arg("version")),
            )
    }

    const ROWS: &[Row] = &[
        Row {
            code: 0,
            name: "success",
            meaning: "success",
        },
        Row {
            code: 2,
            name: "usage",
            meaning: "usage or -bad input",
        },
    ];

    #[test]
    fn one_layout() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(cli(), ROWS, dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "tool.1",
                "tool-check.1",
                "tool-check-deep.1",
                "tool-build.1",
                "tool.bash",
                "_tool",
                "tool.fish"
            ]
        );
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        let top = read("tool.1");
        assert!(top.starts_with("'\\\" t\n"), "{top}");
        assert!(top.contains(".SH \"EXIT STATUS\"\n.TS\n"), "{top}");
        assert!(
            top.contains("2\tusage\tT{\nusage or \\-bad input\nT}"),
            "{top}"
        );
        assert!(!top.contains("tool-help"), "{top}");
        assert!(!top.contains("generate"), "{top}");
        let sub = read("tool-check.1");
        assert!(sub.contains("tool\\-check \\- Checks"), "{sub}");
        assert!(
            sub.contains("\\-\\-json"),
            "global option on the subcommand page: {sub}"
        );
        assert!(sub.contains("tool\\-check\\-deep(1)"), "{sub}");
        assert!(!sub.contains(".SH \"EXIT STATUS\""), "{sub}");
        assert!(sub.contains(".TH TOOL-CHECK 1  \"tool 1.0\""), "{sub}");
        assert!(sub.contains("SEE ALSO"), "{sub}");
        for c in ["tool.bash", "_tool", "tool.fish"] {
            let text = read(c);
            assert!(text.contains("check"), "{c}");
            assert!(!text.contains("generate-docs"), "{c}: {text}");
        }
    }
}
