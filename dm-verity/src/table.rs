//! The dm-verity target line, written by [`VerityParams::dm_target`] and parsed here, so the
//! crate that writes a table (os-image's grub.cfg `dm-mod.create`) and the one that reads it
//! back (updog finding the root hash in the BOOT partition) share one definition:
//!
//! `<start> <sectors> verity <format> <data_dev> <hash_dev> <data_block_size> <hash_block_size>
//! <data_blocks> <hash_start_block> <algorithm> <root_hash> <salt|-> [<n> <option>…]`

use crate::error::{Error, Result};
use crate::tree::{FORMAT, HASH_ALGORITHM, HASH_START_BLOCK, VerityParams};
use std::fmt;

/// A parsed dm-verity target line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTable {
    /// First sector of the mapping (0 for a whole-device root).
    pub start: u64,
    /// Length of the mapping in 512-byte sectors.
    pub sectors: u64,
    /// The data device (e.g. `PARTUUID=$boot_uuid/PARTNROFF=1`).
    pub data_dev: String,
    /// The hash device.
    pub hash_dev: String,
    /// The parameters of the hash tree (the UUID is not in a table: all zero here).
    pub params: VerityParams,
    /// Optional arguments (`restart_on_corruption`, `ignore_zero_blocks`, …).
    pub options: Vec<String>,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadTable {
        reason: reason.into(),
    }
}

impl VerityTable {
    /// Parses a target line (`0 <sectors> verity 1 …`). Only what this crate writes is
    /// accepted: format 1, sha256, hash start block 1, a 32-byte root hash.
    pub fn parse(line: &str) -> Result<VerityTable> {
        let t: Vec<&str> = line.split_ascii_whitespace().collect();
        if t.len() < 13 {
            return Err(bad(format!("{} fields, at least 13 expected", t.len())));
        }
        let num = |i: usize, what: &str| -> Result<u64> {
            t[i].parse()
                .map_err(|_| bad(format!("{what} {:?} is not a number", t[i])))
        };
        if t[2] != "verity" {
            return Err(bad(format!("target type {:?}, expected verity", t[2])));
        }
        if t[3] != FORMAT.to_string() {
            return Err(bad(format!("format {:?}, expected {FORMAT}", t[3])));
        }
        if num(9, "hash start block")? != HASH_START_BLOCK {
            return Err(bad(format!(
                "hash start block {}, expected {HASH_START_BLOCK}",
                t[9]
            )));
        }
        if t[10] != HASH_ALGORITHM {
            return Err(bad(format!(
                "algorithm {:?}, expected {HASH_ALGORITHM}",
                t[10]
            )));
        }
        let root_hash: [u8; 32] = hex::decode(t[11])
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad(format!("root hash {:?} is not 64 hex digits", t[11])))?;
        let salt = if t[12] == "-" {
            Vec::new()
        } else {
            hex::decode(t[12]).map_err(|_| bad(format!("salt {:?} is not hex", t[12])))?
        };
        let options: Vec<String> = match t.get(13) {
            None => Vec::new(),
            Some(n) => {
                let n: usize = n
                    .parse()
                    .map_err(|_| bad(format!("option count {n:?} is not a number")))?;
                let opts = &t[14..];
                if opts.len() != n {
                    return Err(bad(format!("{n} options announced, {} given", opts.len())));
                }
                opts.iter().map(|s| (*s).to_owned()).collect()
            }
        };
        let block_size = |i: usize, what: &str| -> Result<u32> {
            u32::try_from(num(i, what)?).map_err(|_| bad(format!("{what} {} too large", t[i])))
        };
        Ok(VerityTable {
            start: num(0, "start sector")?,
            sectors: num(1, "sector count")?,
            data_dev: t[4].to_owned(),
            hash_dev: t[5].to_owned(),
            params: VerityParams {
                root_hash,
                salt,
                data_blocks: num(8, "data blocks")?,
                data_block_size: block_size(6, "data block size")?,
                hash_block_size: block_size(7, "hash block size")?,
                uuid: [0; 16],
            },
            options,
        })
    }
}

impl fmt::Display for VerityTable {
    /// The line [`VerityParams::dm_target`] writes (with this table's start sector).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options: Vec<&str> = self.options.iter().map(String::as_str).collect();
        let line = self
            .params
            .dm_target(&self.data_dev, &self.hash_dev, &options);
        // dm_target always starts at sector 0.
        match line.strip_prefix("0 ") {
            Some(rest) => write!(f, "{} {rest}", self.start),
            None => f.write_str(&line),
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn params(salt: Vec<u8>) -> VerityParams {
        VerityParams {
            root_hash: [0xab; 32],
            salt,
            data_blocks: 2560,
            data_block_size: 4096,
            hash_block_size: 4096,
            uuid: [0; 16],
        }
    }

    #[test]
    fn what_dm_target_writes_parses_back() {
        for (salt, options) in [
            (
                vec![1, 2, 3],
                vec!["restart_on_corruption", "ignore_zero_blocks"],
            ),
            (Vec::new(), vec![]),
            (vec![0xff; 32], vec!["panic_on_corruption"]),
        ] {
            let p = params(salt);
            let line = p.dm_target("PARTUUID=$boot_uuid/PARTNROFF=1", "/dev/dm-hash", &options);
            let t = VerityTable::parse(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(t.params, p, "{line}");
            assert_eq!(t.data_dev, "PARTUUID=$boot_uuid/PARTNROFF=1");
            assert_eq!(t.hash_dev, "/dev/dm-hash");
            assert_eq!(t.sectors, p.data_bytes() / 512);
            assert_eq!(t.options, options);
            assert_eq!(t.to_string(), line);
        }
    }

    #[test]
    fn bottlerocket_grub_table_parses() {
        let line = format!(
            "0 16 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 2 1 sha256 {} - 2 restart_on_corruption ignore_zero_blocks",
            "cd".repeat(32)
        );
        let t = VerityTable::parse(&line).unwrap();
        assert_eq!(t.params.root_hash, [0xcd; 32]);
        assert!(t.params.salt.is_empty());
        assert_eq!(t.params.data_blocks, 2);
        assert_eq!(t.to_string(), line);
    }

    #[test]
    fn bad_tables_name_the_field() {
        let good = params(vec![1]).dm_target("D", "H", &["x"]);
        for (from, to, want) in [
            (" verity ", " linear ", "target type"),
            (" verity 1 ", " verity 2 ", "format"),
            (" sha256 ", " sha1 ", "algorithm"),
            (" 1 x", " 2 x", "2 options announced, 1 given"),
            (" 4096 4096 ", " 4096 x ", "hash block size"),
        ] {
            let line = good.replacen(from, to, 1);
            let e = VerityTable::parse(&line).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        let short = VerityTable::parse("0 8 verity 1").unwrap_err().to_string();
        assert!(short.contains("13 expected"), "{short}");
        let hash = good.replace(&"ab".repeat(32), "abcd");
        assert!(
            VerityTable::parse(&hash)
                .unwrap_err()
                .to_string()
                .contains("root hash")
        );
    }
}
