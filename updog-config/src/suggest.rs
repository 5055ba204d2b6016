//! "Did you mean …?": the nearest valid key to a misspelt one.

/// Edit distance (insertions, deletions, substitutions, and swaps of two neighbours).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// `Metadata-Base-URL` and `metadata_base_url` are the same key to a human.
fn normalise(s: &str) -> String {
    s.trim().to_lowercase().replace(['-', ' ', '.'], "_")
}

/// The valid key closest to `typed`, if it is close enough to be what was meant: equal once
/// case and separators are normalised, within a small edit distance (≤ 2, or a third of the
/// length for long keys), or a prefix of at least four characters (`checkpoint` →
/// `checkpoint_mib`).
pub(crate) fn nearest(typed: &str, known: &[&'static str]) -> Option<&'static str> {
    let t = normalise(typed);
    let mut best: Option<(usize, &'static str)> = None;
    for &k in known {
        let d = if t == k {
            0
        } else if t.len() >= 4 && (k.starts_with(&t) || t.starts_with(k)) {
            1
        } else {
            distance(&t, k)
        };
        let limit = 2.max(k.len() / 3);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, k));
        }
    }
    best.map(|(_, k)| k)
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::KNOWN_KEYS;

    #[test]
    fn nearest_keys() {
        for (typed, want) in [
            ("seeed", Some("seed")),
            ("sede", Some("seed")),
            ("Seed", Some("seed")),
            ("metadata-base-url", Some("metadata_base_url")),
            ("metdata_base_url", Some("metadata_base_url")),
            ("target_base_url", Some("targets_base_url")),
            ("ignore_wave", Some("ignore_waves")),
            ("retires", Some("retries")),
            ("checkpoint", Some("checkpoint_mib")),
            ("read_timeout", Some("read_timeout_secs")),
            ("version-lock", Some("version_lock")),
            ("https-proxy", Some("https_proxy")),
            ("colour", None),
            ("x", None),
        ] {
            assert_eq!(nearest(typed, KNOWN_KEYS), want, "{typed}");
        }
    }
}
