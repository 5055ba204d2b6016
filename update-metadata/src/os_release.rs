//! `os-release` (os-release(5)): the one writer (os-image) and the one parser (updog, os-image's
//! boot check), so a value written is the value read back.
//!
//! Values are shell-like: unquoted when they hold only safe characters, otherwise in double
//! quotes where `"`, `\`, `$` and `` ` `` are escaped with a backslash. The parser follows the
//! shell: in double quotes a backslash escapes only those four characters (anything else keeps
//! its backslash), single quotes are literal, and unquoted text drops a backslash before any
//! character.

use std::collections::BTreeMap;

/// A value as os-release writes it: bare when it is non-empty and only `[A-Za-z0-9._-:/+]`,
/// else double-quoted with `"`, `\`, `$` and `` ` `` escaped.
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/+".contains(&b));
    if plain {
        return value.to_owned();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `KEY=value` line (with its newline).
pub fn line(key: &str, value: &str) -> String {
    format!("{key}={}\n", quote(value))
}

/// Parses os-release text into its fields (blank lines and `#` comments skipped; a later line
/// wins over an earlier one with the same key).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, raw)) = line.split_once('=') {
            map.insert(key.trim().to_owned(), unquote(raw.trim()));
        }
    }
    map
}

/// The value of one raw right-hand side.
pub fn unquote(raw: &str) -> String {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        let mut v = String::with_capacity(inner.len());
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\'
                && let Some(&n) = chars.peek()
                && matches!(n, '"' | '\\' | '$' | '`')
            {
                v.push(n);
                chars.next();
            } else {
                v.push(c);
            }
        }
        v
    } else if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        raw[1..raw.len() - 1].to_owned()
    } else {
        let mut v = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    v.push(n);
                }
            } else {
                v.push(c);
            }
        }
        v
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        for value in [
            "plain-1.2.3",
            "a b",
            r"back\slash",
            r"double\\backslash",
            "dollar $HOME and ${X}",
            r"escaped \$ dollar",
            "quote \" inside",
            "single ' quote",
            "back`tick`",
            r#"all: \ $ " ` ' \n"#,
            "",
            "trailing\\",
            "ünïcødé",
        ] {
            let text = line("X", value);
            assert_eq!(parse(&text)["X"], value, "{text}");
        }
    }

    #[test]
    fn the_shell_reads_it_the_same_way() {
        // What sh would assign for each form.
        for (raw, want) in [
            (r#""a \"b\" \$c \`d\` \\e""#, r#"a "b" $c `d` \e"#),
            (r#""keep \n and \x""#, r"keep \n and \x"),
            ("'single $x \\ \"'", "single $x \\ \""),
            (r"bare\ word", "bare word"),
            ("", ""),
        ] {
            assert_eq!(unquote(raw), want, "{raw}");
        }
    }

    #[test]
    fn comments_blank_lines_and_last_wins() {
        let m = parse("# c\n\nNAME=Bottlerocket\nVERSION_ID=1.0.0\nVERSION_ID=\"1.1.0\"\n");
        assert_eq!(m["NAME"], "Bottlerocket");
        assert_eq!(m["VERSION_ID"], "1.1.0");
        assert_eq!(m.len(), 2);
    }
}
