//! The boot flags in a GPT partition entry's 64-bit attribute word (ChromeOS/CoreOS "gptprio"
//! layout, as Bottlerocket and its GRUB use it).
//!
//! | bits  | field on a BOOT partition |
//! |-------|---------------------------|
//! | 48–51 | priority (0–15)           |
//! | 52–55 | tries_left (0–15)         |
//! | 56    | successful                |
//! | 57    | "boot has ever succeeded", on the PRIVATE partition |
//!
//! [`encode`] changes only these bits; every other bit (UEFI bits 0–2, 60, 63, …) is preserved.

use crate::Flags;

/// Lowest bit of the 4-bit priority field.
pub const PRIORITY_SHIFT: u32 = 48;
/// Lowest bit of the 4-bit tries-left field.
pub const TRIES_LEFT_SHIFT: u32 = 52;
/// Mask of the priority field.
pub const PRIORITY_MASK: u64 = 0xf << PRIORITY_SHIFT;
/// Mask of the tries-left field.
pub const TRIES_LEFT_MASK: u64 = 0xf << TRIES_LEFT_SHIFT;
/// The "successful" bit (56).
pub const SUCCESSFUL: u64 = 1 << 56;
/// The "boot has ever succeeded" bit (57) on the PRIVATE partition.
pub const EVER_BOOTED: u64 = 1 << 57;
/// Every bit [`encode`] may change on a BOOT partition.
pub const FLAGS_MASK: u64 = PRIORITY_MASK | TRIES_LEFT_MASK | SUCCESSFUL;
/// Largest value of priority and tries_left (4 bits).
pub const MAX_FIELD: u8 = 15;

/// Flags of BOOT-A on a freshly built image (Bottlerocket's `sgdisk -A` at build): priority 1,
/// successful (bits 48 and 56).
pub const FRESH_BOOT_A: u64 = (1 << PRIORITY_SHIFT) | SUCCESSFUL;
/// Flags of BOOT-B on a freshly built image: nothing set (never boots until updated).
pub const FRESH_BOOT_B: u64 = 0;

/// Reads the boot flags from an attribute word.
pub fn decode(attributes: u64) -> Flags {
    Flags {
        priority: ((attributes & PRIORITY_MASK) >> PRIORITY_SHIFT) as u8,
        tries_left: ((attributes & TRIES_LEFT_MASK) >> TRIES_LEFT_SHIFT) as u8,
        successful: attributes & SUCCESSFUL != 0,
    }
}

/// Writes `flags` into `attributes`, leaving every other bit unchanged. Values above 15 are
/// clamped to 15 (the field width).
pub fn encode(attributes: u64, flags: Flags) -> u64 {
    let priority = u64::from(flags.priority.min(MAX_FIELD)) << PRIORITY_SHIFT;
    let tries = u64::from(flags.tries_left.min(MAX_FIELD)) << TRIES_LEFT_SHIFT;
    let successful = if flags.successful { SUCCESSFUL } else { 0 };
    (attributes & !FLAGS_MASK) | priority | tries | successful
}

/// Reads the "boot has ever succeeded" bit.
pub fn ever_booted(attributes: u64) -> bool {
    attributes & EVER_BOOTED != 0
}

/// Sets or clears the "boot has ever succeeded" bit, leaving every other bit unchanged.
pub fn with_ever_booted(attributes: u64, value: bool) -> u64 {
    if value {
        attributes | EVER_BOOTED
    } else {
        attributes & !EVER_BOOTED
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// The test vector from Bottlerocket's signpost.
    #[test]
    fn bottlerocket_vector() {
        let a = 0x5555_5555_5555_5555u64;
        let f = decode(a);
        assert_eq!(
            f,
            Flags {
                priority: 5,
                tries_left: 5,
                successful: true
            }
        );
        let a = encode(a, Flags { priority: 0, ..f });
        assert_eq!(a, 0x5550_5555_5555_5555);
        let a = encode(
            a,
            Flags {
                priority: 0,
                tries_left: 0,
                successful: true,
            },
        );
        assert_eq!(a, 0x5500_5555_5555_5555);
        let a = encode(
            a,
            Flags {
                priority: 0,
                tries_left: 0,
                successful: false,
            },
        );
        assert_eq!(a, 0x5400_5555_5555_5555);
    }

    #[test]
    fn other_bits_untouched() {
        for base in [0u64, u64::MAX, 0x8000_0000_0000_0007, 0x1200_0000_0000_0001] {
            for p in 0..=15 {
                for t in [0, 1, 15] {
                    for s in [false, true] {
                        let f = Flags {
                            priority: p,
                            tries_left: t,
                            successful: s,
                        };
                        let e = encode(base, f);
                        assert_eq!(e & !FLAGS_MASK, base & !FLAGS_MASK);
                        assert_eq!(decode(e), f);
                    }
                }
            }
            assert_eq!(
                with_ever_booted(base, true) & !EVER_BOOTED,
                base & !EVER_BOOTED
            );
            assert!(ever_booted(with_ever_booted(base, true)));
            assert!(!ever_booted(with_ever_booted(base, false)));
        }
    }

    #[test]
    fn fresh_image_flags() {
        assert_eq!(
            decode(FRESH_BOOT_A),
            Flags {
                priority: 1,
                tries_left: 0,
                successful: true
            }
        );
        assert_eq!(decode(FRESH_BOOT_B), Flags::default());
    }

    #[test]
    fn clamps_to_four_bits() {
        let e = encode(
            0,
            Flags {
                priority: 200,
                tries_left: 16,
                successful: false,
            },
        );
        assert_eq!(
            decode(e),
            Flags {
                priority: 15,
                tries_left: 15,
                successful: false
            }
        );
        assert_eq!(e & !FLAGS_MASK, 0);
    }
}
