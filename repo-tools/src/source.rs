//! Loading a repository through tough with a trusted root, and fetching the exact metadata
//! bytes tough verified (so a mirror serves byte-identical, verifiable files).

use crate::error::{self, Result};
use crate::layout::MetadataNames;
use crate::root;
use abos_repo_core::{LoadOptions, Source, TrustedRoot};
use aws_lc_rs::digest::{SHA256, digest};
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use snafu::{OptionExt, ResultExt, ensure};
use tough::schema::{Metafile, Role, Root, Signed, Snapshot, Targets, Timestamp};
use tough::{Limits, Repository, Transport, TransportErrorKind};
use url::Url;

/// Whether expired metadata is accepted: the shared core's policy (`--allow-expired` maps to
/// [`Expiry::Unsafe`] through [`Expiry::from_allow_flag`]).
pub use abos_repo_core::Expiry;

/// A loaded, verified repository plus the verified bytes of its metadata files.
#[derive(Debug)]
pub struct LoadedRepo {
    /// tough's repository.
    pub repo: Repository,
    /// Metadata base URL (with a trailing slash).
    pub metadata_url: Url,
    /// Targets base URL (with a trailing slash).
    pub targets_url: Url,
    /// The current metadata file names.
    pub names: MetadataNames,
    /// `(file name, bytes)` in write order: roots, targets, snapshot, timestamp.
    pub files: Vec<(String, Vec<u8>)>,
}

impl LoadedRepo {
    /// Where it was loaded from.
    pub fn source(&self) -> Source {
        Source::new(self.metadata_url.clone(), self.targets_url.clone())
    }
}

/// Loads and verifies a repository with tough, then fetches and checks the root chain and the
/// current metadata files.
pub async fn load(
    trusted: &TrustedRoot,
    metadata_url: Url,
    targets_url: Url,
    expiry: Expiry,
    transport: Box<dyn Transport>,
) -> Result<LoadedRepo> {
    let source = Source::new(metadata_url, targets_url);
    let opts = LoadOptions {
        expiry,
        transport: Some(transport.clone()),
        ..Default::default()
    };
    let repo = abos_repo_core::load(&trusted.bytes, &source, &opts).await?;
    let Source {
        metadata_url,
        targets_url,
    } = source;
    ensure!(
        repo.targets().signed.role_names().is_empty(),
        error::DelegationsUnsupportedSnafu {
            url: metadata_url.to_string()
        }
    );

    let limits = Limits::default();
    let final_root = repo.root();
    let names = MetadataNames::new(
        &final_root.signed,
        meta(
            &repo.timestamp().signed.meta,
            "snapshot.json",
            "timestamp.json",
        )?
        .version
        .get(),
        meta(&repo.snapshot().signed.meta, "targets.json", "snapshot")?
            .version
            .get(),
    );
    let mut files = Vec::new();

    // The whole root chain, 1..=N, each link verified.
    let mut chain = Vec::new();
    for name in &names.roots {
        let bytes = fetch(
            transport.as_ref(),
            &metadata_url,
            name,
            limits.max_root_size,
        )
        .await?;
        let parsed = root::parse(&bytes, join(&metadata_url, name)?.as_ref())?;
        chain.push((name.clone(), parsed));
        files.push((name.clone(), bytes));
    }
    root::verify_chain(&chain, &trusted.root)?;
    let (last_name, last) = chain.last().context(error::EmptyRootChainSnafu)?;
    same_signed(&last.signed, &final_root.signed, last_name)?;

    // targets, snapshot, timestamp: the same content tough verified, signatures checked again on
    // these exact bytes, and hashes/lengths checked where the referring role lists them.
    let snap_meta = meta(
        &repo.timestamp().signed.meta,
        "snapshot.json",
        "timestamp.json",
    )?
    .clone();
    let targets_meta = meta(
        &repo.snapshot().signed.meta,
        "targets.json",
        &names.snapshot,
    )?
    .clone();
    let bytes = fetch_checked(
        transport.as_ref(),
        &metadata_url,
        &names.targets,
        &targets_meta,
        limits.max_targets_size,
    )
    .await?;
    check_role::<Targets>(
        &bytes,
        &repo.targets().signed,
        &final_root.signed,
        &names.targets,
    )?;
    files.push((names.targets.clone(), bytes));
    let bytes = fetch_checked(
        transport.as_ref(),
        &metadata_url,
        &names.snapshot,
        &snap_meta,
        limits.max_snapshot_size,
    )
    .await?;
    check_role::<Snapshot>(
        &bytes,
        &repo.snapshot().signed,
        &final_root.signed,
        &names.snapshot,
    )?;
    files.push((names.snapshot.clone(), bytes));
    let bytes = fetch(
        transport.as_ref(),
        &metadata_url,
        &names.timestamp,
        limits.max_timestamp_size,
    )
    .await?;
    check_role::<Timestamp>(
        &bytes,
        &repo.timestamp().signed,
        &final_root.signed,
        &names.timestamp,
    )?;
    files.push((names.timestamp.clone(), bytes));

    Ok(LoadedRepo {
        repo,
        metadata_url,
        targets_url,
        names,
        files,
    })
}

