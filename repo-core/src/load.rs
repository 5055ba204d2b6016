//! Loading a repository with the trusted root, under one expiry policy.

use crate::error::{self, Result};
use crate::location::Source;
use snafu::{IntoError, ResultExt};
use std::path::{Path, PathBuf};
use tough::schema::{Root, Signed};
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, Transport, TransportErrorKind};

/// Whether a repository whose metadata has expired may be loaded. The one policy both tools
/// use; tough's [`ExpirationEnforcement`] is only reached through [`From`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expiry {
    /// Refuse expired metadata (the default).
    #[default]
    Safe,
    /// Load it anyway (to refresh it, or to read media that took longer to carry than the
    /// timestamp role's lifetime). Signatures, hashes and lengths are still checked.
    Unsafe,
}

impl Expiry {
    /// The policy for the command-line flag that allows expired metadata (`--allow-expired`,
    /// `--allow-expired-repo`, `--unsafe-refresh`): set means [`Expiry::Unsafe`].
    pub fn from_allow_flag(allow_expired: bool) -> Self {
        if allow_expired {
            Expiry::Unsafe
        } else {
            Expiry::Safe
        }
    }
}

impl From<Expiry> for ExpirationEnforcement {
    fn from(e: Expiry) -> Self {
        match e {
            Expiry::Safe => ExpirationEnforcement::Safe,
            Expiry::Unsafe => ExpirationEnforcement::Unsafe,
        }
    }
}

/// The root a repository is verified against: the exact bytes and their parse.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// The file's bytes (what tough is given).
    pub bytes: Vec<u8>,
    /// The parsed root.
    pub root: Signed<Root>,
}

impl TrustedRoot {
    /// Reads and parses a root file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).context(error::ReadRootSnafu { path })?;
        Self::from_bytes(bytes, &path.display().to_string())
    }

    /// Parses root bytes; `origin` (a path or URL) is named in errors.
    pub fn from_bytes(bytes: Vec<u8>, origin: &str) -> Result<Self> {
        let root = serde_json::from_slice(&bytes).context(error::ParseRootSnafu { origin })?;
        Ok(TrustedRoot { bytes, root })
    }
}

/// How a repository is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Expired-metadata policy.
    pub expiry: Expiry,
    /// A persistent tough datastore: metadata trusted on an earlier run, so a rolled-back
    /// timestamp or snapshot is detected. `None`: a fresh temporary one.
    pub datastore: Option<PathBuf>,
    /// The transport; `None`: [`repo_store::S3Transport`] (`s3://` through the S3 API,
    /// `file://` and `http(s)://` as tough's default transport).
    pub transport: Option<Box<dyn Transport>>,
}

impl LoadOptions {
    /// Default options with this expiry policy.
    pub fn with_expiry(expiry: Expiry) -> Self {
        LoadOptions {
            expiry,
            ..Default::default()
        }
    }
}

/// Loads and verifies the repository at `source` with the trusted `root` bytes. A repository
/// with no `timestamp.json` is [`crate::Error::Missing`].
pub async fn load(root: &[u8], source: &Source, opts: &LoadOptions) -> Result<Repository> {
    let metadata_url = source.metadata_url.to_string();
    let transport = match &opts.transport {
        Some(t) => TransportBox(t.clone()),
        None => TransportBox(Box::new(repo_store::S3Transport::new())),
    };
    let mut loader = RepositoryLoader::new(
        &root,
        source.metadata_url.clone(),
        source.targets_url.clone(),
    )
    .expiration_enforcement(opts.expiry.into())
    .transport(transport);
    if let Some(ds) = &opts.datastore {
        std::fs::create_dir_all(ds).context(error::DatastoreSnafu { path: ds })?;
        loader = loader.datastore(ds.clone());
    }
    loader.load().await.map_err(|e| match e {
        tough::error::Error::Transport {
            source: ref t,
            ref url,
            ..
        } if t.kind() == TransportErrorKind::FileNotFound
            && url.path().ends_with("/timestamp.json") =>
        {
            error::MissingSnafu { metadata_url }.build()
        }
        tough::error::Error::ExpiredMetadata { ref role, .. } => error::ExpiredSnafu {
            metadata_url,
            role: role.to_string(),
        }
        .into_error(Box::new(e)),
        e => error::LoadSnafu { metadata_url }.into_error(Box::new(e)),
    })
}

/// Like [`load`], but no repository at `source` (no `timestamp.json`) is `Ok(None)`: the
/// caller may start a new one there.
pub async fn load_if_present(
    root: &[u8],
    source: &Source,
    opts: &LoadOptions,
) -> Result<Option<Repository>> {
    match load(root, source, opts).await {
        Ok(repo) => Ok(Some(repo)),
        Err(crate::Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Adapter: tough's loader wants a concrete `Transport`; this forwards to a boxed one.
#[derive(Debug, Clone)]
pub struct TransportBox(pub Box<dyn Transport>);

#[tough::async_trait]
impl Transport for TransportBox {
    async fn fetch(
        &self,
        url: url::Url,
    ) -> std::result::Result<tough::TransportStream, tough::TransportError> {
        self.0.fetch(url).await
    }
}
