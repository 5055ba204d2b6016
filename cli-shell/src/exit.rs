//! Exit-code tables: one enum per binary implements [`ExitCodes`]; the table shown by `--help`,
//! the man page's EXIT STATUS section and README's row are all rendered from it.

/// A binary's documented exit statuses (never renumbered: operators script against them).
pub trait ExitCodes: Copy + 'static {
    /// Every status, in code order.
    fn all() -> &'static [Self];
    /// The process exit code.
    fn code(self) -> u8;
    /// A short stable name (kebab-case), as in JSON output.
    fn name(self) -> &'static str;
    /// What the status means, one sentence without markup (README's text for the code).
    fn meaning(self) -> &'static str;
}

/// One row of an exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// The process exit code.
    pub code: u8,
    /// Stable name.
    pub name: &'static str,
    /// Meaning.
    pub meaning: &'static str,
}

/// The rows of `E`'s table.
pub fn rows<E: ExitCodes>() -> Vec<Row> {
    E::all()
        .iter()
        .map(|&e| Row {
            code: e.code(),
            name: e.name(),
            meaning: e.meaning(),
        })
        .collect()
}

/// The heading that starts the table in `--help`.
pub const HELP_HEADING: &str = "Exit status:";

/// The table as plain text for `--help` (after_help): a heading, then one row per code with the
/// code right-aligned, the name and the meaning in columns; a long meaning wraps under itself
/// (rows fit in [`HELP_WIDTH`] columns, clap's width when stdout is not a terminal).
pub fn help_table<E: ExitCodes>() -> String {
    render_help(&rows::<E>())
}

/// [`help_table`] for rows.
pub fn render_help(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let indent = 2 + 3 + 2 + width + 2;
    let room = HELP_WIDTH.saturating_sub(indent).max(20);
    let mut s = String::from(HELP_HEADING);
    for r in rows {
        s.push_str(&format!("\n  {:>3}  {:<width$}  ", r.code, r.name));
        let mut line = 0;
        for word in r.meaning.split_whitespace() {
            if line > 0 && line + 1 + word.len() > room {
                s.push('\n');
                s.push_str(&" ".repeat(indent));
                line = 0;
            } else if line > 0 {
                s.push(' ');
                line += 1;
            }
            s.push_str(word);
            line += word.len();
        }
    }
    s
}

/// The widest a `--help` table row gets.
pub const HELP_WIDTH: usize = 100;

/// README's form of the table: `0 meaning; 1 meaning; …` (the text of the binary's row in the
/// workspace README's exit-code table, with its markdown backticks removed).
pub fn readme_row(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| format!("{} {}", r.code, r.meaning))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Finds `binary`'s row in a README exit-code table (`| \`binary\` | codes |`) and returns the
/// codes cell with backticks removed, or None.
pub fn find_readme_row(readme: &str, binary: &str) -> Option<String> {
    let prefix = format!("| `{binary}` |");
    let line = readme.lines().find(|l| l.starts_with(&prefix))?;
    let cell = line[prefix.len()..].trim().trim_end_matches('|').trim();
    Some(cell.replace('`', ""))
}

#[cfg(test)]
mod test {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum E {
        Ok,
        Bad,
    }
    impl ExitCodes for E {
        fn all() -> &'static [Self] {
            &[E::Ok, E::Bad]
        }
        fn code(self) -> u8 {
            match self {
                E::Ok => 0,
                E::Bad => 12,
            }
        }
        fn name(self) -> &'static str {
            match self {
                E::Ok => "success",
                E::Bad => "metadata-expired",
            }
        }
        fn meaning(self) -> &'static str {
            match self {
                E::Ok => "success",
                E::Bad => "metadata expired",
            }
        }
    }

    #[test]
    fn help_table_is_aligned_columns() {
        assert_eq!(
            help_table::<E>(),
            "Exit status:\n    0  success           success\n   12  metadata-expired  metadata expired"
        );
    }

    #[test]
    fn long_meanings_wrap_under_themselves() {
        let rows = [Row {
            code: 1,
            name: "n",
            meaning: "word word word word word word word word word word word word word word word word word word word word word",
        }];
        let t = render_help(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines.iter().all(|l| l.len() <= HELP_WIDTH), "{t}");
        assert!(lines[2].starts_with(&" ".repeat(10)), "{t}");
        assert_eq!(lines[1].find("word"), Some(10));
    }

    #[test]
    fn readme_row_is_found_and_compared_without_backticks() {
        let readme =
            "| binary | codes |\n| --- | --- |\n| `x` | 0 success; 12 metadata `expired` |\n";
        assert_eq!(
            find_readme_row(readme, "x").as_deref(),
            Some(readme_row(&rows::<E>()).as_str())
        );
        assert_eq!(find_readme_row(readme, "y"), None);
    }
}
