//! The little DER this crate needs: reading a public point out of a PKCS#11 `CKA_EC_POINT`, and
//! writing an `RSAPublicKey` and an ECDSA signature (`SEQUENCE { INTEGER r, INTEGER s }`), the
//! forms tough and other TUF clients expect.

/// DER for a tag and its contents.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match magnitude.iter().position(|b| *b != 0) {
        Some(i) => &magnitude[i..],
        None => &[0],
    };
    let mut body = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(0x02, &body)
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`: the bytes tough
/// keeps for an RSA key (it wraps them in SubjectPublicKeyInfo PEM itself).
pub(crate) fn rsa_public_key(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let mut body = unsigned_integer(modulus);
    body.extend(unsigned_integer(exponent));
    tlv(0x30, &body)
}

/// An ECDSA signature from PKCS#11's fixed-width `r || s` to the DER form TUF uses.
pub(crate) fn ecdsa_signature(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = unsigned_integer(r);
    body.extend(unsigned_integer(s));
    Some(tlv(0x30, &body))
}

/// `CKA_EC_POINT` is a DER OCTET STRING holding the point (PKCS#11 2.40); some modules return the
/// bare point. Returns the point when it has `len` bytes.
pub(crate) fn ec_point(value: &[u8], len: usize) -> Option<Vec<u8>> {
    if value.len() == len {
        return Some(value.to_vec());
    }
    // OCTET STRING, short or one-byte long form.
    match value {
        [0x04, l, rest @ ..] if usize::from(*l) == len && rest.len() == len => Some(rest.to_vec()),
        [0x04, 0x81, l, rest @ ..] if usize::from(*l) == len && rest.len() == len => {
            Some(rest.to_vec())
        }
        _ => None,
    }
}

/// DER of the named curve P-256 (`CKA_EC_PARAMS`): OID 1.2.840.10045.3.1.7.
pub(crate) const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// DER of Ed25519's curve (`CKA_EC_PARAMS`): OID 1.3.101.112, or the printable string
/// "edwards25519" that PKCS#11 3.0 also allows.
pub(crate) fn is_ed25519_params(params: &[u8]) -> bool {
    params == [0x06, 0x03, 0x2b, 0x65, 0x70]
        || params
            == [
                0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
            ]
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(unsigned_integer(&[0, 0, 1]), vec![2, 1, 1]);
        assert_eq!(unsigned_integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]), vec![2, 1, 0]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 1, 44]);
    }

    #[test]
    fn ec_points_unwrap() {
        let point: Vec<u8> = std::iter::once(4).chain([7u8; 64]).collect();
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(&point);
        assert_eq!(ec_point(&wrapped, 65).unwrap(), point);
        assert_eq!(ec_point(&point, 65).unwrap(), point);
        assert!(ec_point(&point[1..], 65).is_none());
    }

    #[test]
    fn ecdsa_signatures_convert() {
        let mut raw = vec![0xff; 32];
        raw.extend([0x01; 32]);
        let der = ecdsa_signature(&raw).unwrap();
        assert_eq!(der[0], 0x30);
        assert_eq!(usize::from(der[1]), der.len() - 2);
        assert_eq!(&der[2..5], &[0x02, 33, 0x00]);
        assert!(ecdsa_signature(&[1, 2, 3]).is_none());
    }
}