fn meta<'a>(
    map: &'a std::collections::HashMap<String, Metafile>,
    key: &str,
    role: &str,
) -> Result<&'a Metafile> {
    map.get(key).context(error::MetaMissingSnafu { key, role })
}

fn join(base: &Url, name: &str) -> Result<Url> {
    base.join(name).ok().context(error::BadUrlSnafu {
        url: format!("{base}{name}"),
    })
}

/// Fetches one metadata file (at most `max` bytes).
async fn fetch(transport: &dyn Transport, base: &Url, name: &str, max: u64) -> Result<Vec<u8>> {
    let url = join(base, name)?;
    let mut stream = transport.fetch(url.clone()).await.map_err(|source| {
        if source.kind() == TransportErrorKind::FileNotFound {
            error::Error::MetadataNotFound {
                url: url.to_string(),
            }
        } else {
            error::Error::Fetch {
                url: url.to_string(),
                source: Box::new(source),
            }
        }
    })?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Box::new).context(error::FetchSnafu {
            url: url.to_string(),
        })?;
        out.extend_from_slice(&chunk);
        ensure!(
            out.len() as u64 <= max,
            error::TooLargeSnafu {
                url: url.to_string(),
                max
            }
        );
    }
    Ok(out)
}

async fn fetch_checked(
    transport: &dyn Transport,
    base: &Url,
    name: &str,
    meta: &Metafile,
    max: u64,
) -> Result<Vec<u8>> {
    let bytes = fetch(transport, base, name, meta.length.unwrap_or(max)).await?;
    if let Some(length) = meta.length {
        ensure!(
            bytes.len() as u64 == length,
            error::MetadataMismatchSnafu {
                file: name,
                reason: format!(
                    "length {} but the referring role says {length}",
                    bytes.len()
                )
            }
        );
    }
    if let Some(hashes) = &meta.hashes {
        let got = digest(&SHA256, &bytes);
        ensure!(
            got.as_ref() == hashes.sha256.as_ref(),
            error::MetadataMismatchSnafu {
                file: name,
                reason: format!(
                    "sha256 {} but the referring role says {}",
                    hex::encode(got.as_ref()),
                    hex::encode(&hashes.sha256)
                )
            }
        );
    }
    Ok(bytes)
}

fn same_signed<T: Serialize>(a: &T, b: &T, file: &str) -> Result<()> {
    ensure!(
        root::canonical(a)? == root::canonical(b)?,
        error::MetadataMismatchSnafu {
            file,
            reason: "content changed between verification and copy".to_owned()
        }
    );
    Ok(())
}

fn check_role<T: Role + Serialize + DeserializeOwned>(
    bytes: &[u8],
    verified: &T,
    root: &Root,
    file: &str,
) -> Result<()> {
    let parsed: Signed<T> =
        serde_json::from_slice(bytes).context(error::ParseMetadataSnafu { file })?;
    same_signed(&parsed.signed, verified, file)?;
    root.verify_role(&parsed)
        .map_err(|source| error::Error::MetadataSignature {
            file: file.to_owned(),
            source: Box::new(source),
        })
}
