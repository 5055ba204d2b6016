//! abos-chunked end to end on real files and a real HTTP server on 127.0.0.1:0: publish,
//! index the old image, plan, fetch with Range requests, write, verify; tamper and fallback cases.

use abos_delta::error::Error;
use abos_delta::execute::{Outcome, Progress, execute};
use abos_delta::fetch::{Fetch, FileFetch, HttpFetch};
use abos_delta::plan::{Decision, Options, Step};
use abos_delta::publish::publish_file;
use abos_delta::{Index, LocalIndex, Plan};
use std::path::{Path, PathBuf};
use test_support::http::{Fault, Server};

const MIB: usize = 1 << 20;

/// Compressible but not trivial 4 KiB blocks, like file data.
fn blocks(count: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(count * 4096);
    for _ in 0..count * 4096 / 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let b = (x % 20) as u8 + b'a';
        out.extend_from_slice(&[b, b]);
    }
    out
}

struct Case {
    dir: tempfile::TempDir,
    old: PathBuf,
    new: Vec<u8>,
    index: Index,
    index_path: PathBuf,
    chunks_path: PathBuf,
}

/// Old image of 12 MiB; new image: 3 blocks inserted at 1 MiB, 64 KiB rewritten at 8 MiB.
fn case() -> Case {
    let dir = tempfile::tempdir().unwrap();
    let old = blocks(12 * MIB / 4096, 1);
    let mut new = old[..MIB].to_vec();
    new.extend_from_slice(&blocks(3, 2));
    new.extend_from_slice(&old[MIB..]);
    let at = 8 * MIB;
    new[at..at + 65536].copy_from_slice(&blocks(16, 3));
    let old_path = dir.path().join("old.img");
    std::fs::write(&old_path, &old).unwrap();
    let new_path = dir.path().join("new.img");
    std::fs::write(&new_path, &new).unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let published = publish_file(&new_path, &repo, "root.ext4").unwrap();
    assert_eq!(published.index_path, repo.join("root.ext4.index"));
    let index = Index::from_slice(&std::fs::read(&published.index_path).unwrap()).unwrap();
    assert_eq!(index, published.index);
    Case {
        old: old_path,
        new,
        index,
        index_path: published.index_path,
        chunks_path: published.chunks_path,
        dir,
    }
}

fn plan_for(c: &Case) -> Plan {
    let mut local = LocalIndex::new();
    let f = std::fs::File::open(&c.old).unwrap();
    local
        .add_source(f, c.index.header.chunking, "old image")
        .unwrap();
    Plan::new(&c.index, &local, Options::default())
}

async fn run<F: Fetch>(
    c: &Case,
    plan: &Plan,
    fetch: &mut F,
    target: &Path,
    progress: Option<&Progress>,
) -> Result<Outcome, Error> {
    let sources = [std::fs::File::open(&c.old).unwrap()];
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(target)
        .unwrap();
    execute(&c.index, plan, &sources, fetch, &mut out, progress).await
}

fn http(server: &Server) -> HttpFetch {
    let url = url::Url::parse(&format!("{}root.ext4.chunks", server.url())).unwrap();
    HttpFetch::new(reqwest::Client::new(), url)
}

#[tokio::test]
async fn round_trip_over_http_ranges_fetches_only_new_chunks() {
    let c = case();
    let plan = plan_for(&c);
    let chunks_len = std::fs::metadata(&c.chunks_path).unwrap().len();
    // The insert and the rewrite touch a few chunks; everything else is reused.
    assert!(
        plan.reuse_bytes > 11 * MIB as u64,
        "reuse {}",
        plan.reuse_bytes
    );
    assert!(
        plan.fetch_bytes < chunks_len / 10,
        "{} of {chunks_len}",
        plan.fetch_bytes
    );
    let server = Server::serve_dir(&c.dir.path().join("repo"));
    let mut fetch = http(&server);
    assert!(fetch.supports_ranges().await.unwrap());
    server.clear_requests();
    let target = c.dir.path().join("target.img");
    let outcome = run(&c, &plan, &mut fetch, &target, None).await.unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), c.new);
    assert_eq!(outcome.fetched_bytes, plan.fetch_bytes);
    assert_eq!(outcome.copied_bytes, plan.reuse_bytes);
    assert_eq!(outcome.refetched_chunks, 0);
    let log = server.requests();
    assert_eq!(log.len(), plan.requests.len());
    assert!(log.iter().all(|r| r.status == 206 && r.range.is_some()));
    assert_eq!(
        log.iter().map(|r| r.bytes_sent).sum::<u64>(),
        plan.fetch_bytes
    );
}

#[tokio::test]
async fn chunk_byte_flipped_on_the_server_is_refused() {
    let c = case();
    let plan = plan_for(&c);
    let i = plan.steps.iter().position(|s| *s == Step::Fetch).unwrap();
    let e = c.index.entries[i];
    let mut chunks = std::fs::read(&c.chunks_path).unwrap();
    chunks[(e.stored_offset + u64::from(e.stored_len) / 2) as usize] ^= 0x40;
    std::fs::write(&c.chunks_path, &chunks).unwrap();
    let server = Server::serve_dir(&c.dir.path().join("repo"));
    let err = run(&c, &plan, &mut http(&server), &c.dir.path().join("t"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ChunkHash { chunk, .. } | Error::Decompress { chunk, .. } if chunk == i),
        "{err:?}"
    );
}

