//! The key URL grammar, the same for every command of pubsys and repo-tools:
//!
//! - a path, or `file://PATH` (`file:///abs/key.der`, `file://relative/key.pem`);
//! - `pkcs11:` URIs (RFC 7512): path attributes `token`, `manufacturer`, `model`, `serial`,
//!   `slot-id`, `object`, `id`, `type`; query attributes `pin-value`, `pin-source`, `module-path`;
//! - `aws-kms://[PROFILE]/KEY` as tuftool spells it: the host is the AWS profile (empty: the
//!   default chain), the path without its first `/` is the key ID, ARN or `alias/NAME`.
//!
//! [`KeyUrl`]'s `Display` never shows a PIN: `pin-value` is printed as `***`.

use crate::error::{self, Result};
use snafu::{OptionExt, ensure};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Where a signing key lives.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUrl {
    /// A key file on local disk: ed25519/ECDSA P-256 PKCS#8 DER, or RSA PEM.
    File(PathBuf),
    /// A key on a PKCS#11 token (an HSM, a smart card, SoftHSM).
    Pkcs11(Pkcs11Uri),
    /// An asymmetric key in AWS KMS.
    AwsKms(KmsUri),
}

// Debug goes through Display so a PIN never reaches a log line.
impl fmt::Debug for KeyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyUrl({self})")
    }
}

impl fmt::Display for KeyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUrl::File(p) => write!(f, "{}", p.display()),
            KeyUrl::Pkcs11(u) => f.write_str(&u.redacted),
            KeyUrl::AwsKms(u) => write!(
                f,
                "aws-kms://{}/{}",
                u.profile.as_deref().unwrap_or_default(),
                u.key_id
            ),
        }
    }
}

impl FromStr for KeyUrl {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.starts_with("pkcs11:") {
            return Pkcs11Uri::parse(s).map(KeyUrl::Pkcs11);
        }
        if let Some(rest) = s.strip_prefix("aws-kms://") {
            return KmsUri::parse(s, rest).map(KeyUrl::AwsKms);
        }
        if let Some(rest) = s.strip_prefix("file://") {
            ensure!(
                !rest.is_empty(),
                error::BadUrlSnafu {
                    url: s,
                    reason: "no path after file://",
                }
            );
            let path = percent_decode(rest).context(error::BadUrlSnafu {
                url: s,
                reason: "bad %-escape",
            })?;
            let path = String::from_utf8(path).ok().context(error::BadUrlSnafu {
                url: s,
                reason: "the path is not UTF-8",
            })?;
            return Ok(KeyUrl::File(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://")
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return error::UnsupportedSchemeSnafu {
                url: s,
                scheme: scheme.to_owned(),
            }
            .fail();
        }
        ensure!(
            !s.is_empty(),
            error::BadUrlSnafu {
                url: s,
                reason: "empty key location",
            }
        );
        Ok(KeyUrl::File(PathBuf::from(s)))
    }
}

impl KeyUrl {
    /// A short name of the backend: `file`, `pkcs11` or `aws-kms`.
    pub fn backend(&self) -> &'static str {
        match self {
            KeyUrl::File(_) => "file",
            KeyUrl::Pkcs11(_) => "pkcs11",
            KeyUrl::AwsKms(_) => "aws-kms",
        }
    }
}

/// How the token's user PIN is given.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSpec {
    /// `pin-value=`: in the URI itself (convenient, but visible in process lists).
    Value(String),
    /// `pin-source=`: a file holding the PIN (`file:` URI or path); one trailing newline is
    /// ignored.
    Source(PathBuf),
}

impl fmt::Debug for PinSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSpec::Value(_) => f.write_str("Value(***)"),
            PinSpec::Source(p) => write!(f, "Source({})", p.display()),
        }
    }
}

/// A parsed RFC 7512 `pkcs11:` URI (the attributes this crate understands).
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// `token=`: the token label.
    pub token: Option<String>,
    /// `manufacturer=`: the token's manufacturer ID.
    pub manufacturer: Option<String>,
    /// `model=`: the token's model.
    pub model: Option<String>,
    /// `serial=`: the token's serial number.
    pub serial: Option<String>,
    /// `slot-id=`: the slot number.
    pub slot_id: Option<u64>,
    /// `object=`: the key's label (`CKA_LABEL`).
    pub object: Option<String>,
    /// `id=`: the key's `CKA_ID` bytes (percent-encoded in the URI, e.g. `id=%01%02`).
    pub id: Option<Vec<u8>>,
    /// `pin-value=` or `pin-source=`.
    pub pin: Option<PinSpec>,
    /// `module-path=`: the PKCS#11 module (shared library).
    pub module_path: Option<PathBuf>,
    /// The URI as given, with any PIN replaced by `***`.
    pub redacted: String,
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pkcs11Uri({})", self.redacted)
    }
}

