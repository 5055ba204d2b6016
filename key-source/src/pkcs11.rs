//! Keys on PKCS#11 tokens, through cryptoki.
//!
//! The module (shared library) is loaded and initialised once per process and path. A key is
//! found by the URI's token attributes (label, serial, manufacturer, model, slot) and object
//! attributes (`object=` label, `id=`); its public half is read from the token (the modulus and
//! exponent of an RSA key, the `CKA_EC_POINT` of the public object of an EC key), so its TUF key
//! ID is the one a root lists. Signing: ECDSA P-256 with `CKM_ECDSA` over our SHA-256 (DER
//! encoded for TUF), RSA with `CKM_RSA_PKCS_PSS` (SHA-256, MGF1-SHA-256, 32-byte salt) over our
//! SHA-256, Ed25519 with `CKM_EDDSA`.

use crate::der;
use crate::error::{self, Result};
use crate::url::{PinSpec, Pkcs11Uri};
use aws_lc_rs::digest::{SHA256, digest};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use snafu::{OptionExt, ResultExt, ensure};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tough::async_trait;
use tough::schema::key::{
    EcdsaKey, EcdsaScheme, Ed25519Key, Ed25519Scheme, Key, RsaKey, RsaScheme,
};
use tough::sign::Sign;

/// Which TUF algorithm a token key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rsa,
    EcdsaP256,
    Ed25519,
}

/// A private key on a token, with an open, logged-in session.
pub(crate) struct TokenKey {
    url: String,
    // cryptoki sessions are Send but not Sync; signing takes the lock.
    session: Mutex<Session>,
    key: ObjectHandle,
    alg: Alg,
    public: Key,
}

/// Loads the module (once per process) and returns its context.
fn module(url: &str, uri: &Pkcs11Uri) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let path = uri
        .module_path
        .clone()
        .or_else(|| std::env::var_os(crate::PKCS11_MODULE_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_PKCS11_MODULE));
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(ctx) = modules.get(&path) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(&path).context(error::Pkcs11ModuleSnafu { url, module: &path })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(source) => {
            return Err(source).context(error::Pkcs11ModuleSnafu { url, module: &path });
        }
    }
    modules.insert(path, ctx.clone());
    Ok(ctx)
}

fn ck<T>(url: &str, op: &'static str, r: cryptoki::error::Result<T>) -> Result<T> {
    r.context(error::Pkcs11Snafu { url, op })
}

/// Finds the one token the URI's token attributes select.
fn find_token(url: &str, ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<(Slot, bool)> {
    let slots = ck(url, "C_GetSlotList", ctx.get_slots_with_token())?;
    let mut seen = Vec::new();
    let mut matches = Vec::new();
    for slot in slots {
        let info = ck(url, "C_GetTokenInfo", ctx.get_token_info(slot))?;
        let label = info.label().trim_end().to_owned();
        let ok = uri.token.as_deref().is_none_or(|t| t == label)
            && uri
                .serial
                .as_deref()
                .is_none_or(|s| s == info.serial_number().trim_end())
            && uri
                .manufacturer
                .as_deref()
                .is_none_or(|m| m == info.manufacturer_id().trim_end())
            && uri
                .model
                .as_deref()
                .is_none_or(|m| m == info.model().trim_end())
            && uri.slot_id.is_none_or(|id| id == slot.id());
        seen.push(format!("'{label}' (slot {})", slot.id()));
        if ok {
            matches.push((slot, info.login_required()));
        }
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => error::TokenNotFoundSnafu {
            url,
            reason: if seen.is_empty() {
                "the module sees no token (is the token initialised, is SOFTHSM2_CONF right?)"
                    .to_owned()
            } else {
                format!("no token matches; tokens present: {}", seen.join(", "))
            },
        }
        .fail(),
        n => error::TokenNotFoundSnafu {
            url,
            reason: format!(
                "{n} tokens match ({}); name one with token= or serial=",
                seen.join(", ")
            ),
        }
        .fail(),
    }
}

/// Opens a session on the URI's token and logs in if the URI gives a PIN. Returns the session
/// and whether it is logged in.
fn open(url: &str, uri: &Pkcs11Uri, need_login: bool) -> Result<(Session, bool)> {
    let ctx = module(url, uri)?;
    let (slot, login_required) = find_token(url, &ctx, uri)?;
    let session = ck(url, "C_OpenSession", ctx.open_ro_session(slot))?;
    let pin = match &uri.pin {
        Some(PinSpec::Value(v)) => Some(v.clone()),
        Some(PinSpec::Source(path)) => {
            let text =
                std::fs::read_to_string(path).context(error::PinSourceSnafu { url, path })?;
            Some(text.strip_suffix('\n').unwrap_or(&text).to_owned())
        }
        None => None,
    };
    let Some(pin) = pin else {
        ensure!(
            !(need_login && login_required),
            error::PinMissingSnafu { url }
        );
        return Ok((session, false));
    };
    match session.login(UserType::User, Some(&AuthPin::from(pin))) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok((session, true)),
        Err(CkError::Pkcs11(rv, _))
            if matches!(
                rv,
                RvError::PinIncorrect
                    | RvError::PinLocked
                    | RvError::PinInvalid
                    | RvError::PinLenRange
                    | RvError::PinExpired
            ) =>
        {
            error::LoginSnafu {
                url,
                reason: match rv {
                    RvError::PinIncorrect => "wrong PIN (CKR_PIN_INCORRECT)".to_owned(),
                    RvError::PinLocked => {
                        "the user PIN is locked (too many wrong PINs; the security officer must reset it)"
                            .to_owned()
                    }
                    other => format!("the PIN was not accepted ({other})"),
                },
            }
            .fail()
        }
        Err(source) => Err(source).context(error::Pkcs11Snafu {
            url,
            op: "C_Login",
        }),
    }
}

