//! Checking a config against the fragments: every option that is missing, wrong, or only a
//! module (so an initramfs would have to load it), and the verdict for a boot without initramfs.

use crate::config::{Config, Value};
use crate::fragment::{Fragment, RootFs, Severity};
use serde::Serialize;

/// What is wrong with one option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Problem {
    /// Not set, or absent (its dependencies are not met or the kernel has no such symbol).
    Missing,
    /// Set to another value.
    Wrong,
    /// `=m` where it must be built in: only an initramfs could load it in time.
    ModuleOnly,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Symbol (without `CONFIG_`).
    pub symbol: String,
    /// Wanted value.
    pub want: Value,
    /// Value found (`None`: the symbol does not appear).
    pub found: Option<Value>,
    /// What is wrong.
    pub problem: Problem,
    /// How much it matters.
    pub severity: Severity,
    /// Fragment that wants it.
    pub fragment: String,
}

/// Can the image boot with this config?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every required option is as wanted.
    Bootable,
    /// Required options are only modules: it boots only with an initramfs that loads them and
    /// sets up dm-verity (not the image as built).
    NeedsInitramfs,
    /// Required options are missing or wrong.
    CannotBoot,
}

/// The result of a check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Verdict.
    pub verdict: Verdict,
    /// Root filesystem type checked for.
    pub root_fs: RootFs,
    /// Options checked.
    pub checked: usize,
    /// Everything not as wanted, required first.
    pub findings: Vec<Finding>,
}

fn problem(want: &Value, found: Option<&Value>) -> Option<Problem> {
    match (want, found) {
        (Value::Yes, Some(Value::Yes)) => None,
        (Value::Yes, Some(Value::Module)) => Some(Problem::ModuleOnly),
        (Value::Yes | Value::Module, None | Some(Value::No)) => Some(Problem::Missing),
        (Value::Module, Some(Value::Yes | Value::Module)) => None,
        (Value::No, None | Some(Value::No)) => None,
        (Value::Other(_), None) => Some(Problem::Missing),
        (w, Some(f)) if w == f => None,
        _ => Some(Problem::Wrong),
    }
}

/// Checks `config` against the fragments that apply to `root_fs`.
pub fn check(config: &Config, fragments: &[Fragment], root_fs: RootFs) -> Report {
    let mut findings = Vec::new();
    let mut checked = 0;
    for fragment in fragments.iter().filter(|f| f.applies(root_fs)) {
        for (symbol, want) in fragment.config.iter() {
            checked += 1;
            let found = config.get(symbol);
            if let Some(problem) = problem(want, found) {
                findings.push(Finding {
                    symbol: symbol.to_string(),
                    want: want.clone(),
                    found: found.cloned(),
                    problem,
                    severity: fragment.severity,
                    fragment: fragment.name.clone(),
                });
            }
        }
    }
    findings.sort_by_key(|f| f.severity != Severity::Required);
    let required: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Required)
        .collect();
    let verdict = if required.is_empty() {
        Verdict::Bootable
    } else if required.iter().all(|f| f.problem == Problem::ModuleOnly) {
        Verdict::NeedsInitramfs
    } else {
        Verdict::CannotBoot
    };
    Report {
        verdict,
        root_fs,
        checked,
        findings,
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::fragment::builtin;
    use crate::merge::merge;
    use std::path::Path;

    #[test]
    fn problems_table() {
        use Value::*;
        assert_eq!(problem(&Yes, Some(&Yes)), None);
        assert_eq!(problem(&Yes, Some(&Module)), Some(Problem::ModuleOnly));
        assert_eq!(problem(&Yes, None), Some(Problem::Missing));
        assert_eq!(problem(&Yes, Some(&No)), Some(Problem::Missing));
        assert_eq!(problem(&Module, Some(&Yes)), None);
        assert_eq!(problem(&No, None), None);
        assert_eq!(problem(&No, Some(&Yes)), Some(Problem::Wrong));
        assert_eq!(
            problem(&Other("0".into()), Some(&Other("1".into()))),
            Some(Problem::Wrong)
        );
        assert_eq!(problem(&Other("0".into()), Some(&Other("0".into()))), None);
        assert_eq!(problem(&Other("0".into()), None), Some(Problem::Missing));
    }

    #[test]
    fn merged_fragments_pass_their_own_check() {
        let base = Config::parse("CONFIG_EXT4_FS=m\nCONFIG_IMA=y\n", Path::new("b")).unwrap();
        let fragments = builtin();
        let ext4: Vec<_> = fragments
            .iter()
            .filter(|f| f.applies(RootFs::Ext4))
            .cloned()
            .collect();
        let merged = merge(&base, "b", &ext4);
        let report = check(&merged.config, &fragments, RootFs::Ext4);
        assert_eq!(report.verdict, Verdict::Bootable);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        // erofs is not in this config: for an erofs root it cannot boot.
        let report = check(&merged.config, &fragments, RootFs::Erofs);
        assert_eq!(report.verdict, Verdict::CannotBoot);
        assert_eq!(report.findings[0].symbol, "EROFS_FS");
    }

    #[test]
    fn modules_only_needs_initramfs() {
        let text = "CONFIG_BLK_DEV_DM=m\nCONFIG_DAX=y\nCONFIG_DM_INIT=y\nCONFIG_DM_VERITY=m\nCONFIG_EXT4_FS=y\n\
                    CONFIG_VIRTIO=y\nCONFIG_VIRTIO_PCI=y\nCONFIG_VIRTIO_BLK=y\n";
        let report = check(
            &Config::parse(text, Path::new("c")).unwrap(),
            &builtin(),
            RootFs::Ext4,
        );
        assert_eq!(report.verdict, Verdict::NeedsInitramfs);
        let required: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Required)
            .map(|f| f.symbol.as_str())
            .collect();
        assert_eq!(required, vec!["BLK_DEV_DM", "DM_VERITY"]);
    }
}
