//! Key files: the formats tough reads (ed25519 and ECDSA P-256 as PKCS#8 DER, RSA as PEM).

use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::Path;
use tough::sign::Sign;

/// Reads and parses a private key file.
pub(crate) fn load(path: &Path) -> Result<Box<dyn Sign>> {
    let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
    let pair = tough::sign::parse_keypair(&bytes)
        .map_err(Box::new)
        .context(error::FileFormatSnafu { path })?;
    Ok(Box::new(pair))
}
