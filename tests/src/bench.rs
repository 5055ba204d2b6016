//! One line per benchmark figure, so that `scripts/bench.sh` can gather every benchmark of the
//! workspace into one table: each figure next to its same-run baseline and the ratio.
//!
//! Line format (stdout, tab-separated, first field `BENCH`):
//! `BENCH <name> <ours> <unit> <baseline name> <baseline> <ratio>` where ratio > 1 means ours is
//! better (faster, smaller) than the baseline.

/// Whether a larger figure is better (throughput) or a smaller one (time, memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// Throughput and the like.
    Higher,
    /// Time, memory and the like.
    Lower,
}

/// Print one benchmark figure next to its baseline; returns the ratio (> 1: ours is better).
#[allow(clippy::print_stdout)]
pub fn row(
    name: &str,
    ours: f64,
    unit: &str,
    baseline_name: &str,
    baseline: f64,
    better: Better,
) -> f64 {
    let ratio = match better {
        Better::Higher => ours / baseline,
        Better::Lower => baseline / ours,
    };
    // Leading newline: the test harness may have left "test x ... " unterminated on stdout.
    println!("\nBENCH\t{name}\t{ours:.3}\t{unit}\t{baseline_name}\t{baseline:.3}\t{ratio:.2}");
    ratio
}
