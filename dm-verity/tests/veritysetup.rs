//! Our hash tree against `veritysetup format` / `veritysetup verify` on real files (the
//! independent oracle: byte-identical hash devices and root hashes, the same verdicts on a flipped
//! data or hash byte). `veritysetup` is required under CI (`test_support::require_tool`).

use dm_verity as verity;
use std::path::Path;
use std::process::Command;

const UUID: &str = "12345678-1234-4234-9234-123456789abc";

fn uuid_bytes() -> [u8; 16] {
    hex::decode(UUID.replace('-', ""))
        .unwrap()
        .try_into()
        .unwrap()
}

/// Deterministic pseudo-random data (xorshift), so failures reproduce.
fn data(blocks: u64, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity((blocks * 4096) as usize);
    while out.len() < (blocks * 4096) as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

fn veritysetup(args: &[&str]) -> std::process::Output {
    Command::new("veritysetup")
        .args(args)
        .output()
        .expect("run veritysetup")
}

fn veritysetup_format(data: &Path, hash: &Path, salt: &str) -> String {
    let out = veritysetup(&[
        "format",
        "--salt",
        salt,
        "--uuid",
        UUID,
        data.to_str().unwrap(),
        hash.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "veritysetup format: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .map(|v| v.trim().to_string())
        .expect("root hash in veritysetup output")
}

fn check_size(blocks: u64, salt: &[u8]) {
    let dir = test_support::tempdir();
    let data_path = dir.path().join("data");
    let theirs = dir.path().join("hash.veritysetup");
    let ours = dir.path().join("hash.ours");
    let bytes = data(blocks, blocks * 7919 + salt.len() as u64);
    std::fs::write(&data_path, &bytes).unwrap();
    let salt_arg = if salt.is_empty() {
        "-".to_string()
    } else {
        hex::encode(salt)
    };
    let their_root = veritysetup_format(&data_path, &theirs, &salt_arg);

    let mut out = std::fs::File::create(&ours).unwrap();
    let params = verity::build_with_uuid(
        &mut std::fs::File::open(&data_path).unwrap(),
        bytes.len() as u64,
        salt,
        uuid_bytes(),
        &mut out,
    )
    .unwrap();
    drop(out);
    assert_eq!(
        params.root_hash_hex(),
        their_root,
        "root hash for {blocks} blocks"
    );
    let a = std::fs::read(&theirs).unwrap();
    let b = std::fs::read(&ours).unwrap();
    assert_eq!(a.len(), b.len(), "hash device size for {blocks} blocks");
    assert!(a == b, "hash device bytes differ for {blocks} blocks");
    assert_eq!(b.len() as u64, params.hash_device_bytes());

    // veritysetup accepts what we made...
    let ok = veritysetup(&[
        "verify",
        data_path.to_str().unwrap(),
        ours.to_str().unwrap(),
        &their_root,
    ]);
    assert!(
        ok.status.success(),
        "veritysetup verify: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    verity::verify(
        &mut &bytes[..],
        &mut std::fs::File::open(&ours).unwrap(),
        &params,
    )
    .unwrap();

    // ...and rejects it after one flipped byte in the last data block, as do we.
    let mut bad = bytes.clone();
    let pos = bad.len() - 100;
    bad[pos] ^= 0x01;
    std::fs::write(&data_path, &bad).unwrap();
    let rejected = veritysetup(&[
        "verify",
        data_path.to_str().unwrap(),
        ours.to_str().unwrap(),
        &their_root,
    ]);
    assert!(
        !rejected.status.success(),
        "veritysetup verify accepted a flipped byte"
    );
    let err = verity::verify(
        &mut &bad[..],
        &mut std::fs::File::open(&ours).unwrap(),
        &params,
    )
    .unwrap_err();
    let expected_block = blocks - 1;
    assert!(
        matches!(err, verity::Error::DataBlockCorrupt { block } if block == expected_block),
        "{err:?}"
    );
}

#[test]
fn identical_to_veritysetup_on_small_sizes() {
    if !test_support::require_tool("veritysetup") {
        return;
    }
    let salt: Vec<u8> = (0u8..32).collect();
    for blocks in [1, 2, 127, 128, 129, 1000] {
        check_size(blocks, &salt);
    }
}

#[test]
fn identical_to_veritysetup_multi_level() {
    if !test_support::require_tool("veritysetup") {
        return;
    }
    // 128*128 + 1 blocks: three levels (129, 2, 1), more than one input chunk.
    check_size(128 * 128 + 1, b"\x5a\xa5");
}

#[test]
fn identical_to_veritysetup_with_odd_salts() {
    if !test_support::require_tool("veritysetup") {
        return;
    }
    check_size(300, b"");
    check_size(300, &[0xee; 256]);
    check_size(5, &[1]);
}

#[test]
fn veritysetup_rejects_a_flipped_hash_byte() {
    if !test_support::require_tool("veritysetup") {
        return;
    }
    let dir = test_support::tempdir();
    let bytes = data(500, 3);
    let data_path = dir.path().join("data");
    let hash_path = dir.path().join("hash");
    std::fs::write(&data_path, &bytes).unwrap();
    let mut hash = Vec::new();
    let params = verity::build(&mut &bytes[..], bytes.len() as u64, b"salty", &mut hash).unwrap();
    // 500 blocks: device = superblock, top block, 4 leaf blocks; damage leaf block 2.
    hash[4 * 4096 + 64] ^= 0x80;
    std::fs::write(&hash_path, &hash).unwrap();
    let out = veritysetup(&[
        "verify",
        data_path.to_str().unwrap(),
        hash_path.to_str().unwrap(),
        &params.root_hash_hex(),
    ]);
    assert!(!out.status.success());
    let err =
        verity::verify(&mut &bytes[..], &mut std::io::Cursor::new(&hash), &params).unwrap_err();
    assert!(
        matches!(err, verity::Error::HashBlockCorrupt { level: 0, block: 2 }),
        "{err:?}"
    );
}
