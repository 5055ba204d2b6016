//! The `.config` format: `CONFIG_X=value` and `# CONFIG_X is not set` lines.

use crate::error::{self, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// A symbol's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// `=y`: built in.
    Yes,
    /// `=m`: a module.
    Module,
    /// `# … is not set` (or `=n`).
    No,
    /// Anything else, as written (numbers, quoted strings).
    Other(String),
}

impl Value {
    fn parse(raw: &str) -> Value {
        match raw {
            "y" => Value::Yes,
            "m" => Value::Module,
            "n" => Value::No,
            other => Value::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Yes => f.write_str("y"),
            Value::Module => f.write_str("m"),
            Value::No => f.write_str("is not set"),
            Value::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A parsed config: symbols (without the `CONFIG_` prefix) in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
}

impl Config {
    /// Parses `.config` text; `origin` names the file in errors. Later lines win.
    pub fn parse(text: &str, origin: &Path) -> Result<Config> {
        let mut config = Config::default();
        for (i, line) in text.lines().enumerate() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if let Some(rest) = t.strip_prefix("# CONFIG_") {
                if let Some(sym) = rest.strip_suffix(" is not set")
                    && valid_symbol(sym)
                {
                    config.set(sym, Value::No);
                    continue;
                }
                continue; // an ordinary comment that happens to mention CONFIG_
            }
            if t.starts_with('#') {
                continue;
            }
            let parsed = t
                .strip_prefix("CONFIG_")
                .and_then(|r| r.split_once('='))
                .filter(|(sym, value)| valid_symbol(sym) && !value.is_empty());
            match parsed {
                Some((sym, value)) => config.set(sym, Value::parse(value)),
                None => {
                    return error::ParseConfigSnafu {
                        path: origin,
                        line: i + 1,
                        text: line,
                    }
                    .fail();
                }
            }
        }
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::ReadConfig {
            path: path.into(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// A symbol's value (`None` if the symbol does not appear at all).
    pub fn get(&self, symbol: &str) -> Option<&Value> {
        self.index.get(symbol).map(|i| &self.entries[*i].1)
    }

    /// Sets a symbol (keeps its position if already present, else appends).
    pub fn set(&mut self, symbol: &str, value: Value) {
        match self.index.get(symbol) {
            Some(i) => self.entries[*i].1 = value,
            None => {
                self.index.insert(symbol.to_string(), self.entries.len());
                self.entries.push((symbol.to_string(), value));
            }
        }
    }

    /// Symbols and values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(s, v)| (s.as_str(), v))
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no symbols.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `.config` text.
    pub fn render(&self) -> String {
        self.entries
            .iter()
            .map(|(s, v)| match v {
                Value::No => format!("# CONFIG_{s} is not set\n"),
                other => format!("CONFIG_{s}={other}\n"),
            })
            .collect()
    }
}

fn valid_symbol(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b.is_ascii_lowercase()
        })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let text = "#\n# Automatically generated\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n\
                    CONFIG_D=\"str with = sign\"\nCONFIG_E=0x10\nCONFIG_A=m\n";
        let c = Config::parse(text, Path::new("x")).unwrap();
        assert_eq!(c.get("A"), Some(&Value::Module));
        assert_eq!(c.get("B"), Some(&Value::Module));
        assert_eq!(c.get("C"), Some(&Value::No));
        assert_eq!(
            c.get("D"),
            Some(&Value::Other("\"str with = sign\"".into()))
        );
        assert_eq!(c.get("E"), Some(&Value::Other("0x10".into())));
        assert_eq!(c.get("F"), None);
        assert_eq!(
            c.render(),
            "CONFIG_A=m\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"str with = sign\"\nCONFIG_E=0x10\n"
        );
        assert_eq!(Config::parse(&c.render(), Path::new("x")).unwrap(), c);
    }

    #[test]
    fn rejects_garbage_with_line_number() {
        let err = Config::parse("CONFIG_A=y\nhello world\n", Path::new("cfg")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cfg:2: not a kernel config line: hello world"
        );
        assert!(Config::parse("CONFIG_A=\n", Path::new("cfg")).is_err());
    }
}
