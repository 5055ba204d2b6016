//! Where TUF signing keys live: one seam for pubsys and repo-tools.
//!
//! A [`KeyUrl`] names a key: a file (a path or `file://PATH`), a key on a PKCS#11 token (an RFC
//! 7512 `pkcs11:` URI: an HSM, a smart card, SoftHSM), or an asymmetric key in AWS KMS
//! (`aws-kms://[PROFILE]/KEY-ID`, as tuftool spells it). [`LoadedKey::load`] reaches the key once,
//! up front: it reads the file, or logs in to the token and finds the object, or asks KMS for the
//! public key; so a wrong PIN, a missing object or an unreachable endpoint fails before a command
//! loads or writes anything. The public key always comes from the source itself (the token's
//! public object, KMS's `GetPublicKey`), so its TUF key ID is the one a root lists.
//!
//! A loaded key implements tough's [`Sign`] (through [`LoadedKey::signer`]) and hands out tough
//! [`KeySource`]s (through [`LoadedKey::key_source`]), so tough's repository editor and our own
//! root signing use every kind alike. Signatures made outside this process (token, KMS) are
//! checked against the public key before they are used: a service that signs with another key
//! or another padding fails loudly instead of producing metadata no client accepts.
//!
//! Supported algorithms (TUF's names): `ed25519`, `ecdsa-sha2-nistp256`, `rsassa-pss-sha256`;
//! KMS: RSA (2048–4096) with `RSASSA_PSS_SHA_256` and `ECC_NIST_P256` with `ECDSA_SHA_256`.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ED25519, RSA_PSS_2048_8192_SHA256, UnparsedPublicKey,
};
use snafu::ResultExt;
use std::fmt;
use std::sync::Arc;
use tough::async_trait;
use tough::key_source::KeySource;
use tough::schema::key::Key;
use tough::sign::Sign;

mod der;
mod error;
mod file;
#[cfg(feature = "aws-kms")]
mod kms;
#[cfg(feature = "pkcs11")]
mod pkcs11;
mod url;

pub use error::{BoxError, Error, ErrorClass, Pkcs11Cause, Result};
pub use url::{KeyUrl, KmsUri, PinSpec, Pkcs11Uri};

/// The environment variable naming the PKCS#11 module when a `pkcs11:` URI has no
/// `module-path=`.
pub const PKCS11_MODULE_ENV: &str = "PKCS11_MODULE_PATH";

/// The PKCS#11 module used when neither `module-path=` nor [`PKCS11_MODULE_ENV`] names one
/// (Debian's SoftHSM2).
pub const DEFAULT_PKCS11_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A key reached through its source, ready to sign.
#[derive(Clone)]
pub struct LoadedKey {
    url: KeyUrl,
    public: Key,
    key_id: String,
    signer: Arc<dyn Sign>,
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedKey")
            .field("url", &self.url)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Reaches the key: reads and parses a file; opens the PKCS#11 module, logs in and finds the
    /// private key and its public half; or asks KMS for the public key and its algorithms.
    pub async fn load(url: &KeyUrl) -> Result<LoadedKey> {
        let shown = url.to_string();
        let inner: Box<dyn Sign> = match url {
            KeyUrl::File(path) => return Self::load_file(path),
            #[cfg(feature = "pkcs11")]
            KeyUrl::Pkcs11(uri) => Box::new(pkcs11::load(&shown, uri)?),
            #[cfg(feature = "aws-kms")]
            KeyUrl::AwsKms(uri) => Box::new(kms::load(&shown, uri).await?),
            #[allow(unreachable_patterns)]
            _ => {
                return error::NotBuiltInSnafu {
                    url: shown,
                    backend: url.backend(),
                }
                .fail();
            }
        };
        Self::wrap(url.clone(), inner, true)
    }

    /// Reads and parses a key file (no I/O beyond the file: usable outside async code).
    pub fn load_file(path: &std::path::Path) -> Result<LoadedKey> {
        Self::wrap(KeyUrl::File(path.to_owned()), file::load(path)?, false)
    }

    /// `checked`: verify each signature before handing it out (signers outside this process).
    fn wrap(url: KeyUrl, inner: Box<dyn Sign>, checked: bool) -> Result<LoadedKey> {
        let shown = url.to_string();
        let public = inner.tuf_key();
        let key_id = key_id_hex(&public).context(error::KeyIdSnafu { url: &shown })?;
        Ok(LoadedKey {
            url,
            public: public.clone(),
            key_id,
            signer: Arc::new(Checked {
                url: shown,
                public,
                inner,
                checked,
            }),
        })
    }

    /// Where the key came from.
    pub fn url(&self) -> &KeyUrl {
        &self.url
    }

    /// The public key, as TUF lists it in a root.
    pub fn public(&self) -> &Key {
        &self.public
    }

    /// The TUF key ID (hex sha256 of the canonical public key).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The signer, for code that signs with tough's [`Sign`] trait. Its errors name the URL.
    pub fn signer(&self) -> Arc<dyn Sign> {
        Arc::clone(&self.signer)
    }

    /// A tough [`KeySource`] that hands out this already-loaded key (tough's editor asks for a
    /// key once per role; the token or KMS is not reached again for that).
    pub fn key_source(&self) -> Box<dyn KeySource> {
        Box::new(Loaded {
            url: self.url.to_string(),
            signer: self.signer(),
        })
    }

