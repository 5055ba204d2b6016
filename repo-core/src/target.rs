//! Reading whole targets (manifest.json above all) through a loaded repository: length- and
//! hash-checked by tough, and never more than a fixed cap into memory.

use crate::error::{self, Result};
use crate::location::Source;
use futures::TryStreamExt;
use snafu::{IntoError, OptionExt};
use tough::{Repository, TargetName};

/// The name of the update manifest target.
pub const MANIFEST_TARGET: &str = "manifest.json";

/// The largest manifest.json either tool reads into memory (its signed length is checked
/// before anything is fetched, and tough stops a longer stream).
pub const MAX_MANIFEST_SIZE: u64 = 16 * 1024 * 1024;

/// Reads a whole target through tough, refusing one whose signed length is over `max`.
/// `Ok(None)`: the repository does not list it. `source` is where `repo` was loaded from
/// (named in errors).
pub async fn read_target_capped(
    repo: &Repository,
    source: &Source,
    name: &str,
    max: u64,
) -> Result<Option<Vec<u8>>> {
    let targets_url = source.targets_url.to_string();
    let target_name = TargetName::new(name)
        .map_err(|e| error::TargetNameSnafu { name }.into_error(Box::new(e)))?;
    if let Some(target) = repo.targets().signed.targets.get(&target_name)
        && target.length > max
    {
        return error::TargetTooLargeSnafu {
            name,
            targets_url,
            length: target.length,
            max,
        }
        .fail();
    }
    let read_err = |e| {
        error::ReadTargetSnafu {
            name,
            targets_url: targets_url.clone(),
        }
        .into_error(Box::new(e))
    };
    let Some(stream) = repo.read_target(&target_name).await.map_err(read_err)? else {
        return Ok(None);
    };
    let chunks: Vec<_> = stream.try_collect().await.map_err(read_err)?;
    Ok(Some(chunks.concat()))
}

/// Reads and parses `manifest.json` (at most [`MAX_MANIFEST_SIZE`]); returns the manifest and
/// the verified bytes. A repository without one is [`crate::Error::TargetMissing`].
pub async fn read_manifest(
    repo: &Repository,
    source: &Source,
) -> Result<(update_metadata::Manifest, Vec<u8>)> {
    let metadata_url = source.metadata_url.to_string();
    let bytes = read_target_capped(repo, source, MANIFEST_TARGET, MAX_MANIFEST_SIZE)
        .await?
        .context(error::TargetMissingSnafu {
            name: MANIFEST_TARGET,
            metadata_url: &metadata_url,
        })?;
    let manifest = update_metadata::Manifest::from_slice(&bytes, &metadata_url)
        .map_err(|e| error::ParseManifestSnafu { metadata_url }.into_error(Box::new(e)))?;
    Ok((manifest, bytes))
}
