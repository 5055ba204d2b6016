//! The repository's own hygiene: byte-exact fixtures are protected by `.gitattributes`.

use std::path::Path;
use std::process::Command;

/// Every committed file under a `tests/data/` directory must have `text`, `diff` and `merge`
/// unset, so that no checkout setting (core.autocrlf, a merge driver) changes a byte of them.
#[test]
fn fixtures_are_protected_by_gitattributes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(
        test_support::require_tool("git"),
        "git is needed to read the attributes"
    );
    let files = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(files.status.success(), "not a git checkout: {root:?}");
    let fixtures: Vec<String> = files
        .stdout
        .split(|b| *b == 0)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .filter(|p| p.contains("/tests/data/") || p.starts_with("fuzz/corpus/"))
        .map(str::to_string)
        .collect();
    assert!(fixtures.len() > 10, "fixtures found: {fixtures:?}");
    let out = Command::new("git")
        .args(["check-attr", "text", "diff", "merge", "--"])
        .args(&fixtures)
        .current_dir(root)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for line in text.lines() {
        assert!(line.ends_with(": unset"), "fixture not protected: {line}");
    }
    assert_eq!(text.lines().count(), fixtures.len() * 3);
}
