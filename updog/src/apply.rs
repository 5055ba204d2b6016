//! Carrying out an [`UpdatePlan`] in the fixed, safe order.
//!
//! The status says `staging` → the inactive set is made unbootable, durably → migrations and
//! `manifest.json` are fetched through TUF and cached → boot and hash are streamed into the
//! inactive partitions (resumable) and read back → root is streamed and checked against the hash
//! tree and the root hash in the new BOOT partition as it is written (or, for a delta or where
//! direct reads are refused, after) → the set is marked valid → (`update` only) it becomes the next to
//! boot. Nothing before "marked valid" can make the set boot; a kill anywhere leaves the running
//! set as it was and the next run resumes.

use crate::config::HostPaths;
use crate::delta_update::{self, DeltaReport};
use crate::error::{self, Result};
use crate::fsutil;
use crate::http::HttpClient;
use crate::image::{self, ImageResult, WriteSettings};
use crate::plan::UpdatePlan;
use crate::repo::LoadedRepo;
use crate::reporter::{ImageKind, ProgressEvent, Reporter, Step};
use crate::resume;
use crate::status::{self, State, Status};
use crate::verity;
use crate::workflow::Activation;
use jiff::Timestamp;
use signpost::Signpost;
use snafu::ResultExt;
use std::sync::Arc;
use tracing::info;

/// What applying a plan needs from its surroundings.
pub(crate) struct ApplyContext<'a> {
    /// Host paths (state, resume and migration directories).
    pub paths: &'a HostPaths,
    /// "Now", for the status file.
    pub now: Timestamp,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
    /// The HTTP client (retry budget, deadline, query parameters).
    pub http: &'a HttpClient,
    /// The loaded repository (migrations are fetched through it).
    pub loaded: &'a LoadedRepo,
    /// Checkpoint distance of resumable downloads, in decompressed bytes.
    pub checkpoint_bytes: u64,
    /// Write the root image from a published delta when worth it (`delta` in updog.toml).
    pub delta: bool,
}

