//! Asymmetric keys in AWS KMS, through the AWS SDK.
//!
//! Configuration comes from the standard chain: the URL's profile (or the default one), the
//! region (`AWS_REGION`, the profile), credentials, and the endpoint (`AWS_ENDPOINT_URL_KMS` or
//! `AWS_ENDPOINT_URL`, e.g. a local test server). `GetPublicKey` gives the public key and its
//! algorithms; `Sign` signs. Messages up to 4096 bytes (KMS's limit for raw messages) are sent
//! whole (`MessageType=RAW`); longer ones as their SHA-256 (`MessageType=DIGEST`), which gives the
//! same signature. (tough-kms 0.16 is not used: it signs RSA keys only, and only by digest.)

use crate::error::{self, Result};
use aws_config::BehaviorVersion;
use aws_lc_rs::digest::{SHA256, digest};
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyUsageType, MessageType, SigningAlgorithmSpec};
use snafu::{OptionExt, ensure};
use std::collections::HashMap;
use tough::async_trait;
use tough::schema::decoded::{Decoded, EcdsaFlex, RsaPem};
use tough::schema::key::{EcdsaKey, EcdsaScheme, Key, RsaKey, RsaScheme};
use tough::sign::Sign;

/// The largest message KMS signs whole.
const RAW_LIMIT: usize = 4096;

/// A KMS key whose public key has been read.
pub(crate) struct KmsKey {
    url: String,
    client: Client,
    key_id: String,
    algorithm: SigningAlgorithmSpec,
    /// RSA modulus bytes (KMS may return a signature shorter than the modulus).
    modulus_bytes: Option<usize>,
    public: Key,
}

async fn client(uri: &crate::KmsUri) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &uri.profile {
        loader = loader.profile_name(profile);
    }
    Client::new(&loader.load().await)
}

/// Turns an SDK error into ours: whether the endpoint failed (no connection, timeout, 5xx) or the
/// service refused (no such key, access denied, disabled key).
fn kms_error<E, R>(url: &str, op: &'static str, err: SdkError<E, R>) -> error::Error
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
    SdkError<E, R>: std::error::Error,
{
    let unavailable = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => false,
        _ => true,
    };
    error::Error::Kms {
        url: url.to_owned(),
        op,
        message: DisplayErrorContext(&err).to_string(),
        unavailable,
    }
}

/// Asks KMS for the key's public half and checks TUF can use it.
pub(crate) async fn load(url: &str, uri: &crate::KmsUri) -> Result<KmsKey> {
    let client = client(uri).await;
    let resp = client
        .get_public_key()
        .key_id(&uri.key_id)
        .send()
        .await
        .map_err(|e| kms_error(url, "GetPublicKey", e))?;
    let unsupported = |reason: String| error::UnsupportedKeySnafu { url, reason };
    ensure!(
        resp.key_usage() == Some(&KeyUsageType::SignVerify),
        unsupported(format!(
            "key usage is {:?}, not SIGN_VERIFY",
            resp.key_usage()
        ))
    );
    let spki = resp
        .public_key()
        .with_context(|| unsupported("GetPublicKey returned no public key".into()))?
        .as_ref()
        .to_vec();
    let pem_text = pem::encode(&pem::Pem::new("PUBLIC KEY", spki));
    // moto (and older KMS answers) give only the deprecated CustomerMasterKeySpec.
    #[allow(deprecated)]
    let spec = resp
        .key_spec()
        .map(|s| s.as_str().to_owned())
        .or_else(|| {
            resp.customer_master_key_spec()
                .map(|s| s.as_str().to_owned())
        })
        .with_context(|| unsupported("GetPublicKey returned no key spec".into()))?;
    let algorithms = resp.signing_algorithms();
    let extra = HashMap::new;
    let (algorithm, modulus_bytes, public) = match spec.as_str() {
        "RSA_2048" | "RSA_3072" | "RSA_4096" => {
            let decoded: Decoded<RsaPem> = pem_text
                .parse()
                .ok()
                .with_context(|| unsupported("cannot parse the RSA public key".into()))?;
            let bits: usize = spec["RSA_".len()..].parse().unwrap_or(2048);
            (
                SigningAlgorithmSpec::RsassaPssSha256,
                Some(bits / 8),
                Key::Rsa {
                    // Re-encoded so the PEM text (and so the key ID) is the one tough writes.
                    keyval: RsaKey {
                        public: decoded.to_vec().into(),
                        _extra: extra(),
                    },
                    scheme: RsaScheme::RsassaPssSha256,
                    _extra: extra(),
                },
            )
        }
        "ECC_NIST_P256" => {
            let decoded: Decoded<EcdsaFlex> = pem_text
                .parse()
                .ok()
                .with_context(|| unsupported("cannot parse the P-256 public key".into()))?;
            (
                SigningAlgorithmSpec::EcdsaSha256,
                None,
                Key::Ecdsa {
                    keyval: EcdsaKey {
                        public: decoded.to_vec().into(),
                        _extra: extra(),
                    },
                    scheme: EcdsaScheme::EcdsaSha2Nistp256,
                    _extra: extra(),
                },
            )
        }
        other => {
            return unsupported(format!(
                "key spec {other}: TUF signs with RSA (RSASSA_PSS_SHA_256) or ECC_NIST_P256 keys"
            ))
            .fail();
        }
    };
    ensure!(
        algorithms.contains(&algorithm),
        unsupported(format!(
            "the key does not offer {} (it offers {:?})",
            algorithm.as_str(),
            algorithms.iter().map(|a| a.as_str()).collect::<Vec<_>>()
        ))
    );
    Ok(KmsKey {
        url: url.to_owned(),
        client,
        key_id: uri.key_id.clone(),
        algorithm,
        modulus_bytes,
        public,
    })
}

impl KmsKey {
    async fn sign_message(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let (message, kind) = if msg.len() <= RAW_LIMIT {
            (msg.to_vec(), MessageType::Raw)
        } else {
            (digest(&SHA256, msg).as_ref().to_vec(), MessageType::Digest)
        };
        let resp = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(kind)
            .signing_algorithm(self.algorithm.clone())
            .send()
            .await
            .map_err(|e| kms_error(&self.url, "Sign", e))?;
        let mut sig = resp
            .signature()
            .context(error::UnsupportedKeySnafu {
                url: &self.url,
                reason: "Sign returned no signature",
            })?
            .as_ref()
            .to_vec();
        // A signature shorter than the modulus is valid, but aws-lc-rs (tough) wants it
        // left-padded to the modulus length.
        if let Some(len) = self.modulus_bytes
            && sig.len() < len
        {
            let mut padded = vec![0; len - sig.len()];
            padded.append(&mut sig);
            sig = padded;
        }
        Ok(sig)
    }
}

#[async_trait]
impl Sign for KmsKey {
    fn tuf_key(&self) -> Key {
        self.public.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        _rng: &(dyn aws_lc_rs::rand::SecureRandom + Sync),
    ) -> std::result::Result<Vec<u8>, crate::BoxError> {
        self.sign_message(msg)
            .await
            .map_err(|e| Box::new(e) as crate::BoxError)
    }
}
