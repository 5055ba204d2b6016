//! Every upstream issue the README cites as a quirk we fixed (`Bottlerocket#990`,
//! `twoliter#472`, …) has a regression test whose name starts with it (`bottlerocket_990_…`), as
//! ripgrep names its regression tests after their issues.

use std::path::{Path, PathBuf};

/// `project#number` citations in `text`, lower-cased (`bottlerocket#990`).
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('#') {
        let project: String = text[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let number: String = text[i + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !project.is_empty() && !number.is_empty() && project.chars().any(char::is_alphabetic) {
            let pair = (project.to_lowercase().replace('-', "_"), number);
            if !out.contains(&pair) {
                out.push(pair);
            }
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn finds_citations() {
    assert_eq!(
        citations("x (Bottlerocket#990) and twoliter#472, not C# or #5 or PKCS#11"),
        [
            ("bottlerocket".to_owned(), "990".to_owned()),
            ("twoliter".to_owned(), "472".to_owned()),
            ("pkcs".to_owned(), "11".to_owned()),
        ]
    );
}

#[test]
fn every_issue_the_readme_cites_has_a_test_named_after_it() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(workspace.join("README.md")).unwrap();
    // PKCS#11 is a standard, not an issue.
    let cited: Vec<_> = citations(&readme)
        .into_iter()
        .filter(|(p, _)| p != "pkcs")
        .collect();
    assert!(
        cited.len() >= 3,
        "the README cites Bottlerocket#990, twoliter#472, twoliter#488: {cited:?}"
    );
    let mut files = Vec::new();
    rust_files(&workspace, &mut files);
    let sources: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let missing: Vec<String> = cited
        .iter()
        .map(|(project, number)| format!("fn {project}_{number}_"))
        .filter(|name| !sources.iter().any(|s| s.contains(name.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md cites issues without a regression test named after them: {missing:?}"
    );
}
