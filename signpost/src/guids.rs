//! Partition type GUIDs (Bottlerocket's, canonical lowercase text form) and their on-disk bytes.
//!
//! On disk a GUID's first three groups are little-endian ("mixed-endian"), so
//! `6b636168-7420-6568-…` is stored as `68 61 63 6b 20 74 68 65 …`. [`to_bytes`] and
//! [`to_string`] convert between the two forms.

/// BOOT partition of an A/B set (kernel, initrd, grub.cfg); carries the set's boot flags.
pub const BOOT: &str = "6b636168-7420-6568-2070-6c616e657421";
/// ROOT partition of an A/B set (dm-verity protected root filesystem).
pub const ROOT: &str = "5526016a-1a97-4ea4-b39a-b7c8c6ca4502";
/// HASH partition of an A/B set (dm-verity hash tree).
pub const HASH: &str = "598f10af-c955-4456-6a99-7720068a6cea";
/// RESERVED partition of an A/B set.
pub const RESERVED: &str = "0c5d99a5-d331-4147-baef-08e2b855bdc9";
/// BOTTLEROCKET-PRIVATE; carries the "boot has ever succeeded" bit 57.
pub const PRIVATE: &str = "440408bb-eb0b-4328-a6e5-a29038fad706";
/// DATA partition.
pub const DATA: &str = "626f7474-6c65-6474-6861-726d61726b73";
/// BIOS boot partition (sgdisk code `ef02`).
pub const BIOS_BOOT: &str = "21686148-6449-6e6f-744e-656564454649";
/// EFI system partition.
pub const EFI_SYSTEM: &str = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b";
/// EFI backup placeholder partition.
pub const EFI_BACKUP: &str = "b39ce39c-0a00-b4ab-2d11-f18f8237a21c";

/// Preferred unique GUID of the DATA partition.
pub const DATA_UNIQUE_PREFERRED: &str = "5b94e8df-28b8-485c-9d19-362263b5944c";
/// Fallback unique GUID of the DATA partition.
pub const DATA_UNIQUE_FALLBACK: &str = "69040874-417d-4e26-a764-7885f22007ea";

/// Partition labels (GPT names) of Bottlerocket's layout.
pub mod labels {
    /// BIOS boot partition.
    pub const BIOS_BOOT: &str = "BIOS-BOOT";
    /// EFI system partition.
    pub const EFI_SYSTEM: &str = "EFI-SYSTEM";
    /// EFI backup placeholder.
    pub const EFI_BACKUP: &str = "EFI-BACKUP";
    /// Set A's BOOT.
    pub const BOOT_A: &str = "BOTTLEROCKET-BOOT-A";
    /// Set A's ROOT.
    pub const ROOT_A: &str = "BOTTLEROCKET-ROOT-A";
    /// Set A's HASH.
    pub const HASH_A: &str = "BOTTLEROCKET-HASH-A";
    /// Set A's RESERVED.
    pub const RESERVED_A: &str = "BOTTLEROCKET-RESERVED-A";
    /// Set B's BOOT.
    pub const BOOT_B: &str = "BOTTLEROCKET-BOOT-B";
    /// Set B's ROOT.
    pub const ROOT_B: &str = "BOTTLEROCKET-ROOT-B";
    /// Set B's HASH.
    pub const HASH_B: &str = "BOTTLEROCKET-HASH-B";
    /// Set B's RESERVED.
    pub const RESERVED_B: &str = "BOTTLEROCKET-RESERVED-B";
    /// The PRIVATE partition.
    pub const PRIVATE: &str = "BOTTLEROCKET-PRIVATE";
    /// The DATA partition after first boot (unlabelled in the built image).
    pub const DATA: &str = "BOTTLEROCKET-DATA";
}

const fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses a GUID in 8-4-4-4-12 text form into its on-disk (mixed-endian) bytes.
///
/// Returns `None` if the text is not a GUID. Usable in `const` context.
pub const fn parse(text: &str) -> Option<[u8; 16]> {
    let s = text.as_bytes();
    if s.len() != 36 || s[8] != b'-' || s[13] != b'-' || s[18] != b'-' || s[23] != b'-' {
        return None;
    }
    // Big-endian ("text order") bytes first.
    let mut be = [0u8; 16];
    let mut i = 0;
    let mut j = 0;
    while i < 36 {
        if i == 8 || i == 13 || i == 18 || i == 23 {
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (hex_val(s[i]), hex_val(s[i + 1])) else {
            return None;
        };
        be[j] = hi << 4 | lo;
        j += 1;
        i += 2;
    }
    Some([
        be[3], be[2], be[1], be[0], be[5], be[4], be[7], be[6], be[8], be[9], be[10], be[11],
        be[12], be[13], be[14], be[15],
    ])
}

/// On-disk bytes of a GUID constant of this module (or any valid GUID text).
///
/// # Panics
/// If `text` is not a GUID; use [`parse`] for untrusted input.
pub const fn to_bytes(text: &str) -> [u8; 16] {
    match parse(text) {
        Some(b) => b,
        None => panic!("not a GUID"),
    }
}

/// Canonical lowercase 8-4-4-4-12 text of on-disk GUID bytes.
pub fn to_string(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The role of a partition type this crate knows about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Boot,
    Root,
    Hash,
    Private,
}

pub(crate) const BOOT_BYTES: [u8; 16] = to_bytes(BOOT);
pub(crate) const ROOT_BYTES: [u8; 16] = to_bytes(ROOT);
pub(crate) const HASH_BYTES: [u8; 16] = to_bytes(HASH);
pub(crate) const PRIVATE_BYTES: [u8; 16] = to_bytes(PRIVATE);

pub(crate) fn role(type_guid: &[u8; 16]) -> Option<Role> {
    match *type_guid {
        BOOT_BYTES => Some(Role::Boot),
        ROOT_BYTES => Some(Role::Root),
        HASH_BYTES => Some(Role::Hash),
        PRIVATE_BYTES => Some(Role::Private),
        _ => None,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn boot_guid_is_mixed_endian_on_disk() {
        // "hack the planet!" read as bytes on disk.
        assert_eq!(&to_bytes(BOOT), b"hack the planet!");
        assert_eq!(&to_bytes(DATA), b"ttobeltdharmarks");
    }

    #[test]
    fn round_trip_every_constant() {
        for g in [
            BOOT, ROOT, HASH, RESERVED, PRIVATE, DATA, BIOS_BOOT, EFI_SYSTEM, EFI_BACKUP,
        ] {
            assert_eq!(to_string(&to_bytes(g)), g);
        }
        assert_eq!(
            parse("C12A7328-F81F-11D2-BA4B-00A0C93EC93B"),
            Some(to_bytes(EFI_SYSTEM))
        );
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(parse("6b636168-7420-6568-2070-6c616e65742"), None);
        assert_eq!(parse("6b636168x7420-6568-2070-6c616e657421"), None);
        assert_eq!(parse("6b636168-7420-6568-2070-6c616e65742g"), None);
    }
}
