//! The host's reader: the same rules as [`Manifest::validate`], applied entry by entry.
//!
//! A manifest serves every variant and architecture of a repository. One entry that a host cannot
//! read (an architecture added after the host was built, a typo in one release's waves) must not
//! stop every other host from updating, yet a host must never act on an entry that breaks the
//! rules. So [`Manifest::from_slice_for_hosts`] fails only on what concerns the whole file (not
//! JSON, no `updates` array, bad `migrations`, unknown top-level values that do not parse), sets
//! every other broken entry aside in [`Manifest::rejected`], and [`Manifest::check_host`] refuses a
//! host whose own variant and arch have a rejected entry.
//!
//! The migration chain is not judged here: it spans all variants, and the host checks the part it
//! needs when it looks up its migrations ([`Manifest::find_migrations`]).

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::de::Shape;
use super::{Manifest, Update};
use crate::error::{Error, Result};
use crate::select::Host;

/// An update entry that a host may not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedEntry {
    /// Its index in the file's `updates` array.
    pub index: usize,
    /// Its `variant` field, if it is a string.
    pub variant: Option<String>,
    /// Its `arch` field, if it is a string.
    pub arch: Option<String>,
    /// Its `version` field, if it is a string.
    pub version: Option<String>,
    /// What is wrong (field, value, rule; with line and column for a field that does not parse).
    pub reason: String,
}

impl RejectedEntry {
    /// True if this entry is for `host`'s variant and arch.
    pub fn is_for(&self, host: &Host) -> bool {
        self.variant.as_deref() == Some(host.variant.as_str())
            && self.arch.as_deref() == Some(host.arch.as_str())
    }
}

impl fmt::Display for RejectedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".to_owned());
        write!(
            f,
            "updates[{}] ({} {} {}): {}",
            self.index,
            field(&self.variant),
            field(&self.arch),
            field(&self.version),
            self.reason
        )
    }
}

/// The identifying fields of an entry, read loosely (any of them may be missing or not a string).
#[derive(Deserialize)]
struct Ident {
    variant: Option<serde_json::Value>,
    arch: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

fn ident(raw: &RawValue) -> (Option<String>, Option<String>, Option<String>) {
    let s = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    match serde_json::from_str::<Ident>(raw.get()) {
        Ok(i) => (s(i.variant), s(i.arch), s(i.version)),
        Err(_) => (None, None, None),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &[u8], offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before.len()
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// An error and the errors that caused it, joined by `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Parses one entry, naming the field, the value and its line and column in the whole file.
fn parse_entry(whole: &[u8], index: usize, raw: &RawValue) -> Result<Update, String> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let parsed = serde_path_to_error::deserialize::<_, Update>(&mut de);
    parsed.map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            format!("updates[{index}]")
        } else {
            format!("updates[{index}].{path}")
        };
        let inner = e.into_inner();
        // The entry's text is a slice of the file: locate the error in the file.
        let base = (raw.get().as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        let (base_line, base_col) = line_col(whole, base);
        let (line, col) = (inner.line(), inner.column());
        let (line, col) = if line <= 1 {
            (base_line, base_col + col.saturating_sub(1))
        } else {
            (base_line + line - 1, col)
        };
        let msg = inner.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(p) => msg[..p].to_owned(),
            None => msg,
        };
        format!("field `{field}` is invalid: {msg} (line {line}, column {col})")
    })
}

impl Manifest {
    /// Parses manifest bytes the way a host must: whole-file problems are errors (as in
    /// [`Manifest::from_slice`]); an entry that does not parse or breaks a rule of
    /// [`Manifest::validate`] (waves, wave keys, duplicates, `max_version` of its variant/arch)
    /// is left out of `updates` and listed in `rejected`. Call [`Manifest::check_host`] before
    /// selecting, so a host never silently skips its own broken entry.
    ///
    /// The result is for reading only: writing it would drop the rejected entries.
    pub fn from_slice_for_hosts(bytes: &[u8], origin: &str) -> Result<Manifest> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let shape: Shape<&RawValue> =
            serde_path_to_error::deserialize(&mut de).map_err(|e| Error::ParseManifest {
                origin: origin.to_owned(),
                field: e.path().to_string(),
                source: e.into_inner(),
            })?;
        de.end().map_err(|source| Error::ParseManifest {
            origin: origin.to_owned(),
            field: ".".to_owned(),
            source,
        })?;

        let mut rejected = Vec::new();
        // Parsed entries and their index in the file.
        let mut parsed: Vec<(usize, Update)> = Vec::new();
        for (index, raw) in shape.updates.iter().enumerate() {
            match parse_entry(bytes, index, raw) {
                Ok(u) => parsed.push((index, u)),
                Err(reason) => {
                    let (variant, arch, version) = ident(raw);
                    rejected.push(RejectedEntry {
                        index,
                        variant,
                        arch,
                        version,
                        reason,
                    });
                }
            }
        }

        // The whole-manifest rules, on the entries that parsed. `problems` indexes into this
        // list; map back to the file's indices.
        let mut manifest = Manifest {
            updates: Vec::new(),
            migrations: shape.migrations,
            extra: shape.extra,
            rejected: Vec::new(),
        };
        let (file_index, updates): (Vec<usize>, Vec<Update>) = parsed.into_iter().unzip();
        manifest.updates = updates;
        let mut reasons: Vec<Option<String>> = vec![None; manifest.updates.len()];
        for problem in manifest.problems() {
            let text = chain(&problem.error);
            for i in problem.entries {
                reasons[i].get_or_insert_with(|| text.clone());
            }
        }
        let mut kept = Vec::new();
        for ((u, reason), index) in manifest.updates.drain(..).zip(reasons).zip(file_index) {
            match reason {
                None => kept.push(u),
                Some(reason) => rejected.push(RejectedEntry {
                    index,
                    variant: Some(u.variant.to_string()),
                    arch: Some(u.arch.to_string()),
                    version: Some(u.version.to_string()),
                    reason,
                }),
            }
        }
        rejected.sort_by_key(|r| r.index);
        manifest.updates = kept;
        manifest.rejected = rejected;
        Ok(manifest)
    }

    /// Refuses `host` if one of its own entries (same variant and arch) was set aside by
    /// [`Manifest::from_slice_for_hosts`]: a host must not choose among its releases while one of
    /// them is broken (the broken one might be the newest, or the one that lowers `max_version`).
    pub fn check_host(&self, host: &Host) -> Result<()> {
        match self.rejected.iter().find(|r| r.is_for(host)) {
            Some(r) => Err(Error::InvalidEntryForHost {
                host: format!("{} {}", host.variant, host.arch),
                entry: r.to_string(),
            }),
            None => Ok(()),
        }
    }
}