impl Pkcs11Uri {
    fn parse(s: &str) -> Result<Pkcs11Uri> {
        let body = &s["pkcs11:".len()..];
        let (path, query) = match body.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (body, None),
        };
        // The redacted form: the same text with the PIN's value hidden.
        let mut redacted = format!("pkcs11:{path}");
        let mut uri = Pkcs11Uri {
            token: None,
            manufacturer: None,
            model: None,
            serial: None,
            slot_id: None,
            object: None,
            id: None,
            pin: None,
            module_path: None,
            redacted: String::new(),
        };
        let mut redacted_query = Vec::new();
        if let Some(query) = query {
            for attr in query.split('&').filter(|a| !a.is_empty()) {
                let (name, _) = attr.split_once('=').unwrap_or((attr, ""));
                if name == "pin-value" {
                    redacted_query.push("pin-value=***".to_owned());
                } else {
                    redacted_query.push(attr.to_owned());
                }
            }
            if !redacted_query.is_empty() {
                redacted.push('?');
                redacted.push_str(&redacted_query.join("&"));
            }
        }
        // Errors from here on name the redacted URI.
        let shown = redacted.clone();
        let bad = |reason: String| error::BadUrlSnafu {
            url: shown.clone(),
            reason,
        };
        for attr in path.split(';').filter(|a| !a.is_empty()) {
            let (name, raw) = attr
                .split_once('=')
                .with_context(|| bad(format!("path attribute '{attr}' has no '='")))?;
            let bytes =
                percent_decode(raw).with_context(|| bad(format!("bad %-escape in '{name}'")))?;
            let text = || {
                String::from_utf8(bytes.clone())
                    .ok()
                    .with_context(|| bad(format!("'{name}' is not UTF-8")))
            };
            match name {
                "token" => uri.token = Some(text()?),
                "manufacturer" => uri.manufacturer = Some(text()?),
                "model" => uri.model = Some(text()?),
                "serial" => uri.serial = Some(text()?),
                "slot-id" => {
                    uri.slot_id = Some(
                        text()?
                            .parse()
                            .ok()
                            .with_context(|| bad("slot-id is not a number".into()))?,
                    );
                }
                "object" => uri.object = Some(text()?),
                "id" => uri.id = Some(bytes),
                "type" => {
                    let t = text()?;
                    ensure!(
                        t == "private" || t == "public",
                        bad(format!(
                            "type={t}: a signing key is type=private (or type=public for its public half)"
                        ))
                    );
                }
                // Library attributes describe the module, which module-path already picks.
                "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer" => {}
                other => {
                    return bad(format!(
                        "unknown path attribute '{other}' (known: token, manufacturer, model, serial, slot-id, object, id, type)"
                    ))
                    .fail();
                }
            }
        }
        if let Some(query) = query {
            for attr in query.split('&').filter(|a| !a.is_empty()) {
                let (name, raw) = attr.split_once('=').with_context(|| {
                    bad(format!(
                        "query attribute '{name_only}' has no '='",
                        name_only = attr.split('=').next().unwrap_or(attr)
                    ))
                })?;
                let shown_name = name.to_owned();
                let bytes = percent_decode(raw)
                    .with_context(|| bad(format!("bad %-escape in '{shown_name}'")))?;
                let text = String::from_utf8(bytes)
                    .ok()
                    .with_context(|| bad(format!("'{shown_name}' is not UTF-8")))?;
                match name {
                    "pin-value" => {
                        ensure!(
                            uri.pin.is_none(),
                            bad("give one of pin-value and pin-source".into())
                        );
                        uri.pin = Some(PinSpec::Value(text));
                    }
                    "pin-source" => {
                        ensure!(
                            uri.pin.is_none(),
                            bad("give one of pin-value and pin-source".into())
                        );
                        let path = text
                            .strip_prefix("file://")
                            .or_else(|| text.strip_prefix("file:"))
                            .unwrap_or(&text);
                        ensure!(
                            !path.contains(':') || path.starts_with('/'),
                            bad(format!(
                                "pin-source={text}: only files are supported (a path or file: URI)"
                            ))
                        );
                        uri.pin = Some(PinSpec::Source(PathBuf::from(path)));
                    }
                    "module-path" => uri.module_path = Some(PathBuf::from(text)),
                    "module-name" => {
                        return bad(
                            "module-name= is not supported: give module-path=/path/to/module.so (or set PKCS11_MODULE_PATH)".into(),
                        )
                        .fail();
                    }
                    other => {
                        return bad(format!(
                            "unknown query attribute '{other}' (known: pin-value, pin-source, module-path)"
                        ))
                        .fail();
                    }
                }
            }
        }
        uri.redacted = redacted;
        Ok(uri)
    }
}

/// `aws-kms://[PROFILE]/KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsUri {
    /// The AWS profile (the URL's host), or the default configuration chain.
    pub profile: Option<String>,
    /// Key ID, key ARN, or `alias/NAME`.
    pub key_id: String,
}

