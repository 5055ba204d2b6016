//! The crate's one error type. Every variant names the key by its URL (PIN redacted).

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed cause from an SDK or a signer.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The cause of a PKCS#11 failure (cryptoki's error; uninhabited in a build without PKCS#11).
#[cfg(feature = "pkcs11")]
pub type Pkcs11Cause = cryptoki::error::Error;
/// The cause of a PKCS#11 failure (cryptoki's error; uninhabited in a build without PKCS#11).
#[cfg(not(feature = "pkcs11"))]
pub type Pkcs11Cause = std::convert::Infallible;

/// What kind of failure, for callers that map errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The key location is malformed or names a backend this build lacks.
    Url,
    /// A key file is missing, unreadable or in a format tough does not read.
    File,
    /// The token or key service answered, and refused: wrong PIN, no such token or object,
    /// access denied, a key type TUF cannot use.
    Refused,
    /// The key service could not be reached or failed: the PKCS#11 module did not load, the KMS
    /// endpoint did not answer. Retrying later may help.
    Unavailable,
}

/// Everything that can go wrong finding, loading or using a key.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    // ---- URLs ----
    #[snafu(display("invalid key location '{url}': {reason}"))]
    BadUrl { url: String, reason: String },

    #[snafu(display(
        "unsupported key source '{url}': scheme '{scheme}' is not one of file://, pkcs11: or aws-kms://"
    ))]
    UnsupportedScheme { url: String, scheme: String },

    #[snafu(display("key source '{url}' needs {backend} support, which this build leaves out"))]
    NotBuiltIn { url: String, backend: &'static str },

    // ---- files ----
    #[snafu(display("cannot read key file {}", path.display()))]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display(
        "key file {} is not ed25519/ECDSA P-256 PKCS#8 DER or RSA PEM",
        path.display()
    ))]
    FileFormat {
        path: PathBuf,
        source: Box<tough::error::Error>,
    },

    // ---- PKCS#11 ----
    #[snafu(display("{url}: cannot load PKCS#11 module {}", module.display()))]
    Pkcs11Module {
        url: String,
        module: PathBuf,
        source: Pkcs11Cause,
    },

    #[snafu(display("{url}: PKCS#11 {op} failed"))]
    Pkcs11 {
        url: String,
        op: &'static str,
        source: Pkcs11Cause,
    },

    #[snafu(display("{url}: {reason}"))]
    TokenNotFound { url: String, reason: String },

    #[snafu(display(
        "{url}: the token requires a login and the URI gives no PIN (add pin-source=/path/to/pin-file or pin-value=)"
    ))]
    PinMissing { url: String },

    #[snafu(display("{url}: cannot read the PIN from {}", path.display()))]
    PinSource {
        url: String,
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("{url}: login refused: {reason}"))]
    Login { url: String, reason: String },

    #[snafu(display("{url}: no {what} matches on the token"))]
    ObjectNotFound { url: String, what: &'static str },

    #[snafu(display("{url}: {count} private keys match; name one with object= (label) or id="))]
    AmbiguousObject { url: String, count: usize },

    #[snafu(display("{url}: {reason}"))]
    UnsupportedKey { url: String, reason: String },

    // ---- AWS KMS ----
    #[snafu(display("{url}: KMS {op} failed: {message}"))]
    Kms {
        url: String,
        op: &'static str,
        /// The SDK's error, rendered with its causes.
        message: String,
        /// Whether it was the endpoint that failed (dispatch, timeout, 5xx), not the key.
        unavailable: bool,
    },

    // ---- all sources ----
    #[snafu(display("{url}: signing failed"))]
    Sign { url: String, source: BoxError },

    #[snafu(display(
        "{url}: the signature returned does not verify with the key's public key; refusing to use it"
    ))]
    BadSignature { url: String },

    #[snafu(display("{url}: cannot compute the key ID"))]
    KeyId {
        url: String,
        source: Box<tough::schema::Error>,
    },
}

impl Error {
    /// The class of failure.
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            BadUrl { .. } | UnsupportedScheme { .. } | NotBuiltIn { .. } => ErrorClass::Url,
            ReadFile { .. } | FileFormat { .. } => ErrorClass::File,
            Pkcs11Module { .. } => ErrorClass::Unavailable,
            Kms { unavailable, .. } => {
                if *unavailable {
                    ErrorClass::Unavailable
                } else {
                    ErrorClass::Refused
                }
            }
            Pkcs11 { .. }
            | TokenNotFound { .. }
            | PinMissing { .. }
            | PinSource { .. }
            | Login { .. }
            | ObjectNotFound { .. }
            | AmbiguousObject { .. }
            | UnsupportedKey { .. }
            | Sign { .. }
            | BadSignature { .. }
            | KeyId { .. } => ErrorClass::Refused,
        }
    }

    /// A suggestion for the operator, when there is a useful one.
    pub fn hint(&self) -> Option<&'static str> {
        use Error::*;
        Some(match self {
            UnsupportedScheme { .. } | BadUrl { .. } => {
                "key locations: PATH, file:///PATH, pkcs11:token=T;object=K?pin-source=FILE, aws-kms://[PROFILE]/KEY-ID"
            }
            FileFormat { .. } => {
                "ed25519/ECDSA keys must be PKCS#8 DER, RSA keys PEM (`repo-tools root gen-key` writes them)"
            }
            Pkcs11Module { .. } => {
                "give module-path= in the URI or set PKCS11_MODULE_PATH (default /usr/lib/softhsm/libsofthsm2.so)"
            }
            TokenNotFound { .. } | ObjectNotFound { .. } => {
                "list what the token holds with `pkcs11-tool --module MODULE --list-token-slots` and `--list-objects --login`"
            }
            Kms {
                unavailable: true, ..
            } => {
                "check the endpoint (AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL), the region and the network; nothing was written"
            }
            Kms { .. } => "check the key ID or alias, the profile's credentials and the key policy",
            _ => return None,
        })
    }
}
