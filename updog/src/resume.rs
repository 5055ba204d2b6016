//! Resume records: what a killed image write leaves so that the next run continues it.
//!
//! One JSON record per image (`<resume dir>/<kind>.json`), replaced atomically and durably at
//! each checkpoint by the write pipeline ([`crate::image`]): the exact target (name, SHA-256,
//! length), the partition (GUID, offset, length), the compressed offset, the SHA-256 mid-state,
//! and the LZ4 framer and decoder states. A record of another format, for another target or
//! partition, or unreadable is removed and the image starts over; the records are cleared once
//! the set is verified (or found corrupt).

use crate::error::Result;
use crate::fsutil;
use crate::image::ImagePlan;
use crate::lz4::{Boundary, DecoderState};
use crate::reporter::ImageKind;
use serde::{Deserialize, Serialize};
use sha2::digest::common::hazmat::SerializableState;
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// A durable record of progress on one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// Record format.
    pub format: u32,
    /// Target name.
    pub target: String,
    /// Target SHA-256 (hex).
    pub sha256: String,
    /// Target length.
    pub length: u64,
    /// Partition unique GUID.
    pub partition_guid: String,
    /// Partition first byte on the disk.
    pub partition_first_byte: u64,
    /// Partition length.
    pub partition_len: u64,
    /// True once the whole image is written, flushed and its hash confirmed.
    pub complete: bool,
    /// Compressed bytes consumed at the checkpoint.
    pub compressed_offset: u64,
    /// SHA-256 mid-state after those bytes (hex).
    pub hash_state: String,
    /// SHA-256 mid-state of the decoded bytes written so far (hex; boot and hash images, which
    /// are read back and compared when complete; empty for root).
    #[serde(default)]
    pub written_hash: String,
    /// LZ4 framer state.
    pub boundary: Boundary,
    /// LZ4 decoder state (includes the bytes written so far).
    pub decoder: DecoderState,
}

/// Format 2 added `written_hash`; format 3 keeps the content xxh32 as twox-hash's state. A record
/// of another format is discarded (the image starts over).
pub(crate) const RECORD_FORMAT: u32 = 3;

impl ResumeRecord {
    fn matches(&self, plan: &ImagePlan) -> bool {
        self.format == RECORD_FORMAT
            && self.target == plan.target
            && self.sha256 == hex::encode(plan.sha256)
            && self.length == plan.length
            && self.partition_guid == plan.partition.unique_guid
            && self.partition_first_byte == plan.partition.first_byte
            && self.partition_len == plan.partition.len_bytes
    }
}

/// Where the record of an image lives.
pub fn record_path(resume_dir: &Path, kind: ImageKind) -> PathBuf {
    resume_dir.join(format!("{kind}.json"))
}

/// Loads a record for `plan` if one exists and matches exactly; a stale or unreadable record is
/// removed.
pub fn load_record(resume_dir: &Path, plan: &ImagePlan) -> Option<ResumeRecord> {
    let path = record_path(resume_dir, plan.kind);
    let bytes = match fsutil::read_state_file(&path) {
        Ok(b) => b?,
        Err(e) => {
            warn!("not resuming from {}: {e}", path.display());
            return None;
        }
    };
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    if let Ok(Format { format }) = serde_json::from_slice::<Format>(&bytes)
        && format != RECORD_FORMAT
    {
        info!(
            "discarding resume record {} of format {format} (this updog writes format \
             {RECORD_FORMAT}): the image starts over",
            path.display()
        );
        let _ = fsutil::remove_durable(&path);
        return None;
    }
    match serde_json::from_slice::<ResumeRecord>(&bytes) {
        Ok(r) if r.matches(plan) => Some(r),
        Ok(_) => {
            info!(
                "discarding resume record {} for a different target or partition",
                path.display()
            );
            let _ = fsutil::remove_durable(&path);
            None
        }
        Err(e) => {
            warn!(
                "discarding unreadable resume record {}: {e}",
                path.display()
            );
            let _ = fsutil::remove_durable(&path);
            None
        }
    }
}

/// Removes every resume record.
pub fn clear_records(resume_dir: &Path) -> Result<()> {
    for kind in [ImageKind::Root, ImageKind::Boot, ImageKind::Hash] {
        fsutil::remove_durable(&record_path(resume_dir, kind))?;
    }
    Ok(())
}

pub(crate) fn save_hash(h: &sha2::Sha256) -> String {
    hex::encode(h.serialize().as_slice())
}

pub(crate) fn load_hash(s: &str) -> Option<sha2::Sha256> {
    let bytes = hex::decode(s).ok()?;
    let arr = bytes.as_slice().try_into().ok()?;
    sha2::Sha256::deserialize(arr).ok()
}

/// Replaces the record of `kind` atomically and durably.
pub(crate) fn write_record(dir: &Path, kind: ImageKind, record: &ResumeRecord) -> Result<()> {
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    fsutil::write_atomic(&record_path(dir, kind), &bytes)
}