impl KmsUri {
    fn parse(url: &str, rest: &str) -> Result<KmsUri> {
        let bad = |reason: &str| error::BadUrlSnafu {
            url,
            reason: reason.to_owned(),
        };
        let (host, path) = rest.split_once('/').with_context(|| {
            bad("expected aws-kms://[PROFILE]/KEY-ID (the key after a '/'; aws-kms:///KEY-ID for the default profile)")
        })?;
        let decode = |s: &str, what: &str| {
            percent_decode(s)
                .and_then(|b| String::from_utf8(b).ok())
                .with_context(|| bad(&format!("bad %-escape in the {what}")))
        };
        let key_id = decode(path, "key ID")?;
        ensure!(!key_id.is_empty(), bad("no key ID after the profile"));
        ensure!(
            !key_id.contains('?') && !key_id.contains('#'),
            bad("a key ID has no query or fragment")
        );
        let profile = decode(host, "profile")?;
        Ok(KmsUri {
            profile: (!profile.is_empty()).then_some(profile),
            key_id,
        })
    }
}

/// Percent-decodes `s` (RFC 3986); `None` on a malformed escape.
pub(crate) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod test {
    use super::*;

    fn parse(s: &str) -> KeyUrl {
        s.parse().unwrap()
    }

    #[test]
    fn files() {
        assert_eq!(parse("k.pem"), KeyUrl::File("k.pem".into()));
        assert_eq!(parse("/k/a.der"), KeyUrl::File("/k/a.der".into()));
        assert_eq!(parse("file:///k/a.der"), KeyUrl::File("/k/a.der".into()));
        assert_eq!(parse("file://rel/a.der"), KeyUrl::File("rel/a.der".into()));
        assert_eq!(
            parse("file:///k/my%20key.der"),
            KeyUrl::File("/k/my key.der".into())
        );
        // A colon in a plain path is a path, not a scheme.
        assert_eq!(parse("C:key.der"), KeyUrl::File("C:key.der".into()));
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let err = "aws-ssm://default/key".parse::<KeyUrl>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("aws-ssm://default/key"), "{text}");
        assert!(text.contains("aws-ssm"), "{text}");
        assert!("".parse::<KeyUrl>().is_err());
        assert!("file://".parse::<KeyUrl>().is_err());
    }

    #[test]
    fn kms_as_tuftool_spells_it() {
        let KeyUrl::AwsKms(u) = parse("aws-kms:///alias/tuf-root") else {
            panic!()
        };
        assert_eq!(u.profile, None);
        assert_eq!(u.key_id, "alias/tuf-root");
        let KeyUrl::AwsKms(u) = parse("aws-kms://prod/1234abcd-12ab-34cd-56ef-1234567890ab") else {
            panic!()
        };
        assert_eq!(u.profile.as_deref(), Some("prod"));
        assert_eq!(u.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
        let arn = "arn:aws:kms:us-west-2:111122223333:key/1234abcd";
        let KeyUrl::AwsKms(u) = parse(&format!("aws-kms:///{arn}")) else {
            panic!()
        };
        assert_eq!(u.key_id, arn);
        assert_eq!(
            parse("aws-kms://prod/alias/x").to_string(),
            "aws-kms://prod/alias/x"
        );
        assert!("aws-kms://".parse::<KeyUrl>().is_err());
        assert!("aws-kms:///".parse::<KeyUrl>().is_err());
        assert!("aws-kms://prof".parse::<KeyUrl>().is_err());
    }

    #[test]
    fn pkcs11_attributes() {
        let KeyUrl::Pkcs11(u) = parse(
            "pkcs11:token=My%20Token;object=root-1;id=%01%a0;type=private?pin-value=1234&module-path=/usr/lib/softhsm/libsofthsm2.so",
        ) else {
            panic!()
        };
        assert_eq!(u.token.as_deref(), Some("My Token"));
        assert_eq!(u.object.as_deref(), Some("root-1"));
        assert_eq!(u.id.as_deref(), Some(&[0x01, 0xa0][..]));
        assert_eq!(u.pin, Some(PinSpec::Value("1234".into())));
        assert_eq!(
            u.module_path.as_deref(),
            Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so"))
        );
        let KeyUrl::Pkcs11(u) = parse("pkcs11:token=t;object=k?pin-source=file:///run/pin") else {
            panic!()
        };
        assert_eq!(u.pin, Some(PinSpec::Source("/run/pin".into())));
    }

    #[test]
    fn pins_never_show() {
        let url = parse("pkcs11:token=t;object=k?pin-value=s3cret&module-path=/m.so");
        assert_eq!(
            url.to_string(),
            "pkcs11:token=t;object=k?pin-value=***&module-path=/m.so"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        // Errors after the PIN is seen are redacted too.
        let err = "pkcs11:token=t;objekt=k?pin-value=s3cret"
            .parse::<KeyUrl>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("objekt"), "{err}");
    }

    #[test]
    fn pkcs11_mistakes() {
        for bad in [
            "pkcs11:token",
            "pkcs11:slot-id=x",
            "pkcs11:id=%zz",
            "pkcs11:type=cert",
            "pkcs11:token=t?module-name=softhsm2",
            "pkcs11:token=t?pin-value=1&pin-source=/p",
            "pkcs11:token=t?pin-source=https://x/pin",
        ] {
            assert!(bad.parse::<KeyUrl>().is_err(), "{bad}");
        }
    }
}
