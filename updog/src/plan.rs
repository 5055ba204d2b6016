//! The update plan: everything `update` will do, decided before anything is touched.
//!
//! [`UpdatePlan::build`] resolves the chosen update's signed targets (boot, hash, root and the
//! migration chain) and reads which set is inactive and where its partitions are; it writes
//! nothing. `check-update --json` prints it (`"plan"`), and `update` hands the same value to
//! [`crate::apply`], which carries out [`UpdatePlan::steps`] in that fixed order.

use crate::error::{self, Result};
use crate::image::ImagePlan;
use crate::repo::LoadedRepo;
use crate::reporter::{ImageKind, Step};
use crate::workflow::Activation;
use serde::{Serialize, Serializer};
use signpost::{PartitionSet, Signpost};
use snafu::{IntoError, ResultExt};
use std::path::PathBuf;
use update_metadata::{Update, Version};

/// What an update will do, in order.
#[derive(Debug, Clone, Serialize)]
pub struct UpdatePlan {
    /// The version running now.
    pub from: Version,
    /// The version it updates to.
    pub to: Version,
    /// The chosen manifest entry (printed beside the plan, not in it).
    #[serde(skip)]
    pub update: Update,
    /// Stage only (`update-image`, a closed window, a fleet slot to wait for) or also activate.
    pub activation: Activation,
    /// The whole disk written into.
    pub disk: PathBuf,
    /// The set that receives the update (the one not running).
    pub inactive: PartitionSet,
    /// The running set's root partition: what a delta update copies unchanged chunks from.
    pub running_root: signpost::Partition,
    /// Boot, hash and root, in the order they are written: signed target, URL, length, hash, and
    /// the partition each goes to.
    pub images: Vec<ImagePlan>,
    /// Migration targets fetched through TUF (oldest first), then `manifest.json`, cached for
    /// the migrator after the reboot.
    pub migrations: Vec<String>,
    /// The steps in the order they run.
    pub steps: Vec<Step>,
    /// Bytes of the signed image targets (what a full download fetches).
    pub download_bytes: u64,
}

impl UpdatePlan {
    /// Resolves everything the update needs without touching the disk: the signed targets
    /// (through TUF), the migration chain, and the inactive set's partitions.
    pub async fn build(
        loaded: &LoadedRepo,
        running: &Version,
        update: Update,
        activation: Activation,
        sp: &Signpost,
    ) -> Result<UpdatePlan> {
        let inactive = sp.inactive().context(error::SignpostSnafu {
            op: "find the inactive set",
        })?;
        let set = sp.disk().set(inactive).context(error::SignpostSnafu {
            op: "read the inactive set",
        })?;
        let disk = sp.disk().path().to_path_buf();
        let running_root = sp
            .disk()
            .set(sp.active())
            .context(error::SignpostSnafu {
                op: "read the running set",
            })?
            .root;
        // Boot and hash first: the root hash and the tree they carry are what the root image is
        // checked against as it is written (see `crate::verity::RootCheck`).
        let mut images = Vec::with_capacity(3);
        for (kind, name, partition) in [
            (ImageKind::Boot, update.images.boot.to_string(), &set.boot),
            (ImageKind::Hash, update.images.hash.to_string(), &set.hash),
            (ImageKind::Root, update.images.root.to_string(), &set.root),
        ] {
            let info = loaded.target(&name).await?;
            images.push(ImagePlan {
                kind,
                target: info.name,
                url: info.url,
                length: info.length,
                sha256: info.sha256,
                disk: disk.clone(),
                partition: partition.clone(),
            });
        }
        // Migrations run forward on an upgrade and backward on a downgrade: the chain is the
        // same list between the lower and the higher version.
        let (lo, hi) = if running <= &update.version {
            (running, &update.version)
        } else {
            (&update.version, running)
        };
        let mut migrations: Vec<String> = loaded
            .manifest
            .find_migrations(lo, hi)
            .map_err(|source| {
                error::MigrationPathSnafu {
                    from: lo.to_string(),
                    to: hi.to_string(),
                }
                .into_error(source)
            })?
            .into_iter()
            .map(|t| t.to_string())
            .collect();
        migrations.push("manifest.json".to_owned());
        let mut steps = vec![
            Step::ClearInactive,
            Step::FetchMigrations,
            Step::WriteImages,
            Step::Verify,
            Step::MarkValid,
        ];
        if activation == Activation::Activate {
            steps.push(Step::Activate);
        }
        let download_bytes = images.iter().map(|i| i.length).sum();
        Ok(UpdatePlan {
            from: running.clone(),
            to: update.version.clone(),
            update,
            activation,
            disk,
            inactive: set,
            running_root,
            images,
            migrations,
            steps,
            download_bytes,
        })
    }
}

/// Serialises a hash as lowercase hex.
pub(crate) fn serialize_hex<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}
