//! Hygiene checks over every Rust source file in the workspace: module docs present, files
//! small, no fix-me markers, no issue or bug numbers in file or test names.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "integration test")]

use std::path::{Path, PathBuf};

use allocdb_tidy::{FILE_LINE_COUNT_MAX, LONG_FILE_ALLOWLIST};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name == "target" || name.starts_with('.') || name == "fuzz_target_corpus" {
                continue;
            }
            rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

fn workspace_rust_files() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    if root.join("fuzz").is_dir() {
        rust_files(&root.join("fuzz"), &mut files);
    }
    files.sort();
    assert!(files.len() > 10, "tidy found only {} files under {}", files.len(), root.display());
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            (relative, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

/// Names like `issue_42`, `bug7`, `regression3`, `gh_12` tie code to a tracker instead of a
/// behaviour.
fn names_a_tracker_number(name: &str) -> bool {
    let lower = name.to_lowercase();
    ["issue", "bug", "regression", "gh", "ticket"].iter().any(|word| {
        lower.match_indices(word).any(|(index, _)| {
            let at_word_start = !lower[..index].ends_with(|character: char| character.is_ascii_alphabetic());
            let rest = lower[index + word.len()..].trim_start_matches(['_', '-']);
            at_word_start && rest.starts_with(|character: char| character.is_ascii_digit())
        })
    })
}

#[test]
fn every_source_file_opens_with_a_module_doc() {
    let missing: Vec<String> = workspace_rust_files()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path)
        .collect();
    assert!(missing.is_empty(), "files without a leading //! doc: {missing:?}");
}

#[test]
fn no_source_file_exceeds_the_line_limit_without_a_reason() {
    let too_long: Vec<String> = workspace_rust_files()
        .into_iter()
        .filter(|(path, text)| {
            text.lines().count() > FILE_LINE_COUNT_MAX
                && !LONG_FILE_ALLOWLIST.iter().any(|(allowed, _)| allowed == path)
        })
        .map(|(path, text)| format!("{path} ({} lines)", text.lines().count()))
        .collect();
    assert!(too_long.is_empty(), "files over {FILE_LINE_COUNT_MAX} lines: {too_long:?}");
}

#[test]
fn no_fixme_markers_remain() {
    let marker = ["FIX", "ME"].concat();
    let found: Vec<String> = workspace_rust_files()
        .into_iter()
        .filter(|(_, text)| text.contains(&marker))
        .map(|(path, _)| path)
        .collect();
    assert!(found.is_empty(), "files with {marker}: {found:?}");
}

#[test]
fn no_file_or_test_is_named_after_an_issue_number() {
    let mut offenders = Vec::new();
    for (path, text) in workspace_rust_files() {
        if names_a_tracker_number(Path::new(&path).file_stem().unwrap().to_str().unwrap()) {
            offenders.push(path.clone());
        }
        for line in text.lines() {
            let Some(rest) = line.trim_start().strip_prefix("fn ") else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if names_a_tracker_number(&name) {
                offenders.push(format!("{path}: fn {name}"));
            }
        }
    }
    assert!(offenders.is_empty(), "names tied to tracker numbers: {offenders:?}");
}

#[test]
fn tracker_number_detection_catches_the_usual_spellings() {
    for name in ["issue_42", "bug7", "regression_3", "gh-12", "Issue42Test"] {
        assert!(names_a_tracker_number(name), "{name}");
    }
    for name in ["reserve_of_busy_member_fails", "debug_output", "issues_are_rejected_cleanly", "high5"] {
        assert!(!names_a_tracker_number(name), "{name}");
    }
}
