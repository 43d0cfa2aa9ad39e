//! Checks the architecture invariants written in ARCHITECTURE.md by reading the sources, so that
//! breaking one fails `./test.sh` rather than waiting for a reviewer to notice.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn crate_dirs() -> Vec<PathBuf> {
    let root = workspace_root();
    [
        "protocol",
        "transport",
        "master",
        "agent",
        "framework-sdk",
        "cli",
        "integration",
    ]
    .iter()
    .map(|name| root.join(name))
    .collect()
}

/// Architecture invariant: `protocol` depends on no workspace crate and on no runtime, so that it
/// stays pure data plus codec.
#[test]
fn protocol_depends_on_no_workspace_crate_and_no_runtime() {
    let manifest = std::fs::read_to_string(workspace_root().join("protocol/Cargo.toml")).unwrap();
    for banned in ["strata-", "actix", "tokio", "etcd", "futures", "metrics"] {
        let hit = manifest
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter(|line| !line.starts_with("name ") && !line.starts_with("description"))
            .any(|line| line.contains(banned));
        assert!(!hit, "protocol/Cargo.toml mentions {banned:?}");
    }
}

/// Architecture invariant: the pure state machines (`*/src/state/`, `*/src/allocator/`) never
/// import an async runtime, an actor system or an etcd client: they are stepped with inputs and
/// time passed in, which is what lets simulations drive them.
#[test]
fn pure_cores_import_no_runtime() {
    let mut files = Vec::new();
    for dir in crate_dirs() {
        for core in ["src/state", "src/allocator"] {
            rust_files(&dir.join(core), &mut files);
        }
    }
    let banned = [
        "actix",
        "tokio",
        "etcd_client",
        "std::net",
        "std::fs",
        "Instant::now",
    ];
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (idx, line) in text.lines().enumerate() {
            if let Some(word) = banned.iter().find(|word| line.contains(**word)) {
                hits.push(format!("{}:{}: {word}", file.display(), idx + 1));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "pure cores touch the outside world:\n{}",
        hits.join("\n")
    );
}

/// Skipped tests prove nothing and stubs are not features.
#[test]
fn no_ignored_tests_and_no_stubs() {
    let mut files = Vec::new();
    for dir in crate_dirs() {
        rust_files(&dir, &mut files);
    }
    // Built from pieces so that this file does not match itself.
    let banned = [
        concat!("#[", "ignore"),
        concat!("todo", "!("),
        concat!("unimplemented", "!("),
    ];
    let mut hits = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (idx, line) in text.lines().enumerate() {
            if let Some(word) = banned.iter().find(|word| line.contains(**word)) {
                hits.push(format!("{}:{}: {word}", file.display(), idx + 1));
            }
        }
    }
    assert!(hits.is_empty(), "found:\n{}", hits.join("\n"));
}
