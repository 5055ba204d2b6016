//! One error renderer: `error:` / `Caused by:` / `hint:` as text, or one JSON object.
//!
//! tough's error messages repeat their source's text (`Failed to load root.json: No such file
//! or directory`, then the source `No such file or directory`): a cause whose text is the same
//! as, or contained in, the message before it is dropped, so each text is printed once.

use std::error::Error;

/// A rendered error: the message, its causes (each once), hints and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// This layer's message.
    pub message: String,
    /// The source chain's messages, consecutive repeats dropped.
    pub causes: Vec<String>,
    /// Hint lines (what to do about it).
    pub hints: Vec<String>,
    /// The process exit code.
    pub exit_code: u8,
    /// The exit status' stable name, when known.
    pub status: Option<&'static str>,
}

/// The source chain of `err` (not `err` itself), each cause once: a cause whose text equals, or
/// is contained in, the text before it is dropped.
pub fn causes(err: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = Vec::new();
    let mut previous = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !previous.contains(&text) {
            out.push(text.clone());
        }
        previous = text;
        source = cause.source();
    }
    out
}

impl Report {
    /// A report for `err` exiting with `exit_code`.
    pub fn new(err: &(dyn Error + 'static), exit_code: u8) -> Self {
        Report {
            message: err.to_string(),
            causes: causes(err),
            hints: Vec::new(),
            exit_code,
            status: None,
        }
    }

    /// A report for an `err` whose exit status is `status`.
    pub fn with_status<E: crate::ExitCodes>(err: &(dyn Error + 'static), status: E) -> Self {
        let mut r = Report::new(err, status.code());
        r.status = Some(status.name());
        r
    }

    /// Adds a hint line (none when `hint` is None).
    pub fn hint(mut self, hint: Option<impl Into<String>>) -> Self {
        if let Some(h) = hint {
            self.hints.push(h.into());
        }
        self
    }

    /// Overrides the exit code (e.g. Bottlerocket-compatible codes), keeping the status name.
    pub fn exit_code(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }

    /// `error: …` / `  Caused by: …` / `hint: …`, each line ending in a newline.
    pub fn text(&self) -> String {
        let mut s = format!("error: {}\n", self.message);
        for c in &self.causes {
            s.push_str(&format!("  Caused by: {c}\n"));
        }
        for h in &self.hints {
            s.push_str(&format!("hint: {h}\n"));
        }
        s
    }

    /// One JSON object: `outcome: "error"`, `error`, `causes`, `hint` (the first hint or null),
    /// `exit_code` and `status` (when known).
    #[cfg(feature = "cli")]
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "outcome": "error",
            "error": self.message,
            "causes": self.causes,
            "hint": self.hints.first(),
            "exit_code": self.exit_code,
        });
        if let (Some(status), Some(obj)) = (self.status, v.as_object_mut()) {
            obj.insert("status".into(), status.into());
        }
        v
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct E(String, Option<Box<E>>);
    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }
    fn chain(texts: &[&str]) -> E {
        let mut e: Option<Box<E>> = None;
        for t in texts.iter().rev() {
            e = Some(Box::new(E((*t).into(), e)));
        }
        *e.unwrap()
    }

    #[test]
    fn tough_repeated_causes_are_printed_once() {
        // tough: "Failed to fetch root.json: connection refused" → source "connection refused".
        let e = chain(&[
            "cannot load the repository",
            "Failed to fetch root.json: connection refused",
            "connection refused",
            "connection refused",
            "os error 111",
        ]);
        let r = Report::new(&e, 15).hint(Some("check the proxy"));
        assert_eq!(
            r.text(),
            "error: cannot load the repository\n\
             \x20 Caused by: Failed to fetch root.json: connection refused\n\
             \x20 Caused by: os error 111\n\
             hint: check the proxy\n"
        );
    }

    #[test]
    fn distinct_causes_all_kept() {
        let e = chain(&["a", "b", "c"]);
        assert_eq!(Report::new(&e, 1).causes, ["b", "c"]);
        assert_eq!(Report::new(&chain(&["only"]), 1).text(), "error: only\n");
    }

    #[test]
    fn json_has_the_same_chain() {
        let e = chain(&["top: inner", "inner", "root cause"]);
        let v = Report::new(&e, 11).json();
        assert_eq!(v["error"], "top: inner");
        assert_eq!(v["causes"], serde_json::json!(["root cause"]));
        assert_eq!(v["exit_code"], 11);
        assert!(v["hint"].is_null());
    }
}
