//! The fuzz targets as ordinary tests: the committed corpus, then a short deterministic run of
//! each target (a few seconds in CI). `ABOS_FUZZ_ITERS=N` runs N iterations per target and
//! `ABOS_FUZZ_SEED=S` changes the seed; see `fuzz/README.md`.
#![allow(clippy::print_stderr)] // reports what each run covered

use abos_fuzz::gpt::{Gpt, check_gpt, decode_sparse, encode_sparse};
use abos_fuzz::manifest::{ManifestTarget, check_manifest};
use abos_fuzz::waves::{Waves, check_policy};
use abos_fuzz::{Stats, Target, base_seed, iterations, read_corpus, run};

fn report<T: Target>(stats: Stats) {
    eprintln!(
        "{}: {} inputs, {} accepted (invariants checked)",
        T::NAME,
        stats.iterations,
        stats.accepted
    );
    // A run in which (nearly) nothing is accepted checks no invariant; one in which
    // everything is accepted mutates nothing that matters.
    assert!(
        stats.accepted > stats.iterations / 50 && stats.accepted < stats.iterations,
        "{}: {stats:?}",
        T::NAME
    );
}

#[test]
fn gpt_reader() {
    let stats = run::<Gpt>(iterations(1500), base_seed());
    report::<Gpt>(stats);
}

#[test]
fn manifest_parser_and_validation() {
    let stats = run::<ManifestTarget>(iterations(6000), base_seed());
    report::<ManifestTarget>(stats);
}

#[test]
fn wave_policy_parser() {
    let stats = run::<Waves>(iterations(6000), base_seed());
    report::<Waves>(stats);
}

/// The corpus holds valid inputs (mutations start from something the parsers accept) and the
/// GPT corpus is the exact output of the generator below.
#[test]
fn corpus_is_valid() {
    for (name, bytes) in read_corpus("gpt") {
        let image = decode_sparse(&bytes);
        assert!(check_gpt(&image), "gpt/{name} is not accepted");
        assert_eq!(
            encode_sparse(&image).as_bytes(),
            &bytes[..],
            "gpt/{name} not canonical"
        );
    }
    for (name, bytes) in read_corpus("manifest") {
        assert!(check_manifest(&bytes), "manifest/{name} does not validate");
    }
    for (name, bytes) in read_corpus("waves") {
        assert!(check_policy(&bytes), "waves/{name} is not accepted");
    }
}

/// The mutator really gets past the CRCs: many mutated tables are read (not refused as
/// corrupt), and some of them are refused for the semantic checks the fuzzer targets.
#[test]
fn gpt_mutations_reach_past_the_crcs() {
    use abos_fuzz::Rng;
    use std::io::Cursor;
    let corpus: Vec<Vec<u8>> = read_corpus("gpt")
        .into_iter()
        .map(|(_, b)| decode_sparse(&b))
        .collect();
    let mut rng = Rng::new(7);
    let (mut crc_refused, mut semantic_refused) = (0, 0);
    for _ in 0..400 {
        let base = rng.pick(&corpus).clone();
        let image = Gpt::mutate(&mut rng, &base, &base);
        let ss = if image.get(512..520) == Some(b"EFI PART") {
            512
        } else {
            4096
        };
        match signpost::gpt::read(
            &mut Cursor::new(&image),
            std::path::Path::new("m.img"),
            ss,
            image.len() as u64,
        ) {
            Err(signpost::Error::BadPartitionTable { .. }) => semantic_refused += 1,
            Err(signpost::Error::BothCopiesInvalid { .. }) => crc_refused += 1,
            _ => {}
        }
    }
    eprintln!(
        "400 mutations: {semantic_refused} refused by the table checks, {crc_refused} with both copies invalid"
    );
    assert!(semantic_refused > 40, "{semantic_refused}");
}

/// Regenerates the GPT corpus from real tables written by `signpost::write_new_table`
/// (`ABOS_FUZZ_REGEN=1 cargo test -p abos-fuzz regenerate_gpt_corpus`).
#[test]
fn regenerate_gpt_corpus() {
    if std::env::var_os("ABOS_FUZZ_REGEN").is_none() {
        return;
    }
    for (name, ss, dual) in [
        ("bottlerocket-512.gpthex", 512u64, true),
        ("bottlerocket-4096.gpthex", 4096, true),
        ("single-set-512.gpthex", 512, false),
    ] {
        let image = abos_fuzz::gpt::seed_image(ss, dual);
        std::fs::write(
            abos_fuzz::corpus_dir("gpt").join(name),
            encode_sparse(&image),
        )
        .unwrap();
    }
}
