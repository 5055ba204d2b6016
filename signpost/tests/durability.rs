//! Crash-safety of every table write (see the argument in `signpost::gpt`'s module docs).
//!
//! For every transition (and the boot selector's own tries decrement), from several states, on
//! images made by sgdisk and by `write_new_table` (512- and 4096-byte sectors), and starting
//! from a valid or a corrupt primary table:
//! - the exact write sequence is taken from the plan, cut after every 512-byte boundary (and in
//!   the middle of every sector), written to a real image file, and the real `boot_select` is run
//!   on the result;
//! - within each fsync epoch, every subset of the changed sectors is also tried (a disk may
//!   persist writes between two flushes in any order).
//!
//! Each result must read as exactly the table before or the table after the change (the whole
//! table: header fields and every entry, not just the flags), each copy on its own must be
//! invalid or one of those two tables, and `boot_select` must pick a set, the one GRUB's rule
//! picks in that table. A complete write leaves both copies byte-identical to the planned
//! table. Damage to either copy (primary or backup) is tried as a starting point, and every
//! refused transition is counted and must be one the pure model refuses.

#![allow(clippy::print_stderr)] // prints how many interrupted states were checked

mod common;

use common::*;
use signpost::gpt::{self, WriteStep};
use signpost::state::{self, Command as Cmd, DiskState};
use signpost::{Disk, Flags, SetName, Signpost, boot_select, plan_boot};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const EDGE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
enum Damage {
    None,
    PrimaryHeaderByte,
    PrimaryEntryByte,
    PrimaryHeaderZeroed,
    BackupHeaderByte,
    BackupEntryByte,
    BackupHeaderZeroed,
}

const DAMAGES: [Damage; 7] = [
    Damage::None,
    Damage::PrimaryHeaderByte,
    Damage::PrimaryEntryByte,
    Damage::PrimaryHeaderZeroed,
    Damage::BackupHeaderByte,
    Damage::BackupEntryByte,
    Damage::BackupHeaderZeroed,
];

fn damage(path: &Path, ss: u64, how: Damage) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .unwrap();
    let flip = |off: u64| {
        let mut b = [0u8];
        f.read_exact_at(&mut b, off).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], off).unwrap();
    };
    let last = f.metadata().unwrap().len() - ss;
    let backup_array = last - (128 * 128u64).div_ceil(ss) * ss;
    match how {
        Damage::None => {}
        Damage::BackupHeaderByte => flip(last + 40),
        Damage::BackupEntryByte => flip(backup_array + 100 * 128 + 5),
        Damage::BackupHeaderZeroed => f.write_all_at(&vec![0u8; ss as usize], last).unwrap(),
        Damage::PrimaryHeaderByte => flip(ss + 40), // first_usable_lba
        Damage::PrimaryEntryByte => flip(2 * ss + 100 * 128 + 5), // an unused entry
        Damage::PrimaryHeaderZeroed => f.write_all_at(&vec![0u8; ss as usize], ss).unwrap(),
    }
    f.sync_all().unwrap();
}

/// Head and tail of the image (all GPT structures live there).
struct Snapshot {
    head: Vec<u8>,
    tail: Vec<u8>,
    tail_off: u64,
}

impl Snapshot {
    fn take(path: &Path) -> Snapshot {
        let f = File::open(path).unwrap();
        let len = f.metadata().unwrap().len();
        let mut head = vec![0; EDGE];
        let mut tail = vec![0; EDGE];
        f.read_exact_at(&mut head, 0).unwrap();
        f.read_exact_at(&mut tail, len - EDGE as u64).unwrap();
        Snapshot {
            head,
            tail,
            tail_off: len - EDGE as u64,
        }
    }
    fn restore(&self, f: &File) {
        f.write_all_at(&self.head, 0).unwrap();
        f.write_all_at(&self.tail, self.tail_off).unwrap();
    }
}

/// Splits a plan into fsync epochs of (offset, bytes) writes.
fn epochs(steps: &[WriteStep]) -> Vec<Vec<(u64, Vec<u8>)>> {
    let mut out = vec![Vec::new()];
    for s in steps {
        match s {
            WriteStep::Write { offset, bytes } => {
                out.last_mut().unwrap().push((*offset, bytes.clone()))
            }
            WriteStep::Sync => out.push(Vec::new()),
        }
    }
    out.retain(|e| !e.is_empty());
    out
}

