//! What an image is: name, variant, arch, version, build id; and the names derived from them.

use crate::error::{self, Error, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use update_metadata::{Arch, Variant, Version};

fn valid_token(s: &str, max: usize) -> std::result::Result<(), &'static str> {
    let mut bytes = s.bytes();
    match bytes.next() {
        None => return Err("it is empty"),
        Some(b) if !b.is_ascii_alphanumeric() => {
            return Err("it must start with a letter or digit");
        }
        _ => {}
    }
    if s.len() > max {
        return Err("it is too long");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err("only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// The image name (the first part of every artifact name), e.g. `bottlerocket`:
/// lowercase `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ImageName(String);

impl ImageName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ImageName {
    fn default() -> Self {
        ImageName("bottlerocket".to_string())
    }
}

impl FromStr for ImageName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let reason = valid_token(s, 64).err().or_else(|| {
            s.bytes()
                .any(|b| b.is_ascii_uppercase())
                .then_some("uppercase letters are not allowed")
        });
        match reason {
            Some(reason) => error::InvalidNameSnafu {
                what: "image name",
                value: s,
                reason,
            }
            .fail(),
            None => Ok(ImageName(s.to_string())),
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A build id such as a short commit hash (`abcdef12`, `abcdef12-dirty`):
/// `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct BuildId(String);

impl BuildId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BuildId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match valid_token(s, 64) {
            Err(reason) => error::InvalidNameSnafu {
                what: "build id",
                value: s,
                reason,
            }
            .fail(),
            Ok(()) => Ok(BuildId(s.to_string())),
        }
    }
}

impl fmt::Display for BuildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything that names one build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Image name.
    pub name: ImageName,
    /// Variant.
    pub variant: Variant,
    /// Architecture.
    pub arch: Arch,
    /// OS version.
    pub version: Version,
    /// Build id.
    pub build_id: BuildId,
}

impl Identity {
    /// `<name>-<variant>-<arch>-<version>-<build>` (fact sheet §4.3).
    pub fn file_prefix(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}",
            self.name, self.variant, self.arch, self.version, self.build_id
        )
    }

    /// Update target name of the boot image.
    pub fn boot_artifact_name(&self) -> String {
        format!("{}-boot.ext4.lz4", self.file_prefix())
    }

    /// Update target name of the root image (`.ext4` even for erofs, as Bottlerocket names it).
    pub fn root_artifact_name(&self) -> String {
        format!("{}-root.ext4.lz4", self.file_prefix())
    }

    /// Update target name of the hash tree.
    pub fn hash_artifact_name(&self) -> String {
        format!("{}-root.verity.lz4", self.file_prefix())
    }

    /// File name of the full disk image.
    pub fn disk_image_name(&self) -> String {
        format!("{}.img", self.file_prefix())
    }

    /// File name of the build description.
    pub fn description_name(&self) -> String {
        format!("{}.json", self.file_prefix())
    }

    /// The product name shown to people: `Bottlerocket` for `bottlerocket`, else the image name.
    pub fn pretty_os_name(&self) -> String {
        let mut chars = self.name.as_str().chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn identity() -> Identity {
        Identity {
            name: ImageName::default(),
            variant: "aws-k8s-1.24".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: "1.11.0".parse().unwrap(),
            build_id: "abcdef12".parse().unwrap(),
        }
    }

    #[test]
    fn artifact_names_follow_bottlerocket() {
        let id = identity();
        assert_eq!(
            id.boot_artifact_name(),
            "bottlerocket-aws-k8s-1.24-x86_64-1.11.0-abcdef12-boot.ext4.lz4"
        );
        assert_eq!(
            id.root_artifact_name(),
            "bottlerocket-aws-k8s-1.24-x86_64-1.11.0-abcdef12-root.ext4.lz4"
        );
        assert_eq!(
            id.hash_artifact_name(),
            "bottlerocket-aws-k8s-1.24-x86_64-1.11.0-abcdef12-root.verity.lz4"
        );
        assert_eq!(
            id.disk_image_name(),
            "bottlerocket-aws-k8s-1.24-x86_64-1.11.0-abcdef12.img"
        );
        assert_eq!(id.pretty_os_name(), "Bottlerocket");
    }

    #[test]
    fn names_are_validated() {
        assert!("abcdef12-dirty".parse::<BuildId>().is_ok());
        assert!("".parse::<BuildId>().is_err());
        assert!("a/b".parse::<BuildId>().is_err());
        assert!("-x".parse::<BuildId>().is_err());
        assert!("Bottlerocket".parse::<ImageName>().is_err());
        assert!("my-os".parse::<ImageName>().is_ok());
        let err = "a b".parse::<ImageName>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid image name 'a b': only letters, digits, '.', '_' and '-' are allowed"
        );
    }
}
