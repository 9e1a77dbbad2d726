//! Every file of the kept fuzz corpus (`fuzz/corpus/<target>/`) through the
//! same function the fuzz target runs (`sagascope::fuzzing`), on stable, in
//! every `cargo test`: what the fuzzer once found interesting stays checked
//! even where no nightly toolchain or cargo-fuzz is installed.

use std::path::Path;

use sagascope::fuzzing::TARGETS;

#[test]
fn every_kept_fuzz_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let run = std::panic::catch_unwind(|| target(&data));
            assert!(run.is_ok(), "{name}: {} fails", f.display());
        }
        total += files.len();
    }
    assert!(total > 0);
}
