//! A/B partition sets: names, boot flags and partitions.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The name of a partition set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum SetName {
    /// Set A: the first BOOT/ROOT/HASH partitions in table order.
    A,
    /// Set B: the second BOOT/ROOT/HASH partitions in table order.
    B,
}

impl SetName {
    /// The other set.
    pub fn other(self) -> SetName {
        match self {
            SetName::A => SetName::B,
            SetName::B => SetName::A,
        }
    }

    /// Index of the set in table order (A = 0, B = 1).
    pub fn index(self) -> usize {
        match self {
            SetName::A => 0,
            SetName::B => 1,
        }
    }

    /// Lowercase letter, as used on the command line and in labels' suffix.
    pub fn letter(self) -> &'static str {
        match self {
            SetName::A => "a",
            SetName::B => "b",
        }
    }
}

impl fmt::Display for SetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetName::A => "A",
            SetName::B => "B",
        })
    }
}

/// Error from parsing a [`SetName`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseSetNameError(pub String);

impl fmt::Display for ParseSetNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' is not a partition set name (expected 'a' or 'b')",
            self.0
        )
    }
}

impl std::error::Error for ParseSetNameError {}

impl FromStr for SetName {
    type Err = ParseSetNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "a" | "A" => Ok(SetName::A),
            "b" | "B" => Ok(SetName::B),
            other => Err(ParseSetNameError(other.to_string())),
        }
    }
}

/// The boot flags of a set, stored in its BOOT partition's attribute bits 48–56.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Flags {
    /// 0–15; 0 means "never boot"; among eligible sets the highest wins.
    pub priority: u8,
    /// 0–15; the bootloader decrements it each time it picks the set.
    pub tries_left: u8,
    /// Set once the set has booted far enough to be declared good.
    pub successful: bool,
}

impl Flags {
    /// Whether the bootloader (GRUB `gptprio.next`) may pick this set:
    /// `priority > 0 && (tries_left > 0 || successful)`.
    pub fn bootable(&self) -> bool {
        self.priority > 0 && (self.tries_left > 0 || self.successful)
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "priority={} tries_left={} successful={}",
            self.priority, self.tries_left, self.successful
        )
    }
}

/// One partition of the disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Partition {
    /// Partition number (1-based index in the partition entry array).
    pub number: u32,
    /// Offset of the partition's first byte in the whole disk.
    pub first_byte: u64,
    /// Length of the partition in bytes.
    pub len_bytes: u64,
    /// Unique partition GUID, lowercase 8-4-4-4-12.
    pub unique_guid: String,
    /// Partition label (GPT name).
    pub label: String,
}

/// The partitions of one A/B set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PartitionSet {
    /// Which set.
    pub name: SetName,
    /// BOOT partition (kernel, grub.cfg; carries the flags).
    pub boot: Partition,
    /// ROOT partition (number = boot + 1).
    pub root: Partition,
    /// HASH partition (number = boot + 2).
    pub hash: Partition,
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn set_names() {
        assert_eq!("a".parse::<SetName>().unwrap(), SetName::A);
        assert_eq!("B".parse::<SetName>().unwrap(), SetName::B);
        assert!("c".parse::<SetName>().is_err());
        assert_eq!(SetName::A.other(), SetName::B);
        assert_eq!(SetName::B.to_string(), "B");
    }

    #[test]
    fn grub_rule() {
        let f = |p, t, s| {
            Flags {
                priority: p,
                tries_left: t,
                successful: s,
            }
            .bootable()
        };
        assert!(!f(0, 0, false));
        assert!(!f(0, 1, true));
        assert!(!f(1, 0, false));
        assert!(f(1, 1, false));
        assert!(f(1, 0, true));
        assert!(f(15, 15, true));
    }
}
