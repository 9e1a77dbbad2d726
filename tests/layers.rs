//! The crate's layers point one way: model → store → engine/replay →
//! (cli | tui). The library below the front ends never names them, and the
//! TUI never names the command line: each front end is a thin shell over
//! the same library calls.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The ways a file can name a module of the crate: `crate::cli`,
/// `super::cli`, `super::super::tui`, `sagascope::tui`…
fn names_module(line: &str, module: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    ["crate::", "super::", "sagascope::"].iter().any(|p| {
        code.match_indices(p).any(|(i, _)| {
            let rest = &code[i + p.len()..];
            let rest = rest.trim_start_matches("super::");
            rest.strip_prefix(module)
                .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        })
    })
}

#[test]
fn layers_point_one_way() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "no sources found under {}", src.display());
    let mut problems = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let in_cli = rel.starts_with("src/cli/");
        let in_tui = rel.starts_with("src/tui/");
        if rel == "src/main.rs" || in_cli {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let forbidden: &[&str] = if in_tui { &["cli"] } else { &["cli", "tui"] };
            for m in forbidden {
                if names_module(line, m) {
                    problems.push(format!(
                        "{rel}:{}: names the `{m}` module ({}): {}",
                        n + 1,
                        if in_tui {
                            "the TUI must not depend on the command line"
                        } else {
                            "the library must not depend on a front end"
                        },
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering broken (model → store → engine/replay → cli | tui):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_check_sees_every_spelling() {
    assert!(names_module("use crate::cli::{CliError};", "cli"));
    assert!(names_module("    crate::tui::parse_filter(&t)", "tui"));
    assert!(names_module("use super::super::cli::Exit;", "cli"));
    assert!(names_module("use super::tui;", "tui"));
    assert!(!names_module("use crate::client::X;", "cli"));
    assert!(!names_module("// see crate::cli::run", "cli"));
    assert!(!names_module("use crate::store::tui_label;", "tui"));
}
