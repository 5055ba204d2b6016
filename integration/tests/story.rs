//! The quickstart's story as a test: every step asserted (issue "End to end").

use integration::Bins;
use integration::story::{Quiet, World, whole_story};

#[test]
fn whole_story_holds() {
    for tool in ["mkfs.ext4", "debugfs", "sgdisk", "lz4", "etcd"] {
        if !test_support::require_tool(tool) {
            return;
        }
    }
    let bins = Bins::locate().expect("binaries");
    let dir = test_support::tempdir();
    let narrator = Quiet;
    let world = World::new(dir.path(), bins, &narrator);
    let report = whole_story(&world).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checks.len() >= 12, "{:?}", report.checks);
}
