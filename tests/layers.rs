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

/// The TUI's own modules in layers, lowest first: a module may import its
/// own layer's and lower layers' modules, never a higher one (so there are
/// no cycles: the messages and the layout at the bottom, the jobs and the
/// App above them and blind to each other, the view over the App).
const TUI_LAYERS: &[&[&str]] = &[
    &[
        "messages", "layout", "content", "keymap", "theme", "editor", "masking",
    ],
    &["jobs", "app"],
    &["view"],
    &["testing"],
];

/// The TUI submodule (`app`, `view`…) a line names, resolving `super::`
/// from the file's module path (`["tui", "app", "list"]`).
fn tui_modules_named(line: &str, module_path: &[String]) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut out = Vec::new();
    let word = |r: &str| -> String {
        r.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::tui::") {
        out.push(word(&code[i + "crate::tui::".len()..]));
    }
    for (i, _) in code.match_indices("super::") {
        // Only the start of a path: `super::super::x` is counted once.
        if code[..i].ends_with("super::") {
            continue;
        }
        let mut rest = &code[i..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        // The module `super` names is the file's module path minus `up`.
        let base = module_path.len().saturating_sub(up);
        let resolved: Vec<String> = module_path[..base]
            .iter()
            .cloned()
            .chain(std::iter::once(word(rest)))
            .collect();
        if resolved.len() >= 2 && resolved[0] == "tui" {
            out.push(resolved[1].clone());
        }
    }
    out
}

fn tui_layer(m: &str) -> Option<usize> {
    TUI_LAYERS.iter().position(|l| l.contains(&m))
}

#[test]
fn tui_modules_import_downwards_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tui = root.join("src/tui");
    let mut files = Vec::new();
    rust_files(&tui, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(root.join("src")).unwrap();
        let mut module_path: Vec<String> = rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if module_path.last().is_some_and(|m| m == "mod") {
            module_path.pop();
        }
        // src/tui/mod.rs runs everything; only submodules are layered.
        let Some(own) = module_path.get(1).cloned() else {
            continue;
        };
        let Some(own_layer) = tui_layer(&own) else {
            problems.push(format!(
                "src/{}: module `{own}` is in no layer of TUI_LAYERS (tests/layers.rs): place it",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for m in tui_modules_named(line, &module_path) {
                if m == own {
                    continue;
                }
                let higher = tui_layer(&m).is_some_and(|l| l > own_layer);
                let sibling = tui_layer(&m) == Some(own_layer) && own_layer == 1;
                if higher || sibling {
                    problems.push(format!(
                        "src/{}:{}: `{own}` imports `{m}`, which is {}: {}",
                        rel.display(),
                        n + 1,
                        if higher {
                            "above it"
                        } else {
                            "beside it (jobs and app stay blind to each other)"
                        },
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "TUI modules must import downwards only:\n{}",
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
    let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        tui_modules_named("use super::{App, Load};", &path(&["tui", "app", "list"])),
        ["app"]
    );
    assert_eq!(
        tui_modules_named("use super::super::view;", &path(&["tui", "app", "list"])),
        ["view"]
    );
    assert_eq!(
        tui_modules_named("use super::app::Action;", &path(&["tui", "jobs"])),
        ["app"]
    );
    assert_eq!(
        tui_modules_named("x: crate::tui::jobs::Slot", &path(&["tui", "view", "list"])),
        ["jobs"]
    );
}

/// Every backend is a folder with the same files (the layout a new backend
/// copies): `store/<backend>/{mod,url,conn,schema,read,write,index}.rs`.
#[test]
fn backend_folders_have_the_same_files() {
    let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
    let expected: Vec<&str> = vec![
        "conn.rs",
        "index.rs",
        "mod.rs",
        "read.rs",
        "schema.rs",
        "url.rs",
        "write.rs",
    ];
    for backend in ["sqlite", "postgres", "redis", "objects"] {
        let mut names: Vec<String> = std::fs::read_dir(store.join(backend))
            .unwrap_or_else(|e| panic!("src/store/{backend}: {e}"))
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        // Records beside the snapshots: the key-value and object stores
        // each keep theirs in `meta.rs`; the SQL stores share one
        // (`sql/meta.rs`), as they share the rest of their statements.
        let mut expected = expected.clone();
        if matches!(backend, "redis" | "objects") {
            expected.push("meta.rs");
            expected.sort();
        }
        assert_eq!(names, expected, "src/store/{backend}/ has other files");
    }
}

/// No source file grows past ~1,000 lines unless it says at its top that it
/// is one cohesive thing.
#[test]
fn source_files_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "benches", "examples"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut too_long = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines = text.lines().count();
        let head: String = text.lines().take(15).collect::<Vec<_>>().join("\n");
        if lines > 1050 && !head.contains("one cohesive") {
            too_long.push(format!("{} ({lines} lines)", f.display()));
        }
    }
    assert!(
        too_long.is_empty(),
        "split these, or say at the top why each is one cohesive thing: {too_long:#?}"
    );
}
