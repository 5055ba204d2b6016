//! Deterministic fuzzing of the parsers that read untrusted input, on the stable toolchain.
//!
//! Three targets, each a pair of functions: a *mutator* that turns a corpus entry into a new
//! input, and a *checker* that runs the real parser on it and asserts its invariants (it panics
//! on a violation, like a fuzz target):
//!
//! - [`gpt`]: signpost's GPT reader. Mutations are structure-aware: header fields and partition
//!   entries are changed to interesting values (overlaps, huge LBAs, reversed ranges, truncated
//!   disks) and then both CRCs of the mutated copy are **repaired**, so mutations get past the
//!   checksums (raw mutation never does). Invariant: a table the reader accepts has every used
//!   entry inside the usable range and the disk, no overlaps, sets whose byte ranges fit the
//!   disk, and a rewrite that reads back identical.
//! - [`manifest`]: `update_metadata::Manifest::from_slice` + `validate`. JSON-aware mutations.
//!   Invariant: an accepted manifest survives a rewrite with the same validation verdict.
//! - [`waves`]: `waves::WavePolicy::from_toml` and the schedule built from it. Invariant: an
//!   accepted policy has strictly increasing percentages in 1..=100 and any schedule it yields
//!   validates.
//!
//! [`run`] drives a target: a seeded RNG, the committed corpus under `corpus/<target>/`, N
//! iterations (`ABOS_FUZZ_ITERS`, seed `ABOS_FUZZ_SEED`). An input that panics is written to
//! `ABOS_FUZZ_OUT` (default: the system temp dir) and the panic is re-raised with its path. See
//! `README.md` for longer runs.
#![deny(missing_docs)]

pub mod gpt;
pub mod manifest;
pub mod waves;

use std::path::{Path, PathBuf};

/// A small, fast, seedable RNG (xorshift64*); deterministic across platforms.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform index into a slice of length `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }
}

/// Generic byte-level mutations (flip, set, insert, delete, splice), for text targets.
pub fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    match rng.below(6) {
        0 if !data.is_empty() => {
            let i = rng.index(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = rng.index(data.len());
            data[i] = *rng.pick(b"\0\xff\"{}[]:,0-9.\n=#'\\e");
        }
        2 => {
            let i = rng.index(data.len() + 1);
            let b = *rng.pick(b"\"{}[]:,019.-\n=' ");
            data.insert(i, b);
        }
        3 if !data.is_empty() => {
            let i = rng.index(data.len());
            let n = 1 + rng.index((data.len() - i).min(16));
            data.drain(i..i + n);
        }
        4 if !other.is_empty() => {
            // Splice a piece of another corpus entry in.
            let from = rng.index(other.len());
            let n = 1 + rng.index((other.len() - from).min(64));
            let at = rng.index(data.len() + 1);
            let piece = other[from..from + n].to_vec();
            data.splice(at..at, piece);
        }
        _ => {
            if !data.is_empty() {
                let i = rng.index(data.len());
                let j = rng.index(data.len());
                data.swap(i, j);
            }
        }
    }
}

/// Iterations per target: `ABOS_FUZZ_ITERS` if set, else `default`.
pub fn iterations(default: u64) -> u64 {
    std::env::var("ABOS_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The base seed: `ABOS_FUZZ_SEED` if set, else a fixed value (so CI runs are reproducible).
pub fn base_seed() -> u64 {
    std::env::var("ABOS_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0ab0_5f22)
}

/// The committed corpus directory of a target.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target)
}

/// Reads every file of a corpus directory, sorted by name.
pub fn read_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .filter(|(name, _)| !name.starts_with('.') && name != "README.md")
        .collect();
    entries.sort();
    entries
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs tried.
    pub iterations: u64,
    /// Inputs the parser accepted (so the invariants were checked on them).
    pub accepted: u64,
}

/// A fuzz target: mutate a corpus entry (given another one for splicing), then check.
pub trait Target {
    /// Name (also the corpus directory).
    const NAME: &'static str;
    /// Prepares a corpus file's bytes (e.g. decoding a compact form).
    fn decode(bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }
    /// Produces a new input from `base`.
    fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8>;
    /// Runs the parser and checks invariants; returns whether the input was accepted. Panics
    /// on an invariant violation.
    fn check(input: &[u8]) -> bool;
}

/// Runs `iterations` mutated inputs of target `T` from its corpus (and the corpus entries
/// themselves first). An input that panics is saved and the panic re-raised with its path.
pub fn run<T: Target>(iterations: u64, seed: u64) -> Stats {
    let corpus: Vec<Vec<u8>> = read_corpus(T::NAME)
        .into_iter()
        .map(|(_, b)| T::decode(&b))
        .collect();
    assert!(!corpus.is_empty(), "empty corpus for {}", T::NAME);
    let mut stats = Stats::default();
    let mut rng = Rng::new(seed);
    let try_one = |input: Vec<u8>, what: String, stats: &mut Stats| {
        let result = std::panic::catch_unwind(|| T::check(&input));
        match result {
            Ok(accepted) => {
                stats.iterations += 1;
                stats.accepted += u64::from(accepted);
            }
            Err(panic) => {
                let out = std::env::var_os("ABOS_FUZZ_OUT")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir);
                let _ = std::fs::create_dir_all(&out);
                let path = out.join(format!("abos-fuzz-{}-{what}.bin", T::NAME));
                let saved = std::fs::write(&path, &input).is_ok();
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{} fuzz target failed on {what} (seed {seed}): {msg}; input {}",
                    T::NAME,
                    if saved {
                        format!("saved to {}", path.display())
                    } else {
                        "could not be saved".to_string()
                    }
                );
            }
        }
    };
    for (i, c) in corpus.iter().enumerate() {
        try_one(c.clone(), format!("corpus-{i}"), &mut stats);
    }
    for i in 0..iterations {
        let base = rng.pick(&corpus).clone();
        let other = rng.pick(&corpus).clone();
        let input = T::mutate(&mut rng, &base, &other);
        try_one(input, format!("iteration-{i}"), &mut stats);
    }
    stats
}