/// The whole table as a comparable value: the header fields both copies share and every entry
/// (type, unique GUID, sectors, attributes, name).
type TableKey = (u64, u64, [u8; 16], u32, u32, Vec<gptman::GPTPartitionEntry>);

fn key(h: &gptman::GPTHeader, e: &[gptman::GPTPartitionEntry]) -> TableKey {
    (
        h.first_usable_lba,
        h.last_usable_lba,
        h.disk_guid,
        h.number_of_partition_entries,
        h.partition_entry_array_crc32,
        e.to_vec(),
    )
}

/// Each copy read on its own: `Some(table)` if valid, `None` if not.
fn copies(path: &Path, ss: u64) -> [Option<TableKey>; 2] {
    let mut f = File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    [1, len / ss - 1].map(|lba| {
        gpt::read_copy(&mut f, ss, lba, len)
            .unwrap()
            .ok()
            .map(|(h, e)| key(&h, &e))
    })
}

/// The two tables an interrupted write may leave: before and after.
struct Tables {
    before: TableKey,
    after: TableKey,
}

/// Runs the boot selector on the image as it is now and checks the outcome.
fn check(path: &Path, ss: u64, tables: &Tables, before: &DiskState, after: &DiskState, what: &str) {
    for (i, copy) in copies(path, ss).into_iter().enumerate() {
        if let Some(t) = copy {
            assert!(
                t == tables.before || t == tables.after,
                "{what}: {} copy holds a table that is neither before nor after",
                ["primary", "backup"][i]
            );
        }
    }
    let mut disk = Disk::open(path).unwrap_or_else(|e| panic!("{what}: unreadable: {e}"));
    let seen = disk.state();
    let table = key(disk.table().header(), disk.table().entries());
    assert!(
        table == tables.before || table == tables.after,
        "{what}: read a table that is neither before nor after ({seen:?})"
    );
    assert!(
        seen == *before || seen == *after,
        "{what}: read a mixed table {seen:?}"
    );
    let choice = boot_select(&mut disk)
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: nothing bootable"));
    assert_eq!(Some(choice.set), state::next_boot(&seen), "{what}");
    let expected = [state::next_boot(before), state::next_boot(after)];
    assert!(
        expected.contains(&Some(choice.set)),
        "{what}: chose {}",
        choice.set
    );
}

struct Case<'a> {
    path: &'a Path,
    ss: u64,
    before: DiskState,
    after: DiskState,
    steps: Vec<WriteStep>,
    label: String,
}

