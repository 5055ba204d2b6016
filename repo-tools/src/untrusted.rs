//! Showing bytes from an untrusted source (an archive's entry names, its index, the tar
//! reader's complaints about a damaged header) in an error message: escaped, so control bytes
//! never reach the operator's terminal, and bounded, so a hostile name cannot flood it.

/// At most this many characters of untrusted text are shown.
pub const MAX_SHOWN: usize = 96;

/// An escaped, bounded description of untrusted text: control characters, quotes and
/// backslashes escaped as Rust string escapes (`\u{1b}`, `\n`), anything past [`MAX_SHOWN`]
/// characters replaced by a count of what was left out.
pub fn describe(text: &str) -> String {
    let total = text.chars().count();
    let mut out = String::new();
    for c in text.chars().take(MAX_SHOWN) {
        if c.is_control() || c == '\\' || c == '"' || c == '\u{fffd}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if total > MAX_SHOWN {
        out.push_str(&format!("… ({} more characters)", total - MAX_SHOWN));
    }
    out
}

/// [`describe`] for raw bytes (invalid UTF-8 shown as U+FFFD, escaped).
pub fn describe_bytes(bytes: &[u8]) -> String {
    describe(&String::from_utf8_lossy(bytes))
}

/// An I/O error whose message came from untrusted input (the tar reader quotes header bytes):
/// same kind, message escaped and bounded.
pub fn io_error(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), describe(&e.to_string()))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn control_bytes_are_escaped_and_long_text_is_cut() {
        assert_eq!(describe("targets/a.bin"), "targets/a.bin");
        let shown = describe("a\u{1b}[2Jb\nc");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\n'),
            "{shown}"
        );
        assert!(
            shown.contains("\\u{1b}[2J") && shown.contains("\\n"),
            "{shown}"
        );
        let long = "x".repeat(10_000);
        let shown = describe(&long);
        assert!(shown.len() < 150, "{shown}");
        assert!(shown.ends_with("(9904 more characters)"), "{shown}");
        assert_eq!(describe_bytes(b"\xff\x07"), "\\u{fffd}\\u{7}");
    }
}
