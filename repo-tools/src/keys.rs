//! Signing keys: generating them in the formats tough reads, reaching keys to sign with (files,
//! PKCS#11 tokens and AWS KMS, through the `key-source` crate shared with pubsys), and reading
//! public keys to add to a root.
//!
//! Formats (what `tough::sign::parse_keypair` accepts): ed25519 and ECDSA P-256 as PKCS#8 DER,
//! RSA as PEM (PKCS#8). Public keys are accepted as a private key file (its public half), a PEM
//! SubjectPublicKeyInfo (RSA, ECDSA), a hex ed25519 key, or a TUF key object in JSON.

use crate::error::{self, Result};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use key_source::{KeyUrl, LoadedKey};
use serde::Serialize;
use snafu::{OptionExt, ResultExt};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::sign::{Sign, parse_keypair};

/// The kind of key to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// Ed25519 (PKCS#8 DER file). The default.
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256 (PKCS#8 DER file).
    EcdsaP256,
    /// RSA, signing with RSASSA-PSS-SHA256 (PEM PKCS#8 file).
    Rsa,
}

/// RSA modulus sizes offered for generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum RsaBits {
    /// 2048 bits.
    #[value(name = "2048")]
    B2048,
    /// 3072 bits.
    #[value(name = "3072")]
    B3072,
    /// 4096 bits.
    #[value(name = "4096")]
    B4096,
}

/// A freshly generated key.
#[derive(Debug)]
pub struct GeneratedKey {
    /// The private key file contents, in a format tough reads.
    pub private: Vec<u8>,
    /// The public key as TUF describes it.
    pub public: Key,
    /// The TUF key ID (sha256 of the canonical public key object).
    pub key_id: String,
}

/// Generates a key pair.
pub fn generate(kind: KeyType, bits: RsaBits) -> Result<GeneratedKey> {
    let rng = SystemRandom::new();
    let private = match kind {
        KeyType::Ed25519 => Ed25519KeyPair::generate_pkcs8v1(&rng)
            .ok()
            .context(error::GenerateKeySnafu { kind })?
            .as_ref()
            .to_vec(),
        KeyType::EcdsaP256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .ok()
            .context(error::GenerateKeySnafu { kind })?
            .as_ref()
            .to_vec(),
        KeyType::Rsa => {
            let size = match bits {
                RsaBits::B2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                RsaBits::B3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                RsaBits::B4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
            };
            let pair = aws_lc_rs::rsa::KeyPair::generate(size)
                .ok()
                .context(error::GenerateKeySnafu { kind })?;
            let der: Pkcs8V1Der<'_> = pair
                .as_der()
                .ok()
                .context(error::GenerateKeySnafu { kind })?;
            pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec())).into_bytes()
        }
    };
    let signer = parse_keypair(&private)
        .ok()
        .context(error::GenerateKeySnafu { kind })?;
    let public = signer.tuf_key();
    let key_id = key_id_hex(&public)?;
    Ok(GeneratedKey {
        private,
        public,
        key_id,
    })
}

/// The hex key ID of a public key.
pub fn key_id_hex(key: &Key) -> Result<String> {
    Ok(hex::encode(
        key.key_id().map_err(Box::new).context(error::KeyIdSnafu)?,
    ))
}

/// The key ID as tough's decoded type.
pub(crate) fn key_id(key: &Key) -> Result<Decoded<Hex>> {
    key.key_id().map_err(Box::new).context(error::KeyIdSnafu)
}

