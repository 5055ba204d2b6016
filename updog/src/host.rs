//! What the running system is: `/etc/os-release` (variant, version, build) and the architecture.

use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt};
use std::collections::BTreeMap;
use std::path::Path;
use update_metadata::{Arch, Host, Variant, Version};

/// The fields of os-release that updog uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    /// `VARIANT_ID`.
    pub variant: Variant,
    /// `VERSION_ID` (semver).
    pub version: Version,
    /// `BUILD_ID` (short commit), if present.
    pub build_id: Option<String>,
    /// `ARCH` if the image records one (Bottlerocket's does not; then the compile-time value applies).
    pub arch: Option<Arch>,
}

/// Parses os-release text (update-metadata's one parser: the inverse of os-image's writer).
pub fn parse_os_release_fields(text: &str) -> BTreeMap<String, String> {
    update_metadata::os_release::parse(text)
}

impl OsRelease {
    /// Parses os-release text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let map = parse_os_release_fields(text);
        let field = |name: &'static str| -> Result<&String> {
            map.get(name).context(error::OsReleaseFieldSnafu {
                path: origin,
                field: name,
                value: "",
            })
        };
        let variant_text = field("VARIANT_ID")?;
        let variant = variant_text
            .parse()
            .ok()
            .context(error::OsReleaseFieldSnafu {
                path: origin,
                field: "VARIANT_ID",
                value: variant_text.clone(),
            })?;
        let version_text = field("VERSION_ID")?;
        let version = Version::parse(version_text.trim_start_matches('v'))
            .ok()
            .context(error::OsReleaseFieldSnafu {
                path: origin,
                field: "VERSION_ID",
                value: version_text.clone(),
            })?;
        let arch = match map.get("ARCH") {
            None => None,
            Some(a) => Some(a.parse().ok().context(error::OsReleaseFieldSnafu {
                path: origin,
                field: "ARCH",
                value: a.clone(),
            })?),
        };
        Ok(OsRelease {
            variant,
            version,
            build_id: map.get("BUILD_ID").cloned(),
            arch,
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).context(error::OsReleaseReadSnafu { path })?;
        Self::parse(&text, path)
    }

    /// The host as selection sees it. Architecture precedence: `arch_override` (CLI or config),
    /// then os-release `ARCH`, then the architecture this binary was built for.
    pub fn host(&self, arch_override: Option<Arch>) -> Result<Host> {
        let arch = match arch_override.or(self.arch) {
            Some(a) => a,
            None => compile_time_arch()?,
        };
        Ok(Host {
            variant: self.variant.clone(),
            arch,
            version: self.version.clone(),
        })
    }
}

/// The architecture this binary was built for.
pub fn compile_time_arch() -> Result<Arch> {
    std::env::consts::ARCH
        .parse()
        .ok()
        .context(error::UnsupportedArchSnafu {
            arch: std::env::consts::ARCH,
        })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_bottlerocket_os_release() {
        let text = "NAME=Bottlerocket\nID=bottlerocket\nVERSION=\"1.20.0 (aws-k8s-1.28)\"\n\
                    PRETTY_NAME=\"Bottlerocket OS 1.20.0 (aws-k8s-1.28)\"\nVARIANT_ID=aws-k8s-1.28\n\
                    VERSION_ID=1.20.0\nBUILD_ID=abcdef12\n";
        let os = OsRelease::parse(text, Path::new("os-release")).unwrap();
        assert_eq!(os.variant.to_string(), "aws-k8s-1.28");
        assert_eq!(os.version, Version::new(1, 20, 0));
        assert_eq!(os.build_id.as_deref(), Some("abcdef12"));
        let host = os.host(Some(Arch::Aarch64)).unwrap();
        assert_eq!(host.arch, Arch::Aarch64);
    }

    #[test]
    fn missing_version_is_named() {
        let e = OsRelease::parse("VARIANT_ID=x\n", Path::new("/etc/os-release")).unwrap_err();
        assert!(e.to_string().contains("VERSION_ID"), "{e}");
        let e = OsRelease::parse("VARIANT_ID=x\nVERSION_ID=one\n", Path::new("o")).unwrap_err();
        assert!(e.to_string().contains("one"), "{e}");
    }
}
