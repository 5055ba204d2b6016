//! Base URLs: where a repository's metadata and targets are read from.
//!
//! Both tools read `file://`, `http(s)://` and `s3://` base URLs (the last through
//! [`repo_store::S3Transport`]). A base URL must end with `/`, or joining a file name replaces
//! its last path segment (`…/x86_64` + `timestamp.json` = `…/timestamp.json`): every URL that
//! enters this crate goes through [`dir_url`].

use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt};
use std::path::Path;
use url::Url;

/// The URL with a trailing `/` on its path, so that joining keeps the last segment.
pub fn dir_url(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// A `file://` directory URL (trailing `/`) for a local directory; a relative path is taken
/// from the current directory. The directory need not exist yet.
pub fn dir_path_url(path: &Path) -> Result<Url> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context(error::CurrentDirSnafu { path })?
            .join(path)
    };
    Url::from_directory_path(&abs)
        .ok()
        .context(error::PathUrlSnafu { path })
}

/// Where a repository is read from: its metadata and targets base URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Metadata base URL (`…/<variant>/<arch>/`), with a trailing `/`.
    pub metadata_url: Url,
    /// Targets base URL, with a trailing `/`.
    pub targets_url: Url,
}

impl Source {
    /// A source from two base URLs (`file://`, `http(s)://`, `s3://`); a trailing `/` is added
    /// where missing.
    pub fn new(metadata_url: Url, targets_url: Url) -> Self {
        Source {
            metadata_url: dir_url(metadata_url),
            targets_url: dir_url(targets_url),
        }
    }

    /// A source from two local directories (`file://` URLs).
    pub fn from_dirs(metadata_dir: &Path, targets_dir: &Path) -> Result<Self> {
        Ok(Source {
            metadata_url: dir_path_url(metadata_dir)?,
            targets_url: dir_path_url(targets_dir)?,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn urls_get_a_trailing_slash() {
        let s = Source::new(
            "http://h/m/v/x86_64".parse().unwrap(),
            "file:///t/".parse().unwrap(),
        );
        assert_eq!(s.metadata_url.as_str(), "http://h/m/v/x86_64/");
        assert_eq!(s.targets_url.as_str(), "file:///t/");
        assert_eq!(
            s.metadata_url.join("timestamp.json").unwrap().as_str(),
            "http://h/m/v/x86_64/timestamp.json"
        );
        let s3 = Source::new(
            "s3://bkt/p/metadata/v/a".parse().unwrap(),
            "s3://bkt/p/targets".parse().unwrap(),
        );
        assert_eq!(s3.metadata_url.as_str(), "s3://bkt/p/metadata/v/a/");
        assert_eq!(s3.targets_url.as_str(), "s3://bkt/p/targets/");
    }

    #[test]
    fn directories_become_file_urls() {
        let u = dir_path_url(Path::new("/srv/repo/metadata")).unwrap();
        assert_eq!(u.as_str(), "file:///srv/repo/metadata/");
        let rel = dir_path_url(Path::new("repo/targets")).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            rel,
            Url::from_directory_path(cwd.join("repo/targets")).unwrap()
        );
        assert!(rel.as_str().ends_with("/repo/targets/"));
        let s = Source::from_dirs(Path::new("/m"), Path::new("/t")).unwrap();
        assert_eq!(
            (s.metadata_url.as_str(), s.targets_url.as_str()),
            ("file:///m/", "file:///t/")
        );
    }
}