/// The object template for the URI's object attributes.
fn template(class: ObjectClass, label: Option<&str>, id: Option<&[u8]>) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(label) = label {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = id {
        t.push(Attribute::Id(id.to_vec()));
    }
    t
}

/// At most one object matching the template.
fn find_one(url: &str, session: &Session, template: &[Attribute]) -> Result<Option<ObjectHandle>> {
    let mut found = ck(url, "C_FindObjects", session.find_objects(template))?;
    ensure!(
        found.len() <= 1,
        error::AmbiguousObjectSnafu {
            url,
            count: found.len()
        }
    );
    Ok(found.pop())
}

/// Reads attributes; a missing or sensitive attribute is simply absent from the result.
fn attributes(
    url: &str,
    session: &Session,
    handle: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>> {
    ck(
        url,
        "C_GetAttributeValue",
        session.get_attributes(handle, types),
    )
}

/// The TUF public key an object yields: an RSA key (private or public object: both carry the
/// modulus and exponent) or an EC public object. `None` for an EC private object.
fn tuf_public(url: &str, session: &Session, handle: ObjectHandle) -> Result<Option<(Key, Alg)>> {
    let attrs = attributes(
        url,
        session,
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )?;
    let mut key_type = None;
    let (mut n, mut e, mut params, mut point) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            _ => {}
        }
    }
    let key_type = key_type.context(error::UnsupportedKeySnafu {
        url,
        reason: "the object has no key type",
    })?;
    let extra = HashMap::new;
    if key_type == KeyType::RSA {
        let (Some(n), Some(e)) = (n, e) else {
            return Ok(None);
        };
        ensure!(
            n.len() * 8 >= 2048,
            error::UnsupportedKeySnafu {
                url,
                reason: format!(
                    "RSA key of {} bits: TUF clients verify RSA-PSS keys of 2048 bits or more",
                    n.len() * 8
                ),
            }
        );
        let key = Key::Rsa {
            keyval: RsaKey {
                public: der::rsa_public_key(&n, &e).into(),
                _extra: extra(),
            },
            scheme: RsaScheme::RsassaPssSha256,
            _extra: extra(),
        };
        return Ok(Some((key, Alg::Rsa)));
    }
    if key_type == KeyType::EC {
        let (Some(params), Some(point)) = (params, point) else {
            return Ok(None);
        };
        ensure!(
            params == der::P256_PARAMS,
            error::UnsupportedKeySnafu {
                url,
                reason: "EC key on a curve other than P-256 (TUF's ecdsa-sha2-nistp256)",
            }
        );
        let point = der::ec_point(&point, 65).context(error::UnsupportedKeySnafu {
            url,
            reason: "CKA_EC_POINT is not an uncompressed P-256 point",
        })?;
        let key = Key::Ecdsa {
            keyval: EcdsaKey {
                public: point.into(),
                _extra: extra(),
            },
            scheme: EcdsaScheme::EcdsaSha2Nistp256,
            _extra: extra(),
        };
        return Ok(Some((key, Alg::EcdsaP256)));
    }
    if key_type == KeyType::EC_EDWARDS {
        let (Some(params), Some(point)) = (params, point) else {
            return Ok(None);
        };
        ensure!(
            der::is_ed25519_params(&params),
            error::UnsupportedKeySnafu {
                url,
                reason: "Edwards key that is not Ed25519",
            }
        );
        let point = der::ec_point(&point, 32).context(error::UnsupportedKeySnafu {
            url,
            reason: "CKA_EC_POINT is not a 32-byte Ed25519 key",
        })?;
        let key = Key::Ed25519 {
            keyval: Ed25519Key {
                public: point.into(),
                _extra: extra(),
            },
            scheme: Ed25519Scheme::Ed25519,
            _extra: extra(),
        };
        return Ok(Some((key, Alg::Ed25519)));
    }
    error::UnsupportedKeySnafu {
        url,
        reason: format!("key type {key_type}: TUF signs with RSA, ECDSA P-256 or Ed25519"),
    }
    .fail()
}