#[tokio::test]
async fn truncated_chunk_file_is_refused() {
    let c = case();
    // Fetch everything: no local source.
    let plan = Plan::new(&c.index, &LocalIndex::new(), Options::default());
    let len = std::fs::metadata(&c.chunks_path).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&c.chunks_path)
        .unwrap();
    f.set_len(len - 1000).unwrap();
    let server = Server::serve_dir(&c.dir.path().join("repo"));
    let err = run(&c, &plan, &mut http(&server), &c.dir.path().join("t"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShortRange { .. } | Error::RangeRefused { status: 416, .. }
        ),
        "{err:?}"
    );
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let err = run(&c, &plan, &mut file, &c.dir.path().join("t2"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ShortRange { .. }), "{err:?}");
}

#[tokio::test]
async fn index_whose_chunks_do_not_match_the_image_hash_is_refused() {
    let mut c = case();
    c.index.header.image_sha256 = "ab".repeat(32);
    let plan = plan_for(&c);
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let err = run(&c, &plan, &mut file, &c.dir.path().join("t"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImageHash { .. }), "{err:?}");
    // An entry whose hash is not its stored content's: that chunk is refused.
    let mut c = case();
    let plan0 = Plan::new(&c.index, &LocalIndex::new(), Options::default());
    c.index.entries[2].sha256[0] ^= 1;
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let err = run(&c, &plan0, &mut file, &c.dir.path().join("t"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChunkHash { chunk: 2, .. }), "{err:?}");
}

#[tokio::test]
async fn server_ignoring_range_means_fall_back() {
    let c = case();
    let server = Server::serve_dir(&c.dir.path().join("repo"));
    server.set_fault(Fault::NoRanges);
    let mut fetch = http(&server);
    assert!(!fetch.supports_ranges().await.unwrap());
    let err = fetch.fetch(100, 200).await.unwrap_err();
    assert!(
        matches!(err, Error::RangeRefused { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn local_flipped_block_is_fetched_not_copied() {
    let c = case();
    let plan = plan_for(&c);
    // The host's disk flips a bit after the scan, inside a chunk planned as a copy.
    let (i, loc) = plan
        .steps
        .iter()
        .enumerate()
        .find_map(|(i, s)| match s {
            Step::Copy(l) if i > 3 => Some((i, *l)),
            _ => None,
        })
        .unwrap();
    let mut old = std::fs::read(&c.old).unwrap();
    old[(loc.offset + 4097) as usize] ^= 1;
    std::fs::write(&c.old, &old).unwrap();
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let target = c.dir.path().join("t");
    let outcome = run(&c, &plan, &mut file, &target, None).await.unwrap();
    assert_eq!(outcome.refetched_chunks, 1, "chunk {i}");
    assert_eq!(std::fs::read(&target).unwrap(), c.new);
}

/// Fails every request after the first `left`.
struct Failing {
    inner: FileFetch,
    left: u32,
}

impl Fetch for Failing {
    async fn fetch(&mut self, start: u64, end: u64) -> Result<Vec<u8>, Error> {
        if self.left == 0 {
            return Err(Error::ShortRange {
                what: "killed".into(),
                start,
                end,
                got: 0,
            });
        }
        self.left -= 1;
        self.inner.fetch(start, end).await
    }
}

#[tokio::test]
async fn rerun_after_interruption_skips_verified_chunks() {
    let c = case();
    let plan = Plan::new(
        &c.index,
        &LocalIndex::new(),
        Options {
            max_gap: 0,
            max_request: 256 << 10,
        },
    );
    assert!(plan.requests.len() > 20);
    let progress = Progress {
        path: c.dir.path().join("progress"),
        every_bytes: MIB as u64,
    };
    let target = c.dir.path().join("t");
    let mut failing = Failing {
        inner: FileFetch::open(&c.chunks_path).unwrap(),
        left: 20,
    };
    run(&c, &plan, &mut failing, &target, Some(&progress))
        .await
        .unwrap_err();
    assert!(progress.path.exists());
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let outcome = run(&c, &plan, &mut file, &target, Some(&progress))
        .await
        .unwrap();
    assert!(outcome.resumed_chunks > 0, "{outcome:?}");
    assert!(outcome.requests < plan.requests.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), c.new);
    // A progress record for another index is ignored.
    std::fs::write(&progress.path, "abos-chunked-v1-progress 00 999\n").unwrap();
    std::fs::remove_file(&target).unwrap();
    let mut file = FileFetch::open(&c.chunks_path).unwrap();
    let outcome = run(&c, &plan, &mut file, &target, Some(&progress))
        .await
        .unwrap();
    assert_eq!(outcome.resumed_chunks, 0);
    assert_eq!(std::fs::read(&target).unwrap(), c.new);
}

#[test]
fn falls_back_when_the_delta_is_not_smaller() {
    let c = case();
    let chunks_len = std::fs::metadata(&c.chunks_path).unwrap().len();
    let index_len = std::fs::metadata(&c.index_path).unwrap().len();
    let nothing_local = Plan::new(&c.index, &LocalIndex::new(), Options::default());
    assert_eq!(nothing_local.fetch_bytes, chunks_len);
    assert!(matches!(
        nothing_local.decide(index_len, chunks_len),
        Decision::Full(_)
    ));
    let plan = plan_for(&c);
    match plan.decide(index_len, chunks_len) {
        Decision::Delta(s) => assert_eq!(s.download_bytes, index_len + plan.fetch_bytes),
        d => panic!("{d:?}"),
    }
}
