//! Targets: what signed metadata says about one (`TargetInfo`), its download URL (§5.7.3), and a
//! byte stream that is only complete once its length and every listed hash have been checked.

use crate::error::{self, Error, Result};
use crate::hash::{HashCheck, Hasher, Hashes};
use crate::transport::ByteStream;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use url::Url;

/// Signed facts about one target, from the role that the delegation search trusted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetInfo {
    /// The target path (TARGETPATH), as the metadata lists it.
    pub name: String,
    /// Signed length in bytes.
    pub length: u64,
    /// Signed hashes, in the order listed.
    pub hashes: Hashes,
    /// The entry's `custom` object, if any.
    pub custom: Option<serde_json::Value>,
    /// The targets role that provided this entry (`targets` or a delegated role).
    pub role: String,
}

/// Characters kept as-is in a URL path segment (RFC 3986 `pchar` minus `%`).
fn keep(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The URL of target `name` under `base` (which ends with `/`). With consistent snapshots the
/// file name becomes `<hash>.<file name>` in the target's own directory: `dir/<hash>.file`
/// (§5.7.3), where `<hash>` is the first hash the metadata lists.
pub(crate) fn target_url(
    base: &Url,
    name: &str,
    hashes: &Hashes,
    consistent_snapshot: bool,
) -> Result<Url> {
    let segments: Vec<&str> = name.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return error::UnsafeTargetPathSnafu { name }.fail();
    }
    let (file, dirs) = segments
        .split_last()
        .expect("split yields at least one segment");
    let mut path: Vec<String> = dirs.iter().map(|d| encode_segment(d)).collect();
    let file = if consistent_snapshot {
        format!("{}.{file}", hashes.first_hex())
    } else {
        (*file).to_owned()
    };
    path.push(encode_segment(&file));
    let relative = path.join("/");
    base.join(&relative).map_err(|source| Error::JoinUrl {
        base: base.to_string(),
        name: relative,
        source,
    })
}

/// A target's body as it arrives. Chunks are provisional: the stream ends with `None` only
/// after the length and every listed hash have matched, and yields an error instead otherwise
/// (including as soon as more bytes than the signed length arrive). Do not act on the data (for
/// example, mark a written partition bootable) before the stream has ended cleanly.
pub struct TargetStream {
    inner: ByteStream,
    name: String,
    url: String,
    expected: u64,
    received: u64,
    hasher: Option<Hasher>,
    done: bool,
}

impl std::fmt::Debug for TargetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetStream")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("expected", &self.expected)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

impl TargetStream {
    pub(crate) fn new(inner: ByteStream, info: &TargetInfo, url: &Url) -> Self {
        Self {
            inner,
            name: info.name.clone(),
            url: url.to_string(),
            expected: info.length,
            received: 0,
            hasher: Some(Hasher::new(&info.hashes)),
            done: false,
        }
    }

    /// The URL being read.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn finish(&mut self) -> Result<()> {
        if self.received != self.expected {
            return error::LengthMismatchSnafu {
                what: format!("target '{}'", self.name),
                url: &self.url,
                expected: self.expected,
                actual: self.received,
            }
            .fail();
        }
        match self.hasher.take().map(Hasher::finish) {
            Some(HashCheck::Match) => Ok(()),
            Some(HashCheck::Mismatch(algorithm)) => error::HashMismatchSnafu {
                what: format!("target '{}'", self.name),
                url: &self.url,
                algorithm,
            }
            .fail(),
            Some(HashCheck::Unsupported(algorithm)) => error::UnsupportedHashSnafu {
                what: format!("target '{}'", self.name),
                algorithm,
            }
            .fail(),
            None => Ok(()),
        }
    }
}

impl Stream for TargetStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.expected {
                    self.done = true;
                    return Poll::Ready(Some(
                        error::TooLargeSnafu {
                            what: format!("target '{}'", self.name),
                            url: self.url.clone(),
                            limit: self.expected,
                        }
                        .fail(),
                    ));
                }
                if let Some(h) = self.hasher.as_mut() {
                    h.update(&chunk);
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(source))) => {
                self.done = true;
                Poll::Ready(Some(Err(Error::TargetRead {
                    name: self.name.clone(),
                    url: self.url.clone(),
                    source,
                })))
            }
            Poll::Ready(None) => {
                self.done = true;
                match self.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn hashes() -> Hashes {
        let mut m = serde_json::Map::new();
        m.insert("sha256".into(), serde_json::Value::String("ab".repeat(32)));
        Hashes::from_json(&m).unwrap()
    }

    #[test]
    fn spec_5_7_3_consistent_url_for_a_target_in_a_subdirectory_is_dir_hash_dot_file() {
        let base: Url = "http://h/targets/".parse().unwrap();
        let h = "ab".repeat(32);
        let url = target_url(&base, "dir/sub/file.img", &hashes(), true).unwrap();
        assert_eq!(
            url.as_str(),
            format!("http://h/targets/dir/sub/{h}.file.img")
        );
        let url = target_url(&base, "file.img", &hashes(), true).unwrap();
        assert_eq!(url.as_str(), format!("http://h/targets/{h}.file.img"));
        let url = target_url(&base, "dir/file.img", &hashes(), false).unwrap();
        assert_eq!(url.as_str(), "http://h/targets/dir/file.img");
        let url = target_url(&base, "a b?c#d", &hashes(), false).unwrap();
        assert_eq!(url.as_str(), "http://h/targets/a%20b%3Fc%23d");
    }

    #[test]
    fn unsafe_target_paths_are_refused() {
        let base: Url = "http://h/targets/".parse().unwrap();
        for name in ["../etc/passwd", "a/./b", "/abs", "a//b", ""] {
            let err = target_url(&base, name, &hashes(), false).unwrap_err();
            assert!(
                matches!(err, Error::UnsafeTargetPath { .. }),
                "{name}: {err}"
            );
        }
    }
}
