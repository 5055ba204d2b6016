//! Merging fragments onto a base config, as `scripts/kconfig/merge_config.sh` does: later wins,
//! and every change is reported — overriding the base, or conflicting with an earlier fragment.

use crate::config::{Config, Value};
use crate::fragment::Fragment;
use serde::Serialize;

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The symbol was not in the config before.
    Added,
    /// A fragment changed the base's value.
    OverridesBase,
    /// A fragment changed a value an earlier fragment set: a conflict between fragments.
    Conflict,
}

/// One change made by a fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Symbol (without `CONFIG_`).
    pub symbol: String,
    /// What kind of change.
    pub kind: ChangeKind,
    /// Value before, if any.
    pub previous: Option<Value>,
    /// Where the previous value came from.
    pub previous_source: Option<String>,
    /// New value.
    pub value: Value,
    /// Fragment that set it.
    pub source: String,
}

/// Result of a merge.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged config.
    pub config: Config,
    /// Every change, in order.
    pub changes: Vec<Change>,
}

impl Merged {
    /// Changes that are conflicts between fragments.
    pub fn conflicts(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Conflict)
    }
}

/// Applies `fragments` in order onto `base` (named `base_name` in the report).
pub fn merge(base: &Config, base_name: &str, fragments: &[Fragment]) -> Merged {
    let mut config = base.clone();
    let mut set_by: std::collections::HashMap<String, String> = base
        .iter()
        .map(|(s, _)| (s.to_string(), base_name.to_string()))
        .collect();
    let mut changes = Vec::new();
    for fragment in fragments {
        for (symbol, value) in fragment.config.iter() {
            let previous = config.get(symbol).cloned();
            if previous.as_ref() == Some(value) {
                set_by.insert(symbol.to_string(), fragment.name.clone());
                continue;
            }
            let previous_source = set_by.get(symbol).cloned();
            let kind = match (&previous, &previous_source) {
                (None, _) => ChangeKind::Added,
                (Some(_), Some(src)) if src == base_name => ChangeKind::OverridesBase,
                (Some(_), _) => ChangeKind::Conflict,
            };
            changes.push(Change {
                symbol: symbol.to_string(),
                kind,
                previous,
                previous_source,
                value: value.clone(),
                source: fragment.name.clone(),
            });
            config.set(symbol, value.clone());
            set_by.insert(symbol.to_string(), fragment.name.clone());
        }
    }
    Merged { config, changes }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::path::Path;

    fn frag(name: &str, text: &str) -> Fragment {
        Fragment::parse(name, text, Path::new(name)).unwrap()
    }

    #[test]
    fn later_wins_and_changes_are_classified() {
        let base = Config::parse(
            "CONFIG_A=m\nCONFIG_B=y\n# CONFIG_C is not set\n",
            Path::new("base"),
        )
        .unwrap();
        let f1 = frag("f1", "CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=y\n");
        let f2 = frag("f2", "# CONFIG_D is not set\nCONFIG_C=y\n");
        let m = merge(&base, "base", &[f1, f2]);
        assert_eq!(m.config.get("A"), Some(&Value::Yes));
        assert_eq!(m.config.get("D"), Some(&Value::No));
        assert_eq!(m.config.get("C"), Some(&Value::Yes));
        let kinds: Vec<(&str, ChangeKind)> = m
            .changes
            .iter()
            .map(|c| (c.symbol.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("A", ChangeKind::OverridesBase),
                ("D", ChangeKind::Added),
                ("D", ChangeKind::Conflict),
                ("C", ChangeKind::OverridesBase)
            ]
        );
        let conflict = m.conflicts().next().unwrap();
        assert_eq!(conflict.previous_source.as_deref(), Some("f1"));
        assert_eq!(conflict.source, "f2");
    }
}