    /// Signs `msg`, with an error that names the key.
    pub async fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.signer
            .sign(msg, &rng)
            .await
            .map_err(|source| match source.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(source) => Error::Sign {
                    url: self.url.to_string(),
                    source,
                },
            })
    }
}

/// Reads only the public key of `url` (for adding a key to a root). A PKCS#11 token is logged in
/// to only if the URI gives a PIN; a key file may hold the private key or nothing else.
pub async fn public_key(url: &KeyUrl) -> Result<Key> {
    let shown = url.to_string();
    match url {
        KeyUrl::File(path) => Ok(file::load(path)?.tuf_key()),
        #[cfg(feature = "pkcs11")]
        KeyUrl::Pkcs11(uri) => pkcs11::public_key(&shown, uri),
        #[cfg(feature = "aws-kms")]
        KeyUrl::AwsKms(uri) => Ok(kms::load(&shown, uri).await?.tuf_key()),
        #[allow(unreachable_patterns)]
        _ => error::NotBuiltInSnafu {
            url: shown,
            backend: url.backend(),
        }
        .fail(),
    }
}

/// The hex TUF key ID of a public key.
pub fn key_id_hex(key: &Key) -> std::result::Result<String, Box<tough::schema::Error>> {
    key.key_id().map(|id| hex::encode(&*id)).map_err(Box::new)
}

/// Whether `signature` over `msg` verifies with `key`, by the algorithms tough verifies with.
pub fn verifies(key: &Key, msg: &[u8], signature: &[u8]) -> bool {
    match key {
        Key::Ecdsa { keyval, .. } | Key::EcdsaOld { keyval, .. } => {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &*keyval.public)
                .verify(msg, signature)
                .is_ok()
        }
        Key::Ed25519 { keyval, .. } => UnparsedPublicKey::new(&ED25519, &*keyval.public)
            .verify(msg, signature)
            .is_ok(),
        Key::Rsa { keyval, .. } => {
            UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, &*keyval.public)
                .verify(msg, signature)
                .is_ok()
        }
    }
}

/// A signer whose errors name its URL and whose remote signatures are checked before use.
struct Checked {
    url: String,
    public: Key,
    inner: Box<dyn Sign>,
    checked: bool,
}

#[async_trait]
impl Sign for Checked {
    fn tuf_key(&self) -> Key {
        self.public.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        rng: &(dyn aws_lc_rs::rand::SecureRandom + Sync),
    ) -> std::result::Result<Vec<u8>, BoxError> {
        let sig = self.inner.sign(msg, rng).await.map_err(|source| {
            // Our own backends already name the URL; wrap anything else.
            if source.is::<Error>() {
                source
            } else {
                Box::new(Error::Sign {
                    url: self.url.clone(),
                    source,
                })
            }
        })?;
        if self.checked && !verifies(&self.public, msg, &sig) {
            return Err(Box::new(Error::BadSignature {
                url: self.url.clone(),
            }));
        }
        Ok(sig)
    }
}

/// tough's [`KeySource`] over a loaded key.
struct Loaded {
    url: String,
    signer: Arc<dyn Sign>,
}

impl fmt::Debug for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySource({})", self.url)
    }
}

#[async_trait]
impl KeySource for Loaded {
    async fn as_sign(&self) -> std::result::Result<Box<dyn Sign>, BoxError> {
        Ok(Box::new(Shared(Arc::clone(&self.signer))))
    }

    async fn write(&self, _value: &str, _key_id_hex: &str) -> std::result::Result<(), BoxError> {
        // Keys are never written back: generation happens elsewhere (repo-tools root gen-key, the
        // token's own tools, KMS).
        Err(format!(
            "{}: writing keys back to a key source is not supported",
            self.url
        )
        .into())
    }
}

struct Shared(Arc<dyn Sign>);

#[async_trait]
impl Sign for Shared {
    fn tuf_key(&self) -> Key {
        self.0.tuf_key()
    }

    async fn sign(
        &self,
        msg: &[u8],
        rng: &(dyn aws_lc_rs::rand::SecureRandom + Sync),
    ) -> std::result::Result<Vec<u8>, BoxError> {
        self.0.sign(msg, rng).await
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

    #[tokio::test]
    async fn file_keys_load_sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let rng = SystemRandom::new();
        let ed = Ed25519KeyPair::generate_pkcs8v1(&rng).unwrap();
        let ec = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        for (name, bytes) in [("ed.der", ed.as_ref()), ("ec.der", ec.as_ref())] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let url: KeyUrl = format!("file://{}", path.display()).parse().unwrap();
            let key = LoadedKey::load(&url).await.unwrap();
            let sig = key.sign(b"message").await.unwrap();
            assert!(verifies(key.public(), b"message", &sig), "{name}");
            assert!(!verifies(key.public(), b"massage", &sig), "{name}");
            assert_eq!(public_key(&url).await.unwrap(), *key.public());
            // tough's KeySource hands out the same key.
            let from_source = key.key_source().as_sign().await.unwrap().tuf_key();
            assert_eq!(key_id_hex(&from_source).unwrap(), key.key_id());
        }
    }

    #[tokio::test]
    async fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.der");
        let err = LoadedKey::load(&KeyUrl::File(missing)).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::File);
        assert!(err.to_string().contains("nope.der"), "{err}");
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = LoadedKey::load(&KeyUrl::File(bad)).await.unwrap_err();
        assert!(matches!(err, Error::FileFormat { .. }), "{err:?}");
        assert!(err.to_string().contains("bad.pem"), "{err}");
    }
}