/// Returns the number of interrupted states checked.
fn replay(case: &Case) -> usize {
    let snap = Snapshot::take(case.path);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(case.path)
        .unwrap();
    let eps = epochs(&case.steps);
    let flat: Vec<(u64, Vec<u8>)> = eps.iter().flatten().cloned().collect();
    let total: usize = flat.iter().map(|(_, b)| b.len()).sum();
    // The whole tables before and after the change, each read from a real image.
    let before_table = {
        let d = Disk::open_read_only(case.path).unwrap();
        key(d.table().header(), d.table().entries())
    };
    for (off, bytes) in &flat {
        f.write_all_at(bytes, *off).unwrap();
    }
    let after_table = {
        let d = Disk::open_read_only(case.path).unwrap();
        assert!(
            d.table().is_clean(),
            "{}: not clean after a full write",
            case.label
        );
        key(d.table().header(), d.table().entries())
    };
    // A complete write leaves both copies valid, identical, and exactly the planned bytes.
    assert_eq!(
        copies(case.path, case.ss),
        [Some(after_table.clone()), Some(after_table.clone())],
        "{}: copies after a full write",
        case.label
    );
    for (off, bytes) in &flat {
        let mut now = vec![0u8; bytes.len()];
        f.read_exact_at(&mut now, *off).unwrap();
        assert!(
            now == *bytes,
            "{}: bytes at {off} differ from the plan",
            case.label
        );
    }
    assert_eq!(
        after_table.5.len(),
        before_table.5.len(),
        "{}: entry count changed",
        case.label
    );
    let tables = Tables {
        before: before_table,
        after: after_table,
    };
    let mut cuts: Vec<usize> = (0..=total).step_by(512).collect();
    cuts.extend((0..total).step_by(512).map(|c| c + 17));
    cuts.push(total);
    let mut checked = 0;
    for cut in cuts {
        snap.restore(&f);
        let mut left = cut;
        for (off, bytes) in &flat {
            let n = left.min(bytes.len());
            f.write_all_at(&bytes[..n], *off).unwrap();
            left -= n;
            if left == 0 {
                break;
            }
        }
        check(
            case.path,
            case.ss,
            &tables,
            &case.before,
            &case.after,
            &format!("{} cut at byte {cut}/{total}", case.label),
        );
        checked += 1;
    }
    // Any persistence order within an epoch.
    for (k, epoch) in eps.iter().enumerate() {
        snap.restore(&f);
        for e in &eps[..k] {
            for (off, bytes) in e {
                f.write_all_at(bytes, *off).unwrap();
            }
        }
        // Changed 512-byte chunks of this epoch.
        let mut chunks = Vec::new();
        for (off, bytes) in epoch {
            for (i, chunk) in bytes.chunks(512).enumerate() {
                let at = off + (i * 512) as u64;
                let mut cur = vec![0u8; chunk.len()];
                f.read_exact_at(&mut cur, at).unwrap();
                if cur != chunk {
                    chunks.push((at, chunk.to_vec()));
                }
            }
        }
        assert!(
            chunks.len() <= 12,
            "{}: {} changed chunks",
            case.label,
            chunks.len()
        );
        let base = Snapshot::take(case.path);
        for mask in 0u32..(1 << chunks.len()) {
            base.restore(&f);
            for (i, (at, c)) in chunks.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    f.write_all_at(c, *at).unwrap();
                }
            }
            check(
                case.path,
                case.ss,
                &tables,
                &case.before,
                &case.after,
                &format!("{} epoch {k} subset {mask:#b}", case.label),
            );
            checked += 1;
        }
    }
    snap.restore(&f);
    checked
}

/// A temp dir on tmpfs when there is one: the selector fsyncs after every decrement, and tens
/// of thousands of fsyncs on a real disk take minutes.
fn fast_tempdir() -> tempfile::TempDir {
    match tempfile::Builder::new()
        .prefix("signpost-durability-")
        .tempdir_in("/dev/shm")
    {
        Ok(d) => d,
        Err(_) => test_support::tempdir(),
    }
}

fn fl(p: u8, t: u8, s: bool) -> Flags {
    Flags {
        priority: p,
        tries_left: t,
        successful: s,
    }
}

fn states() -> Vec<(DiskState, SetName)> {
    let d = |a, b, e| DiskState {
        a,
        b: Some(b),
        ever_booted: e,
    };
    vec![
        (d(fl(1, 0, true), fl(0, 0, false), false), SetName::A),
        (d(fl(1, 0, true), fl(0, 1, false), true), SetName::A),
        (d(fl(1, 0, true), fl(2, 1, false), true), SetName::A),
        (d(fl(1, 0, true), fl(2, 0, false), true), SetName::B),
        (d(fl(1, 0, true), fl(2, 0, true), true), SetName::B),
        (d(fl(0, 0, true), fl(2, 0, true), true), SetName::B),
    ]
}

