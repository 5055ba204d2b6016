//! `s3://bucket/prefix` locations.

use crate::error::{self, Error, Result};
use std::fmt;
use std::str::FromStr;
use url::Url;

/// A place in a bucket: `s3://BUCKET/PREFIX` (the prefix may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (empty: the bucket's top).
    pub prefix: String,
}

impl S3Url {
    /// True if `text` names an S3 location (starts with `s3://`).
    pub fn is_s3(text: &str) -> bool {
        text.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("s3://"))
    }

    /// The key of `rel` (a `/`-separated relative path) under this prefix.
    pub fn key(&self, rel: &str) -> String {
        let rel = rel.trim_start_matches('/');
        if self.prefix.is_empty() {
            rel.to_owned()
        } else if rel.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }

    /// A location one level (or several, `a/b`) further down.
    pub fn join(&self, rel: &str) -> S3Url {
        S3Url {
            bucket: self.bucket.clone(),
            prefix: self.key(rel.trim_end_matches('/')),
        }
    }

    /// This location as a directory URL (`s3://bucket/prefix/`), for TUF base URLs.
    pub fn dir_url(&self) -> Url {
        let text = if self.prefix.is_empty() {
            format!("s3://{}/", self.bucket)
        } else {
            format!("s3://{}/{}/", self.bucket, self.prefix)
        };
        // Bucket names and our prefixes are URL-safe; fall back to the bare bucket otherwise.
        Url::parse(&text).unwrap_or_else(|_| {
            Url::parse("s3://invalid/").unwrap_or_else(|_| unreachable!("constant URL"))
        })
    }

    /// Bucket and key of an `s3://bucket/key` URL.
    pub fn split_url(url: &Url) -> Result<(String, String)> {
        let bucket = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| Error::BadUrl {
                url: url.to_string(),
                reason: "no bucket name".to_owned(),
            })?;
        let key = percent_decode(url.path().trim_start_matches('/'));
        Ok((bucket.to_owned(), key))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(hex) = std::str::from_utf8(hex)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FromStr for S3Url {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: &str| error::BadUrlSnafu { url: text, reason }.build();
        if !Self::is_s3(text) {
            return Err(bad("it does not start with s3://"));
        }
        let rest = &text[5..];
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket name"));
        }
        let valid_bucket = bucket.len() >= 3
            && bucket.len() <= 63
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(bad(&format!(
                "'{bucket}' is not a valid bucket name (3-63 lowercase letters, digits, '-', '.')"
            )));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|seg| seg == "." || seg == "..")
            || prefix.contains("//")
            || prefix.contains(['?', '#', '\\'])
        {
            return Err(bad(
                "the prefix has an empty, '.' or '..' segment or a ?, # or \\",
            ));
        }
        Ok(S3Url {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let u: S3Url = "s3://updates/prod/v1/".parse().unwrap();
        assert_eq!(u.bucket, "updates");
        assert_eq!(u.prefix, "prod/v1");
        assert_eq!(
            u.key("metadata/x/timestamp.json"),
            "prod/v1/metadata/x/timestamp.json"
        );
        assert_eq!(u.to_string(), "s3://updates/prod/v1");
        assert_eq!(u.dir_url().as_str(), "s3://updates/prod/v1/");
        let top: S3Url = "s3://updates".parse().unwrap();
        assert_eq!(top.prefix, "");
        assert_eq!(top.key("targets/a"), "targets/a");
        assert_eq!(
            top.join("metadata/v/a").dir_url().as_str(),
            "s3://updates/metadata/v/a/"
        );
    }

    #[test]
    fn refuses_what_is_not_a_location() {
        for bad in [
            "/srv/repo",
            "s3://",
            "s3:///x",
            "s3://Up_Dates/x",
            "s3://b/../x",
            "s3://bkt/a//b",
        ] {
            let err = bad.parse::<S3Url>().unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn splits_urls() {
        let url = Url::parse("s3://bkt/p/metadata/a%20b.json").unwrap();
        assert_eq!(
            S3Url::split_url(&url).unwrap(),
            ("bkt".to_owned(), "p/metadata/a b.json".to_owned())
        );
    }
}
