//! Config fragments: `.config` files that state what an image needs, with `# kernel-config:`
//! directives for how much it matters (`severity=required|recommended`) and when it applies
//! (`when=root-fs:ext4|erofs`). The fragments of `kernel-config/fragments/` are built in.

use crate::config::Config;
use crate::error::{self, Result};
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// How much a fragment's options matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Without it the image cannot boot (no initramfs).
    Required,
    /// Bottlerocket sets it; the image boots without it.
    Recommended,
}

/// The root filesystem type the image uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RootFs {
    /// ext4 (default).
    #[default]
    Ext4,
    /// erofs.
    Erofs,
}

impl FromStr for RootFs {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "ext4" => Ok(RootFs::Ext4),
            "erofs" => Ok(RootFs::Erofs),
            _ => Err(format!(
                "'{s}' is not a root filesystem type (ext4 or erofs)"
            )),
        }
    }
}

impl fmt::Display for RootFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RootFs::Ext4 => "ext4",
            RootFs::Erofs => "erofs",
        })
    }
}

/// One fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// File name.
    pub name: String,
    /// How much its options matter (default: required).
    pub severity: Severity,
    /// Only for this root filesystem type.
    pub when: Option<RootFs>,
    /// Its comment lines, joined (why these options).
    pub reason: String,
    /// Its options.
    pub config: Config,
}

impl Fragment {
    /// Parses a fragment.
    pub fn parse(name: &str, text: &str, origin: &Path) -> Result<Fragment> {
        let mut severity = Severity::Required;
        let mut when = None;
        let mut reason = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.strip_prefix('#').map(str::trim) else {
                continue;
            };
            if let Some(directive) = comment.strip_prefix("kernel-config:") {
                let bad = || error::ParseDirectiveSnafu {
                    path: origin,
                    line: i + 1,
                    text: directive.trim(),
                };
                match directive.trim() {
                    "severity=required" => severity = Severity::Required,
                    "severity=recommended" => severity = Severity::Recommended,
                    d => match d.strip_prefix("when=root-fs:").map(RootFs::from_str) {
                        Some(Ok(fs)) => when = Some(fs),
                        _ => return bad().fail(),
                    },
                }
            } else if !comment.starts_with("CONFIG_") && !comment.is_empty() {
                reason.push(comment.to_string());
            }
        }
        Ok(Fragment {
            name: name.to_string(),
            severity,
            when,
            reason: reason.join(" "),
            config: Config::parse(text, origin)?,
        })
    }

    /// Reads a fragment file.
    pub fn load(path: &Path) -> Result<Fragment> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::ReadConfig {
            path: path.into(),
            source,
        })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Fragment::parse(&name, &text, path)
    }

    /// Whether it applies to an image with this root filesystem.
    pub fn applies(&self, root_fs: RootFs) -> bool {
        self.when.is_none_or(|w| w == root_fs)
    }
}

/// The built-in fragments (`kernel-config/fragments/*.config`), in merge order: name and text.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "10-dm-verity.config",
        include_str!("../fragments/10-dm-verity.config"),
    ),
    (
        "11-root-ext4.config",
        include_str!("../fragments/11-root-ext4.config"),
    ),
    (
        "12-root-erofs.config",
        include_str!("../fragments/12-root-erofs.config"),
    ),
    (
        "20-virtio.config",
        include_str!("../fragments/20-virtio.config"),
    ),
    (
        "30-storage.config",
        include_str!("../fragments/30-storage.config"),
    ),
    (
        "40-security.config",
        include_str!("../fragments/40-security.config"),
    ),
    (
        "50-platform.config",
        include_str!("../fragments/50-platform.config"),
    ),
];

/// The built-in fragments, parsed.
pub fn builtin() -> Vec<Fragment> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            Fragment::parse(name, text, Path::new(name)).expect("built-in fragments parse")
        })
        .collect()
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::config::Value;

    #[test]
    fn builtin_fragments_parse_with_directives() {
        let all = builtin();
        assert_eq!(all.len(), BUILTIN.len());
        let dm = &all[0];
        assert_eq!(dm.severity, Severity::Required);
        for sym in ["BLK_DEV_DM", "DM_INIT", "DM_VERITY", "DAX"] {
            assert_eq!(dm.config.get(sym), Some(&Value::Yes), "{sym}");
        }
        assert_eq!(all[2].when, Some(RootFs::Erofs));
        assert!(!all[2].applies(RootFs::Ext4));
        let sec = all.iter().find(|f| f.name == "40-security.config").unwrap();
        assert_eq!(sec.severity, Severity::Recommended);
        assert_eq!(sec.config.get("SECURITY_SELINUX_DISABLE"), Some(&Value::No));
        assert_eq!(
            sec.config.get("SECURITY_SELINUX_CHECKREQPROT_VALUE"),
            Some(&Value::Other("0".into()))
        );
        assert!(dm.reason.contains("dm-mod.create"));
    }

    #[test]
    fn unknown_directive_is_an_error() {
        let err = Fragment::parse(
            "f",
            "# kernel-config: severity=maybe\nCONFIG_A=y\n",
            Path::new("f"),
        )
        .unwrap_err();
        assert!(matches!(err, crate::Error::ParseDirective { line: 1, .. }));
    }
}