/// The public object that belongs to a private key: same `CKA_ID` (or, without one, same label).
fn public_of(url: &str, session: &Session, private: ObjectHandle) -> Result<Option<(Key, Alg)>> {
    let attrs = attributes(
        url,
        session,
        private,
        &[AttributeType::Id, AttributeType::Label],
    )?;
    let (mut id, mut label) = (None, None);
    for a in attrs {
        match a {
            Attribute::Id(v) if !v.is_empty() => id = Some(v),
            Attribute::Label(v) if !v.is_empty() => label = Some(v),
            _ => {}
        }
    }
    let t = match (id, label) {
        (Some(id), _) => template(ObjectClass::PUBLIC_KEY, None, Some(&id)),
        (None, Some(label)) => vec![
            Attribute::Class(ObjectClass::PUBLIC_KEY),
            Attribute::Label(label),
        ],
        (None, None) => return Ok(None),
    };
    match find_one(url, session, &t)? {
        Some(h) => tuf_public(url, session, h),
        None => Ok(None),
    }
}

/// Logs in and finds the private key and its public half.
pub(crate) fn load(url: &str, uri: &Pkcs11Uri) -> Result<TokenKey> {
    let (session, logged_in) = open(url, uri, true)?;
    let t = template(
        ObjectClass::PRIVATE_KEY,
        uri.object.as_deref(),
        uri.id.as_deref(),
    );
    let Some(key) = find_one(url, &session, &t)? else {
        // Private objects are invisible before login: say so when that may be the reason.
        ensure!(logged_in, error::PinMissingSnafu { url });
        return error::ObjectNotFoundSnafu {
            url,
            what: "private key",
        }
        .fail();
    };
    let (public, alg) = match tuf_public(url, &session, key)? {
        Some(found) => found,
        None => public_of(url, &session, key)?.context(error::ObjectNotFoundSnafu {
            url,
            what: "public key object for the private key (same id=)",
        })?,
    };
    Ok(TokenKey {
        url: url.to_owned(),
        session: Mutex::new(session),
        key,
        alg,
        public,
    })
}

/// Reads the public key only: a public object matching the URI, else the public half of the
/// matching private key (this needs a PIN).
pub(crate) fn public_key(url: &str, uri: &Pkcs11Uri) -> Result<Key> {
    let (session, logged_in) = open(url, uri, false)?;
    let object = uri.object.as_deref();
    let id = uri.id.as_deref();
    if let Some(h) = find_one(
        url,
        &session,
        &template(ObjectClass::PUBLIC_KEY, object, id),
    )? && let Some((key, _)) = tuf_public(url, &session, h)?
    {
        return Ok(key);
    }
    if let Some(h) = find_one(
        url,
        &session,
        &template(ObjectClass::PRIVATE_KEY, object, id),
    )? {
        if let Some((key, _)) = tuf_public(url, &session, h)? {
            return Ok(key);
        }
        if let Some((key, _)) = public_of(url, &session, h)? {
            return Ok(key);
        }
    }
    ensure!(logged_in, error::PinMissingSnafu { url });
    error::ObjectNotFoundSnafu {
        url,
        what: "public key",
    }
    .fail()
}

impl TokenKey {
    fn sign_blocking(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let url = self.url.as_str();
        match self.alg {
            Alg::EcdsaP256 => {
                let hash = digest(&SHA256, msg);
                let raw = ck(
                    url,
                    "C_Sign (CKM_ECDSA)",
                    session.sign(&Mechanism::Ecdsa, self.key, hash.as_ref()),
                )?;
                der::ecdsa_signature(&raw).context(error::UnsupportedKeySnafu {
                    url,
                    reason: format!("the token returned a {}-byte ECDSA signature", raw.len()),
                })
            }
            Alg::Rsa => {
                let hash = digest(&SHA256, msg);
                let params = PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                };
                ck(
                    url,
                    "C_Sign (CKM_RSA_PKCS_PSS)",
                    session.sign(&Mechanism::RsaPkcsPss(params), self.key, hash.as_ref()),
                )
            }
            Alg::Ed25519 => ck(
                url,
                "C_Sign (CKM_EDDSA)",
                session.sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.key,
                    msg,
                ),
            ),
        }
    }
}

#[async_trait]
impl Sign for TokenKey {
    fn tuf_key(&self) -> Key {
        self.public.clone()
    }

    async fn sign(
        &self,
        msg: &[u8],
        _rng: &(dyn aws_lc_rs::rand::SecureRandom + Sync),
    ) -> std::result::Result<Vec<u8>, crate::BoxError> {
        // A token signs in milliseconds; not worth a thread hop.
        self.sign_blocking(msg)
            .map_err(|e| Box::new(e) as crate::BoxError)
    }
}