/// The public key string TUF stores in `keyval.public` (hex for ed25519, PEM for RSA/ECDSA).
/// [`load_public`] accepts it back.
pub fn public_key_text(key: &Key) -> String {
    serde_json::to_value(key)
        .ok()
        .and_then(|v| v["keyval"]["public"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A short name for the key's algorithm.
pub fn key_type_name(key: &Key) -> &'static str {
    match key {
        Key::Rsa { .. } => "rsa",
        Key::Ed25519 { .. } => "ed25519",
        Key::Ecdsa { .. } | Key::EcdsaOld { .. } => "ecdsa-p256",
    }
}

/// A key ready to sign: a key file, a PKCS#11 token key or a KMS key (see the `key-source`
/// crate, shared with pubsys).
pub struct Signer {
    /// Where it came from (PIN redacted when displayed).
    pub url: KeyUrl,
    /// The signer (signatures from a token or KMS are checked before use).
    pub key: Arc<dyn Sign>,
    /// Its public half, read from the source itself.
    pub public: Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Our error for a key source's: file problems keep their own variants (`ReadFile`,
/// `ParsePrivateKey`).
pub(crate) fn key_error(source: key_source::Error) -> crate::Error {
    match source {
        key_source::Error::ReadFile { path, source } => crate::Error::ReadFile { path, source },
        key_source::Error::FileFormat { path, source } => {
            crate::Error::ParsePrivateKey { path, source }
        }
        other => crate::Error::KeySource { source: other },
    }
}

impl From<LoadedKey> for Signer {
    fn from(k: LoadedKey) -> Self {
        Signer {
            url: k.url().clone(),
            key: k.signer(),
            public: k.public().clone(),
        }
    }
}

/// Loads a private key file.
pub fn load_signer(path: &Path) -> Result<Signer> {
    Ok(LoadedKey::load_file(path).map_err(key_error)?.into())
}

/// Reaches a key by its location: a path, `file://PATH`, `pkcs11:…` or `aws-kms://…`. A token is
/// logged in to and KMS asked for the public key now, so a wrong PIN or an unreachable endpoint
/// fails before anything is written.
pub async fn load_signer_url(url: &KeyUrl) -> Result<Signer> {
    Ok(LoadedKey::load(url).await.map_err(key_error)?.into())
}

/// True if `arg` is a key URL rather than a path or key text.
fn is_key_url(arg: &str) -> bool {
    arg.starts_with("pkcs11:") || arg.contains("://")
}

/// Reads a public key from `arg`: a key URL (`file://`, `pkcs11:`, `aws-kms://`: the public key
/// is read from the token or KMS), a file holding a private key, a PEM public key, a hex ed25519
/// key or a TUF key JSON object; or the key text itself.
pub async fn load_public(arg: &str) -> Result<Key> {
    let path_buf;
    let path = if is_key_url(arg) {
        match arg.parse::<KeyUrl>()? {
            KeyUrl::File(p) => {
                path_buf = p;
                path_buf.as_path()
            }
            url => return Ok(key_source::public_key(&url).await?),
        }
    } else {
        Path::new(arg)
    };
    if path.is_file() {
        let bytes = crate::fsio::read(path)?;
        if let Ok(pair) = parse_keypair(&bytes) {
            return Ok(pair.tuf_key());
        }
        let text = String::from_utf8_lossy(&bytes);
        return parse_public_text(text.trim()).context(error::ParsePublicKeySnafu {
            origin: path.display().to_string(),
        });
    }
    if is_key_url(arg) {
        // A file:// URL whose file is missing: say so rather than parsing the URL as key text.
        crate::fsio::read(path)?;
    }
    parse_public_text(arg.trim()).context(error::ParsePublicKeySnafu {
        origin: "the --key argument (not an existing file either)".to_owned(),
    })
}

fn parse_public_text(text: &str) -> Option<Key> {
    if text.starts_with('{') {
        return serde_json::from_str::<Key>(text).ok();
    }
    Key::from_str(text).ok()
}

#[cfg(test)]
mod test {
    use super::*;

    #[tokio::test]
    async fn every_generated_type_signs_and_reloads() {
        for kind in [KeyType::Ed25519, KeyType::EcdsaP256, KeyType::Rsa] {
            let g = generate(kind, RsaBits::B2048).unwrap();
            let pair = parse_keypair(&g.private).unwrap();
            assert_eq!(pair.tuf_key(), g.public);
            let rng = SystemRandom::new();
            let sig = pair.sign(b"message", &rng).await.unwrap();
            assert!(!sig.is_empty());
            // The public text round-trips through the add-key parser.
            let back = parse_public_text(&public_key_text(&g.public)).unwrap();
            assert_eq!(key_id_hex(&back).unwrap(), g.key_id, "{kind:?}");
        }
    }
}
