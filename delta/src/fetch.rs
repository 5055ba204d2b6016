//! Getting byte ranges of the chunk file: over HTTP Range requests, or from a local file (a
//! mirror or a USB stick). Every byte fetched is checked by chunk hash by the executor; a fetcher
//! only has to return exactly the bytes asked for, or an error.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::future::Future;
use std::path::{Path, PathBuf};

/// A source of chunk file ranges.
pub trait Fetch {
    /// Bytes `start..end` of the chunk file, exactly `end - start` of them.
    fn fetch(&mut self, start: u64, end: u64) -> impl Future<Output = Result<Vec<u8>>> + Send;
}

/// A chunk file on the local file system.
#[derive(Debug)]
pub struct FileFetch {
    path: PathBuf,
    file: std::fs::File,
}

impl FileFetch {
    /// Opens the chunk file at `path`.
    pub fn open(path: &Path) -> Result<FileFetch> {
        let file = std::fs::File::open(path).context(error::OpenSnafu { path })?;
        Ok(FileFetch {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl Fetch for FileFetch {
    fn fetch(&mut self, start: u64, end: u64) -> impl Future<Output = Result<Vec<u8>>> + Send {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; (end - start) as usize];
        let mut got = 0usize;
        let result = loop {
            if got == buf.len() {
                break Ok(buf);
            }
            match self.file.read_at(&mut buf[got..], start + got as u64) {
                Ok(0) => {
                    break Err(error::Error::ShortRange {
                        what: self.path.display().to_string(),
                        start,
                        end,
                        got: got as u64,
                    });
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    break Err(error::Error::Read {
                        what: self.path.display().to_string(),
                        source,
                    });
                }
            }
        };
        std::future::ready(result)
    }
}

/// A chunk file behind a URL, fetched with `Range: bytes=a-b` requests. A server that answers
/// anything but 206 with the exact range gives [`error::Error::RangeRefused`] or
/// [`error::Error::ShortRange`]: the caller falls back to the full artifact.
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: reqwest::Client,
    url: url::Url,
    requests: u64,
    bytes: u64,
}

impl HttpFetch {
    /// Fetches from `url` with `client` (the caller's, with its proxy and timeouts).
    pub fn new(client: reqwest::Client, url: url::Url) -> HttpFetch {
        HttpFetch {
            client,
            url,
            requests: 0,
            bytes: 0,
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the server honours Range requests (asks for the first byte). Call before planning
    /// a delta: `false` means fall back to the full artifact.
    pub async fn supports_ranges(&mut self) -> Result<bool> {
        match self.fetch(0, 1).await {
            Ok(_) => Ok(true),
            Err(error::Error::RangeRefused { .. } | error::Error::ShortRange { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn get(&mut self, start: u64, end: u64) -> Result<Vec<u8>> {
        let url = self.url.to_string();
        let response = self
            .client
            .get(self.url.clone())
            .header(reqwest::header::RANGE, format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .context(error::HttpSnafu {
                url: &url,
                start,
                end,
            })?;
        self.requests += 1;
        let status = response.status().as_u16();
        if status != 206 {
            return error::RangeRefusedSnafu {
                url,
                start,
                end,
                status,
            }
            .fail();
        }
        let content_range = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let want = format!("bytes {start}-{}/", end - 1);
        let body = response.bytes().await.context(error::HttpSnafu {
            url: &url,
            start,
            end,
        })?;
        self.bytes += body.len() as u64;
        // A 206 for another range than asked (the file is shorter than the index says) counts
        // as short, like a body cut short.
        if body.len() as u64 != end - start || !content_range.starts_with(&want) {
            return error::ShortRangeSnafu {
                what: url,
                start,
                end,
                got: body.len() as u64,
            }
            .fail();
        }
        Ok(body.to_vec())
    }
}

impl Fetch for HttpFetch {
    fn fetch(&mut self, start: u64, end: u64) -> impl Future<Output = Result<Vec<u8>>> + Send {
        self.get(start, end)
    }
}