fn all_transitions(image: &Path, ss: u64) {
    let work = image.with_extension("work");
    let mut total = 0;
    let (mut planned, mut refused) = (0, 0);
    for dmg in DAMAGES {
        for (start, active) in states() {
            let mut ops: Vec<Option<Cmd>> = Cmd::ALL.iter().copied().map(Some).collect();
            ops.push(None); // the boot selector's tries decrement
            for op in ops {
                std::fs::copy(image, &work).unwrap();
                Disk::open(&work).unwrap().write_state(&start).unwrap();
                damage(&work, ss, dmg);
                let disk = Disk::open_read_only(&work).unwrap();
                if !matches!(dmg, Damage::None) {
                    assert!(!disk.warnings().is_empty(), "damage {dmg:?} not reported");
                }
                let (before, after, steps) = match op {
                    Some(cmd) => {
                        let sp = Signpost::new(disk, active).unwrap();
                        let model = state::transition(&start, active, cmd);
                        match sp.plan(cmd) {
                            Ok(p) => {
                                assert_eq!(Ok(p.after), model.map_err(|e| e.to_string()));
                                planned += 1;
                                (p.before, p.after, p.writes.steps)
                            }
                            Err(e) => {
                                // Only the refusals of the pure model (the sets hold real
                                // content, so nothing is refused for lack of it).
                                assert_eq!(
                                    model.map_err(|m| m.to_string()),
                                    Err(e.to_string()),
                                    "{cmd} from {start:?} ({dmg:?}) refused for another reason"
                                );
                                assert_eq!(e.exit_code().code(), 4, "{e}");
                                refused += 1;
                                continue;
                            }
                        }
                    }
                    None => match plan_boot(&disk).unwrap() {
                        Some(p) => match p.writes {
                            Some(w) => (p.before, p.after, w.steps),
                            None => continue,
                        },
                        None => continue,
                    },
                };
                let label = format!(
                    "{} ss={ss} {dmg:?} {start:?} active {active} {}",
                    image.display(),
                    op.map_or("boot-select".to_string(), |c| c.to_string())
                );
                total += replay(&Case {
                    path: &work,
                    ss,
                    before,
                    after,
                    steps,
                    label,
                });
            }
        }
    }
    // The model refuses exactly these per damage kind: counted, so a change in what is refused
    // (or a refusal that silently skips a case) shows.
    let per_damage = states()
        .iter()
        .flat_map(|(s, a)| Cmd::ALL.map(|c| state::transition(s, *a, c).is_err()))
        .filter(|r| *r)
        .count();
    assert_eq!(refused, per_damage * DAMAGES.len());
    assert_eq!(
        planned + refused,
        states().len() * Cmd::ALL.len() * DAMAGES.len()
    );
    assert!(
        refused > 0 && planned > refused,
        "{planned} planned, {refused} refused"
    );
    assert!(total > 1000, "only {total} interrupted states checked");
    eprintln!(
        "{}: {total} interrupted states checked; {planned} transitions planned, {refused} refused",
        image.display()
    );
}

#[test]
fn interrupted_writes_on_sgdisk_image() {
    if !test_support::require_tool("sgdisk") {
        return;
    }
    let dir = fast_tempdir();
    all_transitions(&sgdisk_image(dir.path(), Sets::Dual), 512);
}

#[test]
fn interrupted_writes_on_native_512_image() {
    let dir = fast_tempdir();
    all_transitions(&native_image(dir.path(), Sets::Dual, 512), 512);
}

#[test]
fn interrupted_writes_on_native_4096_image() {
    let dir = fast_tempdir();
    all_transitions(&native_image(dir.path(), Sets::Dual, 4096), 4096);
}

/// The write order itself: backup before primary when the primary is valid, primary first when
/// it was not; header sector before entry array in each copy; an fsync after each copy.
#[test]
fn write_order() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let len = std::fs::metadata(&path).unwrap().len();
    let last = len - 512;
    let offsets = |steps: &[WriteStep]| -> Vec<Option<u64>> {
        steps
            .iter()
            .map(|s| match s {
                WriteStep::Write { offset, .. } => Some(*offset),
                WriteStep::Sync => None,
            })
            .collect()
    };
    let sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    let plan = sp.plan(Cmd::MarkSuccessfulBoot).unwrap();
    assert_eq!(
        offsets(&plan.writes.steps),
        [
            Some(last),
            Some(last - 32 * 512),
            None,
            Some(512),
            Some(1024),
            None
        ]
    );
    drop(sp);
    damage(&path, 512, Damage::PrimaryHeaderByte);
    let sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    let plan = sp.plan(Cmd::MarkSuccessfulBoot).unwrap();
    assert_eq!(
        offsets(&plan.writes.steps),
        [
            Some(512),
            Some(1024),
            None,
            Some(last),
            Some(last - 32 * 512),
            None
        ]
    );
}