/// Applies `plan` to the disk `sp` opened, recording each state change in `st`. Returns the
/// per-image figures and how the root image was written (delta or full). The set is valid (and
/// next to boot when the plan activates) on success.
pub(crate) async fn apply(
    cx: &ApplyContext<'_>,
    plan: &UpdatePlan,
    sp: &mut Signpost,
    st: &mut Status,
) -> Result<(Vec<ImageResult>, Option<DeltaReport>)> {
    // The disk must still be what the plan was made from.
    let inactive = sp.inactive().context(error::SignpostSnafu {
        op: "find the inactive set",
    })?;
    let set = sp.disk().set(inactive).context(error::SignpostSnafu {
        op: "read the inactive set",
    })?;
    snafu::ensure!(
        set == plan.inactive && sp.disk().path() == plan.disk,
        error::PlanStaleSnafu {
            planned: plan.inactive.name.to_string(),
            found: inactive.to_string(),
            disk: plan.disk.clone(),
        }
    );

    // The state directories this update writes into are checked before the disk is touched.
    let resume_dir = cx.paths.resume_dir();
    fsutil::ensure_state_dir(&cx.paths.state_dir(), &resume_dir)?;
    fsutil::check_entries(&resume_dir)?;
    for dir in [
        cx.paths.migrations_dir(),
        cx.paths.migrations_metadata_dir(),
    ] {
        fsutil::ensure_state_dir(&dir, &dir)?;
        fsutil::check_entries(&dir)?;
    }

    // 0. The status says "staging" (with our pid) before the inactive set is touched.
    st.state = State::Staging;
    st.pid = Some(std::process::id());
    st.staged_version = None;
    st.staged_set = None;
    st.next_version = Some(plan.update.version.clone());
    st.wave_opens_at = None;
    status::store(cx.paths, st, cx.now)?;

    let step = |step: Step| cx.reporter.report(ProgressEvent::Step { step });

    // 1. The inactive set becomes unbootable, durably, before anything is written to it.
    step(Step::ClearInactive);
    sp.clear_inactive().context(error::SignpostSnafu {
        op: "clear the inactive set",
    })?;

    // 2. Migrations and manifest.json, through TUF, for the migrator after reboot.
    step(Step::FetchMigrations);
    cx.http
        .params()
        .set("migrations", plan.migrations.join(","));
    cx.loaded
        .cache_migrations(cx.paths, &plan.migrations)
        .await?;

    // 3. Images: boot, hash, then root, checked against the new tree as it is written.
    step(Step::WriteImages);
    let settings = WriteSettings {
        resume_dir: resume_dir.clone(),
        checkpoint_bytes: cx.checkpoint_bytes,
        reporter: cx.reporter.clone(),
    };
    let mut results = Vec::with_capacity(plan.images.len());
    let mut root_update = None;
    for image in &plan.images {
        if image.kind == ImageKind::Root {
            // The tree in the new hash partition, under the root hash in the new BOOT partition,
            // is checked now; a bad one is refused before the root is written.
            let check = match verity::RootCheck::prepare(
                &plan.disk,
                &plan.inactive,
                boot_written(&results),
            ) {
                Ok(c) => Some(c),
                Err(e) => return Err(untrusted(&resume_dir, e)),
            };
            // From the delta when one is published and worth it, else the full image.
            let (result, how) = delta_update::write_root(
                cx.http,
                cx.loaded,
                image,
                &plan.running_root,
                &settings,
                cx.delta,
                check,
            )
            .await?;
            results.push(result);
            root_update = Some(how);
            continue;
        }
        results.push(image::write_image(cx.http, image, &settings, None).await?);
    }

    // 4. Verify what is on the disk now, before anything may boot it: the root was read back
    // and checked behind the writer, or it is read and checked now.
    step(Step::Verify);
    let root = results.iter().find(|r| r.kind == ImageKind::Root);
    let behind = root.is_some_and(|r| r.verified_behind);
    if let Some(how) = root_update.as_mut() {
        how.verified = if behind {
            "while-writing"
        } else {
            "after-writing"
        };
    }
    if behind {
        info!("verified set {inactive}: root checked against the tree as it was written");
    } else {
        let started = std::time::Instant::now();
        let verified = verify_set(&plan.disk, &plan.inactive, boot_written(&results));
        info!(
            "verified set {inactive} in {:.2?}: {}",
            started.elapsed(),
            if verified.is_ok() { "ok" } else { "FAILED" }
        );
        if let Err(e) = verified {
            return Err(untrusted(&resume_dir, e));
        }
    }

    // 5. Valid (tries_left = 1), then next-to-boot for `update`.
    step(Step::MarkValid);
    sp.mark_inactive_valid().context(error::SignpostSnafu {
        op: "mark the inactive set valid",
    })?;
    st.state = State::Staged;
    st.pid = None;
    st.staged_version = Some(plan.update.version.clone());
    st.staged_set = Some(inactive.to_string());
    status::store(cx.paths, st, cx.now)?;
    if plan.activation == Activation::Activate {
        step(Step::Activate);
        sp.upgrade_to_inactive().context(error::SignpostSnafu {
            op: "make the new set the next to boot",
        })?;
        st.state = State::RebootPending;
        status::store(cx.paths, st, cx.now)?;
    }
    resume::clear_records(&resume_dir)?;
    delta_update::clear(&resume_dir)?;
    Ok((results, root_update))
}

/// What is on the inactive set cannot be trusted: the next run starts over. Returns `e`.
fn untrusted(resume_dir: &std::path::Path, e: error::Error) -> error::Error {
    let _ = resume::clear_records(resume_dir);
    let _ = delta_update::clear(resume_dir);
    e
}

/// Bytes written to the BOOT partition (its image comes first in the plan; none read: no
/// dm-verity table is found, a verification error).
fn boot_written(results: &[ImageResult]) -> u64 {
    results
        .iter()
        .find(|r| r.kind == ImageKind::Boot)
        .map_or(0, |r| r.written)
}

/// Verifies the written root against the written hash partition, with the dm-verity parameters
/// (root hash, salt, sizes) read from the written BOOT partition's grub.cfg.
fn verify_set(
    disk: &std::path::Path,
    set: &signpost::PartitionSet,
    boot_written: u64,
) -> Result<()> {
    let file = std::fs::File::open(disk).context(error::DiskOpenSnafu { path: disk })?;
    let params = verity::boot_params_from_partition(
        &file,
        set.boot.first_byte,
        boot_written.min(set.boot.len_bytes),
    )?;
    verity::verify(
        disk,
        set.root.first_byte,
        set.root.len_bytes,
        set.hash.first_byte,
        set.hash.len_bytes,
        &params,
    )
}
