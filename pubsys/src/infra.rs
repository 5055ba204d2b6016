//! Bottlerocket's `Infra.toml`, the parts that concern repositories: `[repo.<name>]` with the
//! signing key, the existing repository's URLs, and the expected SHA-512 of the root file.
//!
//! Each `[repo.<name>]` table rejects unknown keys as Bottlerocket does; the other top-level
//! sections (`[aws]`, `[vmware]`, `[vendor]`) belong to commands pubsys does not have and are
//! accepted without being interpreted. Command-line options always win over the file.

use crate::error::{self, Result};
use crate::keys::KeySpec;
use serde::Deserialize;
use snafu::{ResultExt, ensure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use update_metadata::{Arch, Variant};
use url::Url;

/// The parsed file.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfraConfig {
    /// Repository configurations by name.
    #[serde(default)]
    pub repo: BTreeMap<String, RepoConfig>,
    /// Everything else (AWS, VMware, vendors): kept, not interpreted.
    #[serde(flatten)]
    pub other: BTreeMap<String, toml::Value>,
}

/// `[repo.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Where the root role comes from (used by pubsys-setup; recorded here).
    pub root_role_url: Option<Url>,
    /// Expected SHA-512 (hex) of the root file; checked against --root-role-path when set.
    pub root_role_sha512: Option<String>,
    /// The key that signs snapshot/targets/timestamp.
    pub signing_keys: Option<SigningKeyConfig>,
    /// The key that signs root (not used by pubsys; repo-tools signs roots).
    pub root_keys: Option<SigningKeyConfig>,
    /// Base URL of metadata; `<variant>/<arch>/` is appended.
    pub metadata_base_url: Option<Url>,
    /// Targets URL.
    pub targets_url: Option<Url>,
    /// Name of a file-hosting configuration (accepted, unused).
    pub file_hosting_config_name: Option<String>,
    /// Root key threshold (accepted, unused: repo-tools owns roots).
    pub root_key_threshold: Option<std::num::NonZeroUsize>,
    /// Public key threshold (accepted, unused).
    pub pub_key_threshold: Option<std::num::NonZeroUsize>,
}

/// `signing_keys = { file = { path = "…" } }` and the cloud variants.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SigningKeyConfig {
    /// A local key file.
    File {
        /// Path of the key.
        path: PathBuf,
    },
    /// AWS KMS (not built in).
    Kms {
        /// KMS key id.
        key_id: Option<String>,
        /// Other KMS settings.
        #[serde(flatten)]
        rest: BTreeMap<String, toml::Value>,
    },
    /// AWS SSM parameter (not built in).
    Ssm {
        /// SSM parameter name.
        parameter: String,
    },
}

impl SigningKeyConfig {
    /// The key source this names.
    pub fn key_spec(&self) -> Result<KeySpec> {
        match self {
            SigningKeyConfig::File { path } => Ok(KeySpec::File(path.clone())),
            SigningKeyConfig::Kms { key_id, .. } => error::KeySourceUnsupportedSnafu {
                spec: format!("aws-kms:///{}", key_id.as_deref().unwrap_or_default()),
            }
            .fail(),
            SigningKeyConfig::Ssm { parameter } => error::KeySourceUnsupportedSnafu {
                spec: format!("aws-ssm://{parameter}"),
            }
            .fail(),
        }
    }
}

impl InfraConfig {
    /// Parses the file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<InfraConfig> {
        toml::from_str(text).context(error::ParseInfraSnafu { path: origin })
    }

    /// Reads and parses the file.
    pub fn from_path(path: &Path) -> Result<InfraConfig> {
        let text = std::fs::read_to_string(path).context(error::ReadInfraSnafu { path })?;
        Self::from_toml(&text, path)
    }

    /// The named repository's configuration (an empty one if the file has none, as Bottlerocket).
    pub fn repo(&self, name: &str) -> RepoConfig {
        self.repo.get(name).cloned().unwrap_or_default()
    }
}

impl RepoConfig {
    /// Metadata and targets URLs for a variant/arch, when both are configured.
    pub fn urls(&self, variant: &Variant, arch: Arch) -> Result<Option<(Url, Url)>> {
        let (Some(base), Some(targets)) = (&self.metadata_base_url, &self.targets_url) else {
            return Ok(None);
        };
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let text = format!("{base}{variant}/{arch}/");
        let metadata = text.parse().context(error::UrlSnafu { url: &text })?;
        Ok(Some((metadata, targets.clone())))
    }

    /// Checks a root file against `root_role_sha512`, when it is set.
    pub fn check_root(&self, root_path: &Path) -> Result<()> {
        let Some(want) = &self.root_role_sha512 else {
            return Ok(());
        };
        let bytes = std::fs::read(root_path).context(error::ReadRootSnafu { path: root_path })?;
        let got = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA512,
            &bytes,
        ));
        ensure!(
            got.eq_ignore_ascii_case(want),
            error::RootDigestSnafu {
                path: root_path,
                expected: want.clone(),
                actual: got,
            }
        );
        Ok(())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const EXAMPLE: &str = r#"
[repo.default]
root_role_url = "https://example.com/root.json"
root_role_sha512 = "0123456789abcdef"
signing_keys = { file = { path = "/home/user/key.pem" } }
metadata_base_url = "https://example.com/"
targets_url = "https://example.com/targets/"

[repo.cloud]
signing_keys = { kms = { key_id = "abc-def-123" } }

[aws]
regions = ["us-west-2", "us-east-1", "us-east-2"]
[aws.region.us-west-2]
role = "arn:aws:iam::012345678901:role/assume-regional"
[vmware.datacenter.north]
vsphere_url = "https://vcenter.1234.vmwarevmc.com"
[vendor.bottlerocket]
registry = "my.vendor/path"
"#;

    #[test]
    fn bottlerocket_example_parses() {
        let infra = InfraConfig::from_toml(EXAMPLE, Path::new("Infra.toml")).unwrap();
        let repo = infra.repo("default");
        assert_eq!(
            repo.signing_keys.as_ref().unwrap().key_spec().unwrap(),
            KeySpec::File("/home/user/key.pem".into())
        );
        let (m, t) = repo
            .urls(&"aws-dev".parse().unwrap(), Arch::Aarch64)
            .unwrap()
            .unwrap();
        assert_eq!(m.as_str(), "https://example.com/aws-dev/aarch64/");
        assert_eq!(t.as_str(), "https://example.com/targets/");
        let err = infra
            .repo("cloud")
            .signing_keys
            .unwrap()
            .key_spec()
            .unwrap_err();
        assert!(err.to_string().contains("aws-kms:///abc-def-123"), "{err}");
        assert!(infra.repo("missing").signing_keys.is_none());
        assert!(infra.other.contains_key("aws"));
    }

    #[test]
    fn unknown_repo_keys_are_refused_with_the_file_named() {
        let err = InfraConfig::from_toml(
            "[repo.default]\nsigning_key = 'x'\n",
            Path::new("Infra.toml"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("Infra.toml"), "{err}");
    }

    #[test]
    fn root_digest_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.json");
        std::fs::write(&root, b"{}").unwrap();
        let sha = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"{}"));
        let mut repo = RepoConfig {
            root_role_sha512: Some(sha),
            ..Default::default()
        };
        repo.check_root(&root).unwrap();
        repo.root_role_sha512 = Some("00".repeat(64));
        let err = repo.check_root(&root).unwrap_err();
        assert!(matches!(err, crate::Error::RootDigest { .. }), "{err:?}");
    }
}
